"""Early rejection of MH proposals: the bound it relies on holds for every completion, the chain still
targets p^α exactly, and it generates fewer tokens."""

from __future__ import annotations

import math

import numpy as np
import pytest

import genesis_ps
from genesis_ps.errors import ConfigError
from genesis_ps.sampling import Prompt, SamplerParams, Target
from genesis_ps.sampling._common import EMPTY, State
from genesis_ps.sampling.cuts import differ_bound
from genesis_ps.sampling.early import early_reject_applies, reverse_cut_bound
from genesis_ps.sampling.mh import mh_chains
from genesis_ps.sampling.moves import cut_log_probs_of
from genesis_ps.testing import exact
from genesis_ps.testing.toys import eos_toy, random_toy, trap_toy

P = Prompt.text("")


@pytest.mark.parametrize("make", [eos_toy, trap_toy, random_toy])
@pytest.mark.parametrize("alpha,tau", [(2.0, 0.5), (4.0, 1 / 3), (4.0, 0.25), (8.0, 1.0)])
async def test_partial_weight_and_reverse_cut_bound_never_undershoot_the_completed_proposal(make, alpha, tau) -> None:  # type: ignore[no-untyped-def]
    toy = make()
    t_max = toy.max_len + 1
    segs = await toy.extend(P, [()] * 400, t_max, tau, seed=3)
    for seg in segs:
        y = EMPTY.grow(seg)
        for t in range(len(y)):
            final_w = alpha * math.fsum(y.logp[t:]) - math.fsum(y.logq[t:])
            final_differ = -math.log(-math.expm1(math.fsum(y.logq[t:]))) if math.fsum(y.logq[t:]) < 0 else math.inf
            for rule in ("uniform", "entropy", "decision"):
                final_cut = float(cut_log_probs_of(y, rule)[t])  # type: ignore[arg-type]
                for m in range(t + 1, len(y) + 1):
                    part = State(y.tokens[:m], y.logp[:m], y.logq[:m], False, None, y.ent[:m])
                    w = alpha * math.fsum(part.logp[t:]) - math.fsum(part.logq[t:])
                    assert w + 1e-9 >= final_w
                    assert reverse_cut_bound(part, t, rule) + 1e-12 >= final_cut
                    assert differ_bound(math.fsum(part.logq[t:])) + 1e-9 >= final_differ


@pytest.mark.parametrize("make,alpha,cuts", [(eos_toy, 2.0, "uniform"), (random_toy, 4.0, "uniform"),
                                             (random_toy, 4.0, "entropy"), (eos_toy, 4.0, "entropy")])  # fmt: skip
async def test_mh_with_early_rejection_reaches_the_noise_floor_with_fewer_tokens(make, alpha, cuts) -> None:  # type: ignore[no-untyped-def]
    toy = make()
    t_max = toy.max_len + 1
    want = exact.power_distribution(toy, t_max, alpha)
    floor = exact.noise_floor(want, 1500, np.random.default_rng(0))
    tokens = {}
    for early in (True, False):
        params = SamplerParams(
            alpha=alpha, max_new_tokens=t_max, block_size=2, n_mcmc=20, cuts=cuts, early_reject=early
        )
        run = await mh_chains(toy, P, params, n_chains=1500, target=Target(alpha), rng=np.random.default_rng(7))
        tv = exact.tv_distance(exact.empirical(s.tokens for s in run.final), want)
        assert tv <= 1.5 * floor + 0.01, (early, tv, floor)
        assert (run.early_rejected > 0) == early
        tokens[early] = run.meter.tokens_generated
    assert tokens[True] < 0.97 * tokens[False]  # the toys' suffixes are 1-4 tokens: little to save


def test_early_rejection_applies_only_where_every_token_weight_is_at_most_zero() -> None:
    ok = dict(logprobs="exact", tau=0.25, alpha=4.0, tilted=False, n_tries=1)
    assert early_reject_applies(**ok)  # type: ignore[arg-type]
    assert early_reject_applies(**{**ok, "tau": 1.0})  # type: ignore[arg-type]
    assert not early_reject_applies(**{**ok, "tau": 0.2})  # type: ignore[arg-type]  # τ < 1/α
    assert not early_reject_applies(**{**ok, "tau": 1.5})  # type: ignore[arg-type]
    assert not early_reject_applies(**{**ok, "logprobs": "top_k"})  # type: ignore[arg-type]
    assert not early_reject_applies(**{**ok, "tilted": True})  # type: ignore[arg-type]
    assert not early_reject_applies(**{**ok, "n_tries": 4})  # type: ignore[arg-type]


async def test_the_result_reports_early_rejections_and_the_flag_is_validated() -> None:
    kw = dict(method="mh", alpha=4.0, max_new_tokens=4, block_size=2, n_mcmc=30, seed=2)
    off = await genesis_ps.power_sample(trap_toy(), "", **kw)  # type: ignore[arg-type]
    assert off.extra["early_rejected"] == 0 and off.extra["mh_steps"] == 60  # off by default
    on = await genesis_ps.power_sample(trap_toy(), "", early_reject=True, **kw)  # type: ignore[arg-type]
    assert on.extra["early_rejected"] > 0 and on.extra["mh_steps"] == 60
    assert on.tokens_generated < off.tokens_generated
    with pytest.raises(ConfigError, match="early_reject"):
        SamplerParams(early_reject="yes")  # type: ignore[arg-type]


async def test_each_piece_asks_for_at_least_the_models_call_tokens() -> None:
    import dataclasses

    toy = eos_toy()
    toy.capabilities = dataclasses.replace(toy.capabilities, call_tokens=3)
    asked: list[tuple[int, int]] = []
    inner = toy.extend

    async def extend(prompt, prefixes, max_new_tokens, temperature, *, seed=None):  # type: ignore[no-untyped-def]
        asked.extend((len(p), int(m)) for p, m in zip(prefixes, max_new_tokens, strict=True))
        return await inner(prompt, prefixes, max_new_tokens, temperature, seed=seed)

    toy.extend = extend  # type: ignore[method-assign]
    params = SamplerParams(alpha=2.0, max_new_tokens=5, block_size=5, n_mcmc=10, early_reject=True)
    run = await mh_chains(toy, P, params, n_chains=200, target=Target(2.0), rng=np.random.default_rng(1))
    assert run.early_rejected > 0
    assert all(m >= min(3, 5 - n) for n, m in asked)  # 5 = the stage limit

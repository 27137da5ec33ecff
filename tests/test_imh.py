"""Independence MH: concurrent proposals, acceptance arithmetic, exactness, approximate log-probs, budget."""

from __future__ import annotations

import numpy as np
import pytest

import genesis_ps
from genesis_ps.sampling import Budget, Prompt, SamplerParams, Segment, Target
from genesis_ps.sampling._common import State
from genesis_ps.sampling.imh import imh_log_ratio, run_imh
from genesis_ps.testing import exact
from genesis_ps.testing.toys import ToyLM, eos_toy

P = Prompt.text("")


def _eos_like(**kw: object) -> ToyLM:
    base = eos_toy()
    return ToyLM("eos", "ab", lambda pre: np.exp(base.logp_table[base.node_of(pre)]).tolist(), max_len=4, **kw)  # type: ignore[arg-type]


def test_log_ratio() -> None:
    x = State((0, 2), (-0.5, -1.0), (-0.2, -0.4), True)
    y = State((1, 1, 2), (-0.7, -0.6, -1.5), (-0.3, -0.2, -0.9), True)
    want = 2.0 * (-2.8 - -1.5) - (-1.4) + (-0.6)
    assert imh_log_ratio(2.0, x, y) == pytest.approx(want)
    assert imh_log_ratio(2.0, x, y, cur_reward=1.0, prop_reward=0.5) == pytest.approx(want - 0.5)
    assert imh_log_ratio(2.0, y, x) == pytest.approx(-want)


async def test_all_proposals_are_requested_concurrently() -> None:
    toy = _eos_like(max_batch=2, latency=0.02)
    r = await genesis_ps.power_sample(toy, "q", method="imh", alpha=2.0, n_mcmc=7, max_new_tokens=5, seed=0)
    assert toy.calls == r.requests == 4  # 8 proposals in chunks of 2
    assert toy.max_in_flight == 4
    assert r.proposals == 7 and 0 <= r.accepted <= 7
    assert r.tokens_generated >= 8 and r.tokens_returned == len(r.tokens) >= 2


async def test_imh_matches_exact_p_alpha() -> None:
    toy = eos_toy()
    n = 1000
    params = SamplerParams(method="imh", alpha=4.0, max_new_tokens=5, n_mcmc=30)
    samples = []
    for s in np.random.default_rng(2).integers(2**63, size=n).tolist():
        r = await run_imh(toy, P, params, target=Target(4.0), rng=np.random.default_rng(s), budget=None,
                          evaluator=None, progress=None)
        samples.append(r.tokens)
    want = exact.power_distribution(toy, 5, 4.0)
    floor = exact.noise_floor(want, n, np.random.default_rng(0))
    tv = exact.tv_distance(exact.empirical(samples), want)
    assert tv <= 1.5 * floor + 0.01
    assert exact.tv_distance(exact.temperature_distribution(toy, 5, 0.25), want) > 0.2


class TopKToy(ToyLM):
    """Marks its log q as approximate, as a top-k provider would."""

    async def extend(self, prompt, prefixes, max_new_tokens, temperature, *, seed=None):  # type: ignore[no-untyped-def]
        segs = await super().extend(prompt, prefixes, max_new_tokens, temperature, seed=seed)
        return [Segment(s.tokens, s.logp, s.logq, s.eos, approx_logq=True) for s in segs]


async def test_approximate_logq_is_reported() -> None:
    base = eos_toy()
    toy = TopKToy("topk", "ab", lambda pre: np.exp(base.logp_table[base.node_of(pre)]).tolist(), max_len=4)
    r = await genesis_ps.power_sample(toy, "q", method="imh", max_new_tokens=5, n_mcmc=3, seed=0)
    assert r.approx_logprobs
    r = await genesis_ps.power_sample(eos_toy(), "q", method="imh", max_new_tokens=5, n_mcmc=3, seed=0)
    assert not r.approx_logprobs


async def test_budget_limits_the_number_of_proposals() -> None:
    toy = eos_toy()
    r = await genesis_ps.power_sample(
        toy, "q", method="imh", max_new_tokens=5, n_mcmc=9, seed=0, budget=Budget(max_tokens=15)
    )
    assert r.budget_exhausted and r.proposals == 2 and r.extra["proposals_requested"] == 3
    assert r.tokens_generated <= 15
    r = await genesis_ps.power_sample(
        eos_toy(max_batch=2), "q", method="imh", max_new_tokens=5, n_mcmc=9, seed=0, budget=Budget(max_requests=1)
    )
    assert r.budget_exhausted and r.requests == 1 and r.proposals == 1


async def test_selection_seed_and_tilt() -> None:
    kw = dict(method="imh", alpha=2.0, max_new_tokens=5, n_mcmc=12)
    a = await genesis_ps.power_sample(eos_toy(), "q", seed=5, **kw)
    b = await genesis_ps.power_sample(eos_toy(), "q", seed=5, **kw)
    assert (a.tokens, a.accepted) == (b.tokens, b.accepted)
    best = await genesis_ps.power_sample(eos_toy(), "q", seed=5, selection="best_target", **kw)
    assert best.log_target >= a.log_target and best.accepted == a.accepted  # type: ignore[operator]
    ev = await genesis_ps.power_sample(
        eos_toy(), "q", seed=5, selection="best_evaluator", evaluator=lambda t: float(t.count("a")), **kw
    )
    assert ev.reward == ev.text.count("a") >= a.text.count("a")
    tilted = await genesis_ps.power_sample(eos_toy(), "q", seed=5, reward=lambda t: float(len(t)), lam=0.5, **kw)
    assert tilted.reward == float(len(tilted.text))
    assert tilted.log_target == pytest.approx(2.0 * tilted.logp_sum + 0.5 * len(tilted.text))  # type: ignore[operator]


@pytest.mark.parametrize("method", ["mh", "smc", "imh"])
async def test_provider_caveats_travel_with_the_result(method: str) -> None:
    from dataclasses import replace

    from genesis_ps import power_sample
    from genesis_ps.testing.toys import eos_toy

    toy = eos_toy()
    toy.capabilities = replace(toy.capabilities, notes="proposals are drawn at temperature 1")
    r = await power_sample(toy, "p", method=method, alpha=2.0, n_mcmc=2, block_size=2, max_new_tokens=4,
                           n_particles=4, seed=0)  # fmt: skip
    assert r.extra["provider_notes"] == "proposals are drawn at temperature 1"
    quiet = eos_toy()
    quiet.capabilities = replace(quiet.capabilities, notes="")
    plain = await power_sample(quiet, "p", method=method, alpha=2.0, n_mcmc=2, block_size=2,
                               max_new_tokens=4, n_particles=4, seed=0)  # fmt: skip
    assert "provider_notes" not in plain.extra

"""MH's change-at-cut move: the token at the cut is redrawn without the current one, the ratio carries
(1 − q(x_t)) / (1 − q(y_t)), and the chain still targets p^α exactly."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genesis_ps
from genesis_ps.errors import ConfigError
from genesis_ps.sampling import Prompt, SamplerParams, Target
from genesis_ps.sampling.cuts import change_log_ratio
from genesis_ps.sampling.mh import mh_chains
from genesis_ps.sampling.protocol import Capabilities
from genesis_ps.testing import exact
from genesis_ps.testing.toys import ToyLM, eos_toy, random_toy, sharp_toy, trap_toy

P = Prompt.text("")


async def test_the_toy_never_draws_the_excluded_token_and_reports_the_unrestricted_log_q() -> None:
    toy = eos_toy()  # empty prefix: a 0.55, b 0.45; tau 1/2: q(a) = 0.55^2 / (0.55^2 + 0.45^2)
    segs = await toy.extend(P, [()] * 4000, 1, 0.5, seed=0, exclude_first=[0] * 2000 + [None] * 2000)
    firsts = Counter(s.tokens[0] for s in segs[:2000])
    assert set(firsts) == {1}
    q_a = 0.55**2 / (0.55**2 + 0.45**2)
    assert all(s.logq[0] == pytest.approx(math.log(1 - q_a)) for s in segs[:2000])
    free = Counter(s.tokens[0] for s in segs[2000:])
    assert abs(free[0] / 2000 - q_a) < 0.04  # rows without an exclusion are drawn as before


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0.01, 10.0), min_size=2, max_size=6), st.data())
def test_the_change_term_satisfies_detailed_balance(weights: list[float], data: st.DataObject) -> None:
    q = np.asarray(weights) / sum(weights)
    i = data.draw(st.integers(0, len(q) - 1))
    j = data.draw(st.integers(0, len(q) - 1).filter(lambda k: k != i))
    lq = np.log(q)
    rho = data.draw(st.floats(0.0, 1.0))
    fwd = change_log_ratio(rho, lq[i], lq[j])
    back = change_log_ratio(rho, lq[j], lq[i])
    assert fwd == pytest.approx(-back, abs=1e-9)
    # the mixture proposal's reverse-over-forward density ratio is the plain q ratio times the change term
    q_fwd = (1 - rho) * q[j] + rho * q[j] / (1 - q[i])
    q_back = (1 - rho) * q[i] + rho * q[i] / (1 - q[j])
    assert math.log(q_back / q_fwd) == pytest.approx(lq[i] - lq[j] + fwd, abs=1e-9)


@pytest.mark.parametrize(("toy_fn", "alpha", "t_max", "cuts", "early", "rho"), [
    (sharp_toy, 4.0, 3, "uniform", False, 1.0), (sharp_toy, 2.0, 3, "entropy", True, 0.5),
    (eos_toy, 4.0, 5, "entropy", False, 0.5), (eos_toy, 2.0, 5, "uniform", True, 1.0),
    (trap_toy, 4.0, 4, "entropy", True, 0.5), (random_toy, 4.0, 4, "entropy", False, 0.3),
    (random_toy, 2.0, 4, "uniform", True, 0.8),
])  # fmt: skip
async def test_change_at_cut_reaches_the_noise_floor(toy_fn, alpha, t_max, cuts, early, rho) -> None:  # type: ignore[no-untyped-def]
    toy = toy_fn()
    n = 1500
    params = SamplerParams(alpha=alpha, max_new_tokens=t_max, block_size=2, n_mcmc=12, cuts=cuts,
                           change_at_cut=rho, early_reject=early)  # fmt: skip
    run = await mh_chains(toy, P, params, n_chains=n, target=Target(alpha), rng=np.random.default_rng(11))
    want = exact.power_distribution(toy, t_max, alpha)
    floor = exact.noise_floor(want, n, np.random.default_rng(0))
    assert exact.tv_distance(exact.empirical(s.tokens for s in run.final), want) <= 1.5 * floor + 0.01
    assert run.accepted > 0


async def test_change_at_cut_mixes_the_first_token_where_plain_cuts_do_not_yet() -> None:
    # sharp, α = 4: p^α puts 0.87 on "BC", while the proposal at τ = 1/3 draws "A" first 77% of the time
    toy, n, alpha = sharp_toy(), 3000, 4.0
    want = exact.power_distribution(toy, 3, alpha)
    tv = {}
    for change in (False, True):
        params = SamplerParams(alpha=alpha, max_new_tokens=3, block_size=2, n_mcmc=3,
                               change_at_cut=1.0 if change else 0.0)
        run = await mh_chains(toy, P, params, n_chains=n, target=Target(alpha), rng=np.random.default_rng(5))
        tv[change] = exact.tv_distance(exact.empirical(s.tokens for s in run.final), want)
    assert tv[True] < 0.05 < 0.2 < tv[False]


async def test_a_cut_with_no_other_token_is_a_null_move_without_a_model_call() -> None:
    # sharp: after two letters EOS is certain, so a cut there has no other branch
    toy = sharp_toy()
    params = SamplerParams(alpha=2.0, max_new_tokens=3, block_size=3, n_mcmc=40, change_at_cut=1.0)
    run = await mh_chains(toy, P, params, n_chains=200, target=Target(2.0), rng=np.random.default_rng(0))
    generated = run.meter.tokens_generated
    # 40 steps x 200 chains, uniform cuts over 3 positions: a cut at 0 regenerates 3 tokens, at 1 two, and
    # at 2 (EOS, certain) none — (3 + 2 + 0)/3 per step, not (3 + 2 + 1)/3 (standard deviation ~80 tokens)
    assert abs(generated - (200 * 3 + 40 * 200 * 5 / 3)) < 500
    assert run.early_rejected == 0  # a null move is not an early rejection
    assert run.steps == 40 * 200


class NoExcludeToy(ToyLM):
    def __init__(self) -> None:
        super().__init__("plain", "ab", lambda pre: [0.5, 0.3, 0.2] if pre else [0.6, 0.4, 0.0], max_len=3)
        self.capabilities = Capabilities(logprobs="exact", prefix_continuation=True, eos_token_id=self.eos,
                                         entropy="exact")  # fmt: skip


async def test_bad_change_at_cut_fails_before_any_model_call() -> None:
    with pytest.raises(ConfigError) as e:
        SamplerParams(change_at_cut=0.5, n_tries=2)
    assert e.value.param == "change_at_cut"
    with pytest.raises(ConfigError) as e:
        SamplerParams(change_at_cut="yes")  # type: ignore[arg-type]
    assert e.value.param == "change_at_cut"
    with pytest.raises(ConfigError) as e:
        SamplerParams(change_at_cut=1.5)
    assert e.value.param == "change_at_cut"
    toy = NoExcludeToy()
    with pytest.raises(ConfigError) as e:
        await genesis_ps.power_sample(toy, "q", method="mh", change_at_cut=1.0, max_new_tokens=3, seed=0)
    assert e.value.param == "change_at_cut" and toy.calls == 0

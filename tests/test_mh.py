"""Block-wise MH: the acceptance arithmetic, exactness on toys, selection, budget, tilt, reproducibility."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genesis_ps
from genesis_ps.errors import CapabilityError, ConfigError, MalformedResponseError
from genesis_ps.sampling import Budget, Prompt, SamplerParams, Segment, Target
from genesis_ps.sampling.mh import mh_chains, mh_log_ratio, run_mh, stage_limits
from genesis_ps.testing import ScriptedModel, exact
from genesis_ps.testing.toys import ToyLM, eos_toy, sharp_toy

P = Prompt.text("")


class CountingToy(ToyLM):
    """The EOS toy, counting every token it samples and the limits it is asked for."""

    def __init__(self) -> None:
        base = eos_toy()
        super().__init__("eos", "ab", lambda pre: np.exp(base.logp_table[base.node_of(pre)]).tolist(), max_len=4)
        self.sampled = 0
        self.limits: list[list[int]] = []

    async def extend(self, prompt, prefixes, max_new_tokens, temperature, *, seed=None):  # type: ignore[no-untyped-def]
        segs = await super().extend(prompt, prefixes, max_new_tokens, temperature, seed=seed)
        self.sampled += sum(s.n_tokens for s in segs)
        self.limits.append([len(p) + m for p, m in zip(prefixes, list(max_new_tokens), strict=True)])  # type: ignore[arg-type]
        return segs


def test_log_ratio_arithmetic_with_unequal_suffixes_at_eos() -> None:
    # x = [a, b, EOS] cut at 1: suffix (b, EOS); proposal y = [a, a, b, b] (stage limit 4, no EOS)
    cur_p, cur_q = [-0.5, -1.0], [-0.3, -0.2]
    prop_p, prop_q = [-0.1, -0.2, -0.3], [-0.05, -0.1, -0.4]
    lr = mh_log_ratio(4.0, cur_p, cur_q, prop_p, prop_q, cur_len=3, prop_len=4)
    want = 4.0 * (-0.6 - -1.5) + (-0.5) - (-0.55) + math.log(3) - math.log(4)
    assert lr == pytest.approx(want)
    naive = mh_log_ratio(4.0, cur_p, cur_q, prop_p, prop_q, cur_len=3, prop_len=4, length_correction=False)
    assert naive == pytest.approx(want - math.log(3 / 4))
    tilted = mh_log_ratio(4.0, cur_p, cur_q, prop_p, prop_q, cur_len=3, prop_len=4, cur_reward=1.0, prop_reward=2.5)
    assert tilted == pytest.approx(want + 1.5)
    # the reverse move's ratio is the exact negative (detailed balance)
    back = mh_log_ratio(4.0, prop_p, prop_q, cur_p, cur_q, cur_len=4, prop_len=3)
    assert back == pytest.approx(-want)


_logs = st.lists(st.floats(min_value=-20, max_value=0), min_size=1, max_size=6)


@settings(max_examples=50, deadline=None)
@given(_logs, _logs, st.integers(0, 5), st.floats(0.1, 8), st.floats(-3, 3), st.floats(-3, 3))
def test_log_ratio_of_the_reverse_move_is_the_negative(suffix_x, suffix_y, t, alpha, rx, ry) -> None:  # type: ignore[no-untyped-def]
    qx = [v / 2 for v in suffix_x]
    qy = [v / 3 for v in suffix_y]
    lx, ly = t + len(suffix_x), t + len(suffix_y)
    fwd = mh_log_ratio(alpha, suffix_x, qx, suffix_y, qy, cur_len=lx, prop_len=ly, cur_reward=rx, prop_reward=ry)
    back = mh_log_ratio(alpha, suffix_y, qy, suffix_x, qx, cur_len=ly, prop_len=lx, cur_reward=ry, prop_reward=rx)
    assert fwd == pytest.approx(-back, abs=1e-9)


def test_stage_limits() -> None:
    assert stage_limits(5, 2) == [2, 4, 5]
    assert stage_limits(4, 2) == [2, 4]
    assert stage_limits(3, 8) == [3]


def _dist(run_states: Sequence[object]) -> dict[tuple[int, ...], float]:
    return exact.empirical(s.tokens for s in run_states)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("toy_fn", "alpha", "n_mcmc", "t_max"), [(eos_toy, 2.0, 20, 5), (sharp_toy, 4.0, 30, 3), (eos_toy, 3.0, 20, 3)]
)
async def test_mh_reaches_the_noise_floor_of_exact_p_alpha(toy_fn, alpha, n_mcmc, t_max) -> None:  # type: ignore[no-untyped-def]
    # (eos_toy, T = 3): some sequences are cut at the length limit without EOS
    toy = toy_fn()
    n = 1000
    params = SamplerParams(alpha=alpha, max_new_tokens=t_max, block_size=2, n_mcmc=n_mcmc)
    run = await mh_chains(toy, P, params, n_chains=n, target=Target(alpha), rng=np.random.default_rng(5))
    want = exact.power_distribution(toy, t_max, alpha)
    floor = exact.noise_floor(want, n, np.random.default_rng(0))
    tv = exact.tv_distance(_dist(run.final), want)
    assert tv <= 1.5 * floor + 0.01
    assert tv < 0.5 * exact.tv_distance(exact.temperature_distribution(toy, t_max, 1 / alpha), want)


async def test_without_stage_limit_and_length_correction_mh_is_far_from_p_alpha() -> None:
    toy = eos_toy()
    params = SamplerParams(alpha=2.0, max_new_tokens=5, block_size=2, n_mcmc=20)
    run = await mh_chains(
        toy, P, params, n_chains=500, target=Target(2.0), rng=np.random.default_rng(5),
        stage_limit=False, length_term=False,
    )
    assert exact.tv_distance(_dist(run.final), exact.power_distribution(toy, 5, 2.0)) > 0.2


async def test_proposals_regenerate_to_the_stage_limit_and_every_token_is_counted() -> None:
    toy = CountingToy()
    r = await genesis_ps.power_sample(
        toy, "q", method="mh", alpha=2.0, max_new_tokens=5, block_size=2, n_mcmc=4, seed=1, early_reject=False
    )
    # every extend asks for continuations up to a stage limit (2, 4 or 5), never up to a state's own length
    assert {lim for call in toy.limits for lim in call} <= {2, 4, 5}
    assert toy.limits[-1] == [5]
    assert r.tokens_generated == toy.sampled
    assert r.requests == toy.calls and 3 * 4 < toy.calls <= 3 + 3 * 4  # growth is skipped once a state ended
    assert r.proposals == 12 and 0 <= r.accepted <= 12
    assert r.acceptance_rate == pytest.approx(r.accepted / 12)
    assert r.tokens_returned == len(r.tokens) and r.text == toy.decode(r.tokens)
    assert r.eos == (r.tokens[-1] == toy.eos)
    assert r.cost_multiplier == pytest.approx(r.tokens_generated / r.tokens_returned)
    assert r.log_target == pytest.approx(2.0 * r.logp_sum)
    assert r.method == "mh" and r.provider == "toy" and r.alpha == 2.0 and not r.approx_logprobs


async def test_same_seed_same_result() -> None:
    kw = dict(method="mh", alpha=4.0, max_new_tokens=5, block_size=2, n_mcmc=5)
    a = await genesis_ps.power_sample(eos_toy(), "q", seed=42, **kw)
    b = await genesis_ps.power_sample(eos_toy(), "q", seed=42, **kw)
    assert (a.tokens, a.accepted, a.tokens_generated) == (b.tokens, b.accepted, b.tokens_generated)
    assert a.logp_sum == b.logp_sum
    runs = [await genesis_ps.power_sample(eos_toy(), "q", seed=s, **kw) for s in range(8)]
    assert len({(tuple(r.tokens), r.tokens_generated) for r in runs}) > 1


async def test_selection_never_changes_the_chain() -> None:
    kw = dict(method="mh", alpha=2.0, max_new_tokens=5, block_size=2, n_mcmc=10)

    def n_b(text: str) -> float:
        return float(text.count("b"))

    for seed in range(5):
        last = await genesis_ps.power_sample(eos_toy(), "q", seed=seed, **kw)
        best = await genesis_ps.power_sample(eos_toy(), "q", seed=seed, selection="best_target", **kw)
        ev = await genesis_ps.power_sample(eos_toy(), "q", seed=seed, selection="best_evaluator", evaluator=n_b, **kw)
        assert last.accepted == best.accepted == ev.accepted
        assert last.tokens_generated == best.tokens_generated == ev.tokens_generated
        assert best.log_target >= last.log_target  # type: ignore[operator]
        assert ev.reward == n_b(ev.text) >= n_b(last.text)
        assert best.selection == "best_target" and ev.selection == "best_evaluator"


async def test_best_evaluator_without_evaluator_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as e:
        await genesis_ps.power_sample(eos_toy(), "q", method="mh", selection="best_evaluator", max_new_tokens=5)
    assert e.value.param == "evaluator"


async def test_budget_stops_before_overspending() -> None:
    toy = eos_toy()
    r = await genesis_ps.power_sample(
        toy, "q", method="mh", max_new_tokens=5, block_size=2, n_mcmc=10, seed=0, budget=Budget(max_requests=4)
    )
    assert r.budget_exhausted and r.requests == 4 == toy.calls
    r = await genesis_ps.power_sample(
        eos_toy(), "q", method="mh", max_new_tokens=5, block_size=2, n_mcmc=10, seed=0, budget=Budget(max_tokens=9)
    )
    assert r.budget_exhausted and r.tokens_generated <= 9 and r.tokens_returned >= 1
    full = await genesis_ps.power_sample(
        eos_toy(), "q", method="mh", max_new_tokens=5, block_size=2, n_mcmc=2, seed=0, budget=Budget(max_requests=100)
    )
    assert not full.budget_exhausted


@pytest.mark.parametrize("block_tries", [1, 3])
async def test_reward_tilt_moves_mass_exactly_to_the_tilted_target(block_tries: int) -> None:
    """Also with block tries, whose draws are weighted with the reward and carry it into the chain."""
    toy = eos_toy()
    target = Target(2.0, reward=lambda text: float(text.count("b")), lam=1.0)
    params = SamplerParams(alpha=2.0, max_new_tokens=5, block_size=2, n_mcmc=20, block_tries=block_tries)
    run = await mh_chains(toy, P, params, n_chains=1000, target=target, rng=np.random.default_rng(9))
    tilted = exact.target_distribution(toy, 5, target)
    plain = exact.power_distribution(toy, 5, 2.0)
    floor = exact.noise_floor(tilted, 1000, np.random.default_rng(0))
    emp = _dist(run.final)
    assert exact.tv_distance(emp, tilted) <= 1.5 * floor + 0.01
    assert exact.tv_distance(tilted, plain) > 0.1

    def mean_b(d: dict[tuple[int, ...], float]) -> float:
        return sum(p * toy.decode(s).count("b") for s, p in d.items())

    assert mean_b(emp) > mean_b(plain) + 0.2


async def test_block_tries_weigh_their_draws_with_the_reward() -> None:
    """At one step per block the chain ends near its start; block draws weighted by π/q including the
    reward put it near the tilted target (EOS toy, λ = 3: TV 0.52 with one draw, 0.03 with sixteen; weights
    without the reward left it at 0.55)."""
    toy = eos_toy()
    target = Target(2.0, reward=lambda text: float(text.count("b")), lam=3.0)
    want = exact.target_distribution(toy, 5, target)
    tv = {}
    for k in (1, 16):
        params = SamplerParams(alpha=2.0, max_new_tokens=5, block_size=2, n_mcmc=1, block_tries=k)
        run = await mh_chains(toy, P, params, n_chains=2000, target=target, rng=np.random.default_rng(4))
        tv[k] = exact.tv_distance(_dist(run.final), want)
    assert tv[16] < 0.25 * tv[1]


async def test_progress_reports_every_stage() -> None:
    seen: list[tuple[int, int]] = []
    await genesis_ps.power_sample(
        eos_toy(), "q", method="mh", max_new_tokens=5, block_size=2, n_mcmc=1, seed=0,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert seen == [(1, 3), (2, 3), (3, 3)]


async def test_model_without_prefix_continuation() -> None:
    m = ScriptedModel(["one two"])
    with pytest.raises(CapabilityError):
        await run_mh(m, P, SamplerParams(), target=Target(2.0), rng=np.random.default_rng(0), budget=None,
                     evaluator=None, progress=None)
    r = await genesis_ps.power_sample(m, "q", method="mh", n_mcmc=3, seed=0)
    assert r.method == "imh" and r.requested_method == "mh" and r.text == "one two"


class ShortToy(ToyLM):
    """Returns a segment with no tokens: malformed output."""

    async def extend(self, prompt, prefixes, max_new_tokens, temperature, *, seed=None):  # type: ignore[no-untyped-def]
        return [Segment(tokens=(), logp=(), logq=(), eos=False) for _ in prefixes]


async def test_malformed_segments_raise_a_provider_error() -> None:
    base = sharp_toy()
    toy = ShortToy("short", "ABCD", lambda pre: np.exp(base.logp_table[base.node_of(pre)]).tolist(), max_len=2)
    with pytest.raises(MalformedResponseError):
        await genesis_ps.power_sample(toy, "q", method="mh", max_new_tokens=3, seed=0)
    r = await genesis_ps.generate(toy, "q", SamplerParams(max_new_tokens=3, seed=0))
    assert r.fallback == "provider_error:MalformedResponseError" and r.method == "single"

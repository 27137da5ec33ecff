"""Token-level power sampling: the estimator, its jackknife, decision points, and its error on the toys."""

from __future__ import annotations

import math

import numpy as np
import pytest

import genesis_ps
from genesis_ps.errors import ConfigError
from genesis_ps.sampling import Prompt, SamplerParams, Target
from genesis_ps.sampling.protocol import Segment
from genesis_ps.sampling.tps import reuse_rollout, run_tps, tps_distribution
from genesis_ps.testing import ScriptedModel, exact
from genesis_ps.testing.toys import eos_toy, random_toy, sharp_toy

P = Prompt.text("")


def test_estimator_with_known_future_mass() -> None:
    # two candidates, p = (0.6, 0.4); every rollout of the first sees power mass 0.1, of the second 0.5
    full, jk = tps_distribution(2.0, [math.log(0.6), math.log(0.4)], [[math.log(0.1)] * 3, [math.log(0.5)] * 3])
    want = np.array([0.36 * 0.1, 0.16 * 0.5]) / (0.36 * 0.1 + 0.16 * 0.5)
    assert np.allclose(full, want) and np.allclose(jk, want)  # identical rollouts: nothing to correct
    one, same = tps_distribution(2.0, [0.0, 0.0], [[0.0], [math.log(3.0)]])
    assert np.allclose(one, [0.25, 0.75]) and np.allclose(same, one)  # R = 1: no jackknife
    eos_only, _ = tps_distribution(3.0, [math.log(0.5), math.log(0.5)], [[], [math.log(0.2)]])
    assert np.allclose(eos_only, [1 / 1.2, 0.2 / 1.2])  # an EOS candidate has future mass 1


def test_jackknife_shrinks_the_ratio_bias() -> None:
    # ζ of candidate 1 is estimated from lognormal rollouts with mean 1; π = (0.5, 0.5) exactly
    rng = np.random.default_rng(0)
    r, reps, s2 = 4, 20000, 1.0
    plain, jack = [], []
    for _ in range(reps):
        w = rng.normal(-s2 / 2, math.sqrt(s2), size=r)
        a, b = tps_distribution(1.0, [0.0, 0.0], [[0.0] * r, w.tolist()])
        plain.append(a[1])
        jack.append(b[1])
    bias_plain, bias_jack = abs(np.mean(plain) - 0.5), abs(np.mean(jack) - 0.5)
    assert bias_plain > 0.02 and bias_jack < 0.5 * bias_plain


@pytest.mark.parametrize(("toy_fn", "alpha", "t_max"), [(eos_toy, 4.0, 5), (sharp_toy, 4.0, 3)])
async def test_close_to_p_alpha_on_toys_when_every_position_is_a_decision(toy_fn, alpha, t_max) -> None:  # type: ignore[no-untyped-def]
    toy = toy_fn()
    params = SamplerParams(method="tps", alpha=alpha, max_new_tokens=t_max, candidates=8, rollouts=8,
                           horizon=t_max, decision_entropy=0.0)  # fmt: skip
    rng = np.random.default_rng(0)
    out = []
    for seed in rng.integers(2**63, size=600).tolist():
        r = await run_tps(toy, P, params, target=Target(alpha), rng=np.random.default_rng(seed), budget=None,
                          evaluator=None, progress=None)  # fmt: skip
        out.append(tuple(r.tokens))
    want = exact.power_distribution(toy, t_max, alpha)
    tv = exact.tv_distance(exact.empirical(out), want)
    low = exact.tv_distance(exact.temperature_distribution(toy, t_max, 1 / alpha), want)
    assert tv < 0.06 and tv < 0.2 * low


async def test_no_decision_points_is_plain_sampling_at_the_proposal_temperature() -> None:
    toy = eos_toy()
    r = await genesis_ps.power_sample(toy, "q", method="tps", max_new_tokens=5, decision_entropy=50.0, seed=1)
    assert r.method == "tps" and r.extra["decision_points"] == 0 and r.extra["rollout_calls"] == 0
    assert r.tokens_generated == r.tokens_returned and toy.calls == 1
    assert "approximate" in r.extra
    d = await genesis_ps.power_sample(toy, "q", method="tps", max_new_tokens=5, decision_entropy=0.0, rollouts=3,
                                      seed=1)  # fmt: skip
    assert d.extra["decision_points"] >= 1 and d.tokens_generated > d.tokens_returned
    assert d.logp_sum == pytest.approx(sum(toy.logp_table[toy.node_of(d.tokens[:i]), t]
                                           for i, t in enumerate(d.tokens)))  # fmt: skip


async def test_refusals_before_any_model_work() -> None:
    m = ScriptedModel(["a b"])
    with pytest.raises(ConfigError) as e:
        await genesis_ps.power_sample(m, "q", method="tps", seed=0)
    assert e.value.param == "method" and not m.calls
    toy = eos_toy()
    with pytest.raises(ConfigError) as e:
        await genesis_ps.power_sample(toy, "q", method="tps", seed=0, reward=len, lam=1.0)
    assert e.value.param == "reward"
    with pytest.raises(ConfigError) as e:
        await genesis_ps.power_sample(toy, "q", method="tps", seed=0, selection="consensus", extract_answer=str)
    assert e.value.param == "selection" and toy.calls == 0


def _seg(tokens: tuple[int, ...], entropy: tuple[float, ...], eos: bool = False) -> Segment:
    return Segment(tokens=tokens, logp=tuple(-0.1 * t for t in tokens), logq=tuple(-0.2 * t for t in tokens),
                   eos=eos, entropy=entropy)  # fmt: skip


def test_a_reused_rollout_is_picked_by_weight_and_cut_before_the_next_decision_point() -> None:
    a, b = _seg((1, 2, 3), (0.5, 3.0, 0.1)), _seg((4, 5, 6), (0.2, 0.3, 0.4), eos=True)
    rng = np.random.default_rng(0)
    picks = [reuse_rollout([a, b], [0.0, math.log(3.0)], 1.0, rng) for _ in range(4000)]
    share_b = np.mean([p.tokens == b.tokens for p in picks])
    assert abs(share_b - 0.75) < 0.03  # in proportion to the importance weights 1 : 3
    cut = next(p for p in picks if p.tokens[0] == 1)
    assert cut.tokens == (1,) and cut.logp == (-0.1,) and cut.logq == (-0.2,) and cut.entropy == (0.5,)
    assert not cut.eos  # the EOS of a rollout is kept only with the whole rollout
    whole = next(p for p in picks if p.tokens[0] == 4)
    assert whole == b
    first = reuse_rollout([_seg((7, 8), (2.0, 0.0))], [0.0], 1.0, rng)
    assert first.n_tokens == 0  # the first token after the candidate is itself a decision point
    assert reuse_rollout([Segment(tokens=(7,), logp=(-1.0,), logq=(-1.0,), eos=False)], [0.0], 1.0, rng).n_tokens == 0


@pytest.mark.parametrize("reuse", [True, False])
async def test_decision_points_between_plain_tokens_stay_close_to_p_alpha(reuse: bool) -> None:
    # random_toy(1): about half its positions reach 1.07 nats, so decisions and drawn tokens alternate
    toy, alpha, t_max = random_toy(1), 4.0, 3
    params = SamplerParams(method="tps", alpha=alpha, max_new_tokens=t_max, candidates=8, rollouts=8,
                           horizon=t_max, decision_entropy=1.07, reuse_rollouts=reuse)  # fmt: skip
    out, reused = [], 0
    for seed in np.random.default_rng(0).integers(2**63, size=800).tolist():
        r = await run_tps(toy, P, params, target=Target(alpha), rng=np.random.default_rng(seed), budget=None,
                          evaluator=None, progress=None)  # fmt: skip
        out.append(tuple(r.tokens))
        reused += r.extra["reused_tokens"]
        assert r.logp_sum == pytest.approx(sum(toy.logp_table[toy.node_of(r.tokens[:i]), t]
                                               for i, t in enumerate(r.tokens)))  # fmt: skip
    want = exact.power_distribution(toy, t_max, alpha)
    tv = exact.tv_distance(exact.empirical(out), want)
    low = exact.tv_distance(exact.temperature_distribution(toy, t_max, 1 / alpha), want)
    assert tv < 0.07 and tv < 0.15 * low
    assert (reused > 0) == reuse


async def test_reusing_rollouts_saves_model_calls() -> None:
    toy = random_toy(1)
    calls: dict[bool, int] = {}
    for reuse in (True, False):
        before = toy.calls
        for seed in range(200):
            await genesis_ps.power_sample(toy, "q", method="tps", alpha=4.0, max_new_tokens=3, candidates=8,
                                          rollouts=2, horizon=3, decision_entropy=1.07, reuse_rollouts=reuse,
                                          seed=seed)  # fmt: skip
        calls[reuse] = toy.calls - before
    assert calls[True] < 0.85 * calls[False]


async def test_progress_counts_every_returned_token() -> None:
    toy, seen = random_toy(1), []
    params = SamplerParams(method="tps", alpha=4.0, max_new_tokens=3, candidates=8, rollouts=2, horizon=3,
                           decision_entropy=1.07)  # fmt: skip
    for seed in range(20):
        seen.clear()
        r = await run_tps(toy, P, params, target=Target(4.0), rng=np.random.default_rng(seed), budget=None,
                          evaluator=None, progress=lambda done, total: seen.append((done, total)))  # fmt: skip
        assert seen == sorted(seen) and seen[-1] == (r.tokens_returned, 3)

"""Power-SMC: weights, ESS, resampling, annealing telescoping, batching, exactness, selection."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genesis_ps
from genesis_ps.sampling import Budget, Prompt, SamplerParams, Target
from genesis_ps.sampling.smc import (
    alpha_schedule,
    ess,
    incremental_log_weight,
    multinomial_resample,
    normalise,
    run_smc,
    smc_particles,
    systematic_resample,
)
from genesis_ps.testing import ScriptedModel, exact
from genesis_ps.testing.toys import ToyLM, eos_toy, sharp_toy

P = Prompt.text("")


def test_alpha_schedule() -> None:
    assert alpha_schedule(4.0, 0, 3) == [4.0, 4.0, 4.0]
    assert alpha_schedule(4.0, 3, 5) == [2.0, 3.0, 4.0, 4.0, 4.0]
    # the schedule has not reached α when the sequence runs out of blocks: the final block is α anyway
    assert alpha_schedule(4.0, 6, 3) == [1.5, 2.0, 4.0]


def test_incremental_weight_formula() -> None:
    w = incremental_log_weight(3.0, 2.0, -4.0, [-1.0, -0.5], [-0.2, -0.3], reward_diff=0.25)
    assert w == pytest.approx(3.0 * -1.5 + 0.5 + 1.0 * -4.0 + 0.25)
    assert incremental_log_weight(4.0, 4.0, -7.0) == 0.0  # a finished particle at constant α


def test_ess_and_normalise() -> None:
    assert ess(np.zeros(8)) == pytest.approx(8.0)
    assert ess(np.array([0.0, -50.0, -50.0, -50.0])) == pytest.approx(1.0, abs=1e-6)
    assert ess(np.log(np.array([0.5, 0.5, 1e-300, 1e-300]))) == pytest.approx(2.0)
    assert normalise(np.array([1000.0, 1000.0])).tolist() == [0.5, 0.5]  # no overflow


def test_resampling_schemes() -> None:
    w = np.array([0.5, 0.25, 0.125, 0.125])
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = systematic_resample(w, rng)
        counts = np.bincount(idx, minlength=4)
        assert np.all(np.abs(counts - 4 * w) < 1.0 + 1e-9)  # systematic: within one of N·w
    big = np.bincount(multinomial_resample(np.full(1000, 1e-3), rng), minlength=1000)
    assert big.sum() == 1000 and big.max() < 10
    idx = multinomial_resample(np.array([0.0, 1.0, 0.0]), rng)
    assert idx.tolist() == [1, 1, 1]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=1e-6, max_value=1.0), min_size=1, max_size=40), st.integers(0, 2**32))
def test_systematic_resampling_keeps_each_count_within_one_of_n_w(raw, seed) -> None:  # type: ignore[no-untyped-def]
    w = np.array(raw) / np.sum(raw)
    counts = np.bincount(systematic_resample(w, np.random.default_rng(seed)), minlength=len(w))
    assert counts.sum() == len(w)
    assert np.all(np.abs(counts - len(w) * w) < 1.0 + 1e-9)


@pytest.mark.parametrize(("toy_fn", "t_max", "block", "anneal"), [(eos_toy, 5, 2, 2), (sharp_toy, 6, 1, 10)])
async def test_weights_telescope_to_alpha_logp_minus_logq(toy_fn, t_max, block, anneal) -> None:  # type: ignore[no-untyped-def]
    # sharp toy with B = 1, T = 6: every particle ends on EOS at block 3 while the schedule is still far
    # below α, so the final correction must be applied
    toy = toy_fn()
    reward = Target(3.0, reward=lambda t: float(len(t)), lam=0.5)
    for target in (Target(3.0), reward):
        params = SamplerParams(
            alpha=3.0, max_new_tokens=t_max, block_size=block, n_particles=16, anneal_steps=anneal, ess_threshold=1e-12
        )
        run = await smc_particles(toy, P, params, target=target, rng=np.random.default_rng(1))
        assert run.resamples == 0
        r0 = target.reward_term("")
        for s, lw in zip(run.particles, run.logw, strict=True):
            want = 3.0 * s.logp_sum - s.logq_sum + target.reward_term(toy.decode(s.tokens)) - r0
            assert lw == pytest.approx(want, abs=1e-9)


async def test_resampling_and_ess_history() -> None:
    params = SamplerParams(alpha=4.0, max_new_tokens=5, block_size=1, n_particles=16, ess_threshold=1.0)
    run = await smc_particles(eos_toy(), P, params, target=Target(4.0), rng=np.random.default_rng(3))
    assert len(run.ess_history) == run.blocks_done
    assert all(0 < e <= 16 + 1e-9 for e in run.ess_history)
    assert run.resamples >= 1
    r = await genesis_ps.power_sample(eos_toy(), "q", params, method="smc", seed=3)
    assert r.ess_history and r.resamples >= 1 and r.method == "smc"


async def test_all_particles_extended_in_one_batched_call_per_block_or_concurrent_chunks() -> None:
    toy = eos_toy()
    r = await genesis_ps.power_sample(toy, "q", method="smc", max_new_tokens=5, block_size=2, n_particles=8, seed=0)
    assert toy.calls == r.requests <= 3
    small = ToyLM("eos", "ab", lambda pre: np.exp(toy.logp_table[toy.node_of(pre)]).tolist(), max_len=4,
                  max_batch=3, latency=0.01)
    r = await genesis_ps.power_sample(small, "q", method="smc", max_new_tokens=5, block_size=5, n_particles=8, seed=0)
    assert r.requests == small.calls == 3  # ceil(8 / 3) chunks, one block
    assert small.max_in_flight == 3  # gathered concurrently
    assert r.tokens_generated >= 8


async def test_smc_matches_exact_p_alpha() -> None:
    toy = eos_toy()
    n = 600
    params = SamplerParams(method="smc", alpha=2.0, max_new_tokens=5, block_size=2, n_particles=32, anneal_steps=2)
    seeds = np.random.default_rng(7).integers(2**63, size=n).tolist()
    samples = []
    for s in seeds:
        r = await run_smc(toy, P, params, target=Target(2.0), rng=np.random.default_rng(s), budget=None,
                          evaluator=None, progress=None)
        samples.append(r.tokens)
    want = exact.power_distribution(toy, 5, 2.0)
    floor = exact.noise_floor(want, n, np.random.default_rng(0))
    assert exact.tv_distance(exact.empirical(samples), want) <= 1.5 * floor + 0.01


async def test_selection_modes_pick_among_final_particles() -> None:
    kw = dict(method="smc", alpha=2.0, max_new_tokens=5, block_size=2, n_particles=8)
    for seed in range(4):
        last = await genesis_ps.power_sample(eos_toy(), "q", seed=seed, **kw)
        best = await genesis_ps.power_sample(eos_toy(), "q", seed=seed, selection="best_target", **kw)
        ev = await genesis_ps.power_sample(
            eos_toy(), "q", seed=seed, selection="best_evaluator", evaluator=lambda t: -float(len(t)), **kw
        )
        assert best.log_target >= last.log_target  # type: ignore[operator]
        assert ev.reward == -len(ev.text) >= -len(last.text)
        assert best.tokens_generated == last.tokens_generated == ev.tokens_generated


async def test_same_seed_same_result_and_budget() -> None:
    kw = dict(method="smc", alpha=4.0, max_new_tokens=5, block_size=2, n_particles=6)
    a = await genesis_ps.power_sample(eos_toy(), "q", seed=9, **kw)
    b = await genesis_ps.power_sample(eos_toy(), "q", seed=9, **kw)
    assert (a.tokens, a.ess_history, a.tokens_generated) == (b.tokens, b.ess_history, b.tokens_generated)
    toy = eos_toy()
    r = await genesis_ps.power_sample(toy, "q", seed=9, budget=Budget(max_tokens=12), **kw)
    assert r.budget_exhausted and r.tokens_generated <= 12 and toy.calls == 1


async def test_whole_sequence_smc_on_a_model_without_prefix_continuation() -> None:
    m = ScriptedModel(["alpha beta", "gamma"])
    r = await genesis_ps.power_sample(m, "q", method="smc", n_particles=2, block_size=4, max_new_tokens=16, seed=0)
    assert r.method == "smc" and r.text in {"alpha beta", "gamma"} and r.requests == 1
    assert r.extra["block_size"] == 16
    assert math.isfinite(r.log_target)  # type: ignore[arg-type]

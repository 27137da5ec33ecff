"""SMC upgrades: stratified and chopthin resampling, the α ramp by tokens, adaptive rounds, consensus."""

from __future__ import annotations

import numpy as np
import pytest

import genesis_ps
from genesis_ps.sampling import Prompt, SamplerParams, Target
from genesis_ps.sampling.resample import CHOPTHIN_ETA, RESAMPLERS, chopthin_resample, stratified_resample
from genesis_ps.sampling.smc import ramp_schedule, run_smc, smc_particles
from genesis_ps.testing import exact
from genesis_ps.testing.toys import eos_toy, sharp_toy

P = Prompt.text("")


def test_stratified_counts_and_names() -> None:
    w = np.array([0.5, 0.25, 0.125, 0.125])
    counts = np.bincount(stratified_resample(w, np.random.default_rng(0)), minlength=4)
    assert counts.sum() == 4 and np.all(np.abs(counts - 4 * w) < 2)
    assert set(RESAMPLERS) >= {"systematic", "stratified", "chopthin"}


def test_chopthin_is_unbiased_and_keeps_weights_bounded() -> None:
    rng = np.random.default_rng(1)
    w = rng.dirichlet(np.full(12, 0.3))
    mass = np.zeros(12)
    reps = 20000
    for _ in range(reps):
        idx, logw = chopthin_resample(w, rng)
        nw = np.exp(logw - logw.max())
        assert len(idx) == 12 and nw.max() / nw.min() <= CHOPTHIN_ETA / 2 + 1e-9
        np.add.at(mass, idx, nw / nw.sum())
    assert np.allclose(mass / reps, w, atol=0.006)


def test_ramp_schedule_by_tokens() -> None:
    assert ramp_schedule(4.0, 0, [2, 4]) == [4.0, 4.0]
    assert ramp_schedule(4.0, 4, [2, 4, 6]) == [2.5, 4.0, 4.0]
    assert ramp_schedule(4.0, 100, [2, 4]) == [1.06, 4.0]  # a ramp longer than the sequence: the last block is α


async def test_ramp_weights_telescope_and_a_long_ramp_is_stated() -> None:
    toy = eos_toy()
    params = SamplerParams(alpha=3.0, max_new_tokens=5, block_size=1, n_particles=16, ramp_tokens=50,
                           ess_threshold=1e-12)  # fmt: skip
    run = await smc_particles(toy, P, params, target=Target(3.0), rng=np.random.default_rng(1))
    for s, lw in zip(run.particles, run.logw, strict=True):
        assert lw == pytest.approx(3.0 * s.logp_sum - s.logq_sum, abs=1e-9)
    r = await genesis_ps.power_sample(toy, "q", params, method="smc", seed=0)
    assert "longer than max_new_tokens" in r.extra["ramp_note"]


@pytest.mark.parametrize("resampler", ["stratified", "chopthin"])
async def test_resamplers_reach_the_noise_floor(resampler: str) -> None:
    toy = eos_toy()
    params = SamplerParams(method="smc", alpha=2.0, max_new_tokens=5, block_size=2, n_particles=32,
                           resampler=resampler)  # type: ignore[arg-type]
    rng = np.random.default_rng(2)
    out = []
    for seed in rng.integers(2**63, size=800).tolist():
        r = await run_smc(toy, P, params, target=Target(2.0), rng=np.random.default_rng(seed), budget=None,
                          evaluator=None, progress=None)  # fmt: skip
        out.append(tuple(r.tokens))
        assert r.extra["resampler"] == resampler
    want = exact.power_distribution(toy, 5, 2.0)
    floor = exact.noise_floor(want, 800, np.random.default_rng(0))
    assert exact.tv_distance(exact.empirical(out), want) <= 1.5 * floor + 0.01


async def test_adaptive_rounds_add_particles_while_the_pooled_ess_is_low() -> None:
    toy = sharp_toy()
    base = SamplerParams(method="smc", alpha=4.0, max_new_tokens=3, block_size=1, n_particles=8, ess_threshold=0.9)
    plain = await genesis_ps.power_sample(toy, "q", base, seed=4)
    more = await genesis_ps.power_sample(sharp_toy(), "q", base.with_(adaptive=True, max_rounds=3), seed=4)
    assert plain.extra["rounds"] == 1 and 1 <= more.extra["rounds"] <= 3
    if more.extra["rounds"] > 1:
        assert more.tokens_generated > plain.tokens_generated


async def test_consensus_is_a_weighted_majority_over_final_particles() -> None:
    toy = eos_toy()

    def first(text: str) -> str | None:
        return text[:1] or None

    r = await genesis_ps.power_sample(toy, "q", method="smc", selection="consensus", extract_answer=first,
                                      max_new_tokens=5, block_size=2, n_particles=16, seed=5)  # fmt: skip
    assert r.selection == "consensus" and first(r.text) == r.extra["consensus_answer"]
    assert 0.5 <= r.extra["consensus_share"] <= 1.0 + 1e-9

"""Sequential Monte Carlo for p(x)^α (Power-SMC, arXiv 2602.10273).

``N`` particles grow by blocks of ``B`` tokens, all live particles in one batched ``extend`` call per block
(finished, EOS-ended particles are not extended). Block ``k`` targets p^{α_k}·exp(λ·reward); a particle's
incremental log weight is

    α_k·Σlogp(new) − Σlogq(new) + (α_k − α_{k−1})·Σlogp(old prefix) + λ·(reward(new text) − reward(old))

so with α-annealing the weights telescope to α·Σlogp − Σlogq (+ λ·reward) at the end: α_k is exactly α
at the final block, and if every particle has finished earlier the remaining correction is applied at
once. Particles are resampled (systematic by default) when ESS < ``ess_threshold``·N at a block boundary.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from genesis_ps.errors import ConfigError
from genesis_ps.sampling._common import EMPTY, Meter, State, make_result, state_text
from genesis_ps.sampling.mh import stage_limits
from genesis_ps.sampling.params import Budget, SamplerParams
from genesis_ps.sampling.protocol import Prompt, TokenModel
from genesis_ps.sampling.result import GenerationResult
from genesis_ps.sampling.target import Reward, Target

__all__ = [
    "SMCRun",
    "alpha_schedule",
    "ess",
    "incremental_log_weight",
    "multinomial_resample",
    "normalise",
    "run_smc",
    "smc_particles",
    "systematic_resample",
]


def alpha_schedule(alpha: float, anneal_steps: int, n_blocks: int, start: float = 1.0) -> list[float]:
    """α_k for blocks k = 1..n_blocks: linear from ``start`` (the base model) to α over ``anneal_steps``
    blocks, α afterwards, and always exactly α at the final block."""
    if anneal_steps <= 0:
        return [float(alpha)] * n_blocks
    sched = [start + (alpha - start) * min(k, anneal_steps) / anneal_steps for k in range(1, n_blocks + 1)]
    if sched:
        sched[-1] = float(alpha)
    return sched


def incremental_log_weight(
    alpha_k: float,
    alpha_prev: float,
    old_logp_sum: float,
    new_logp: Sequence[float] = (),
    new_logq: Sequence[float] = (),
    reward_diff: float = 0.0,
) -> float:
    """One particle's log-weight increment for one block (``new_*`` empty for a finished particle)."""
    return (
        alpha_k * math.fsum(new_logp) - math.fsum(new_logq) + (alpha_k - alpha_prev) * old_logp_sum + reward_diff
    )


def normalise(logw: np.ndarray) -> np.ndarray:
    w: np.ndarray = np.exp(logw - np.max(logw))
    out: np.ndarray = w / w.sum()
    return out


def ess(logw: np.ndarray) -> float:
    """Effective sample size 1/Σw̄² of normalised weights (N when all weights are equal)."""
    w = normalise(np.asarray(logw, dtype=float))
    return float(1.0 / np.sum(w * w))


def systematic_resample(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices by systematic resampling: one uniform offset, N evenly spaced points."""
    n = len(weights)
    points = (rng.random() + np.arange(n)) / n
    cdf = np.cumsum(weights)
    cdf[-1] = 1.0
    return np.searchsorted(cdf, points, side="right").clip(0, n - 1)


def multinomial_resample(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices drawn i.i.d. by weight."""
    return rng.choice(len(weights), size=len(weights), p=weights)


RESAMPLERS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "systematic": systematic_resample,
    "multinomial": multinomial_resample,
}


@dataclass
class SMCRun:
    """Final particles and their log weights, with the run's bookkeeping."""

    particles: list[State]
    logw: np.ndarray
    meter: Meter
    alphas: list[float]
    ess_history: list[float] = field(default_factory=list)
    resamples: int = 0
    blocks_done: int = 0
    budget_exhausted: bool = False


async def smc_particles(
    model: TokenModel,
    prompt: Prompt,
    params: SamplerParams,
    *,
    target: Target,
    rng: np.random.Generator,
    budget: Budget | None = None,
    progress: Callable[[int, int], None] | None = None,
    resample: str = "systematic",
) -> SMCRun:
    """Run the particle system; the caller picks the particle to return."""
    if resample not in RESAMPLERS:
        raise ConfigError("resample", f"unknown scheme {resample!r}; choose one of {', '.join(RESAMPLERS)}")
    n = params.n_particles
    meter = Meter(model, prompt, rng, budget)
    limits = stage_limits(params.max_new_tokens, params.block_size)
    alphas = alpha_schedule(target.alpha, params.anneal_steps, len(limits))
    tilted = target.tilted

    def rterm(s: State) -> float:
        return target.reward_term(state_text(model, s)) if tilted else 0.0

    parts = [EMPTY] * n
    rewards = [rterm(EMPTY)] * n
    logw = np.zeros(n)
    run = SMCRun(particles=parts, logw=logw, meter=meter, alphas=alphas)
    a_prev = 0.0
    for k, limit in enumerate(limits, start=1):
        a_k = alphas[k - 1]
        live = [i for i, s in enumerate(parts) if not s.eos and len(s) < limit]
        segs = {}
        if live:
            max_new = [limit - len(parts[i]) for i in live]
            if not meter.affordable(max_new):
                run.budget_exhausted = True
                break
            got = await meter.extend([parts[i].tokens for i in live], max_new, params.tau)
            segs = dict(zip(live, got, strict=True))
        for i in range(n):
            old = parts[i]
            seg = segs.get(i)
            new = old.grow(seg) if seg is not None else old
            r = rterm(new) if seg is not None else rewards[i]
            logw[i] += incremental_log_weight(
                a_k, a_prev, old.logp_sum, seg.logp if seg else (), seg.logq if seg else (), r - rewards[i]
            )
            parts[i], rewards[i] = new, r
        a_prev = a_k
        done = all(s.eos or len(s) >= params.max_new_tokens for s in parts)
        if done and a_prev != target.alpha:  # all finished before the schedule reached α: final correction
            for i in range(n):
                logw[i] += incremental_log_weight(target.alpha, a_prev, parts[i].logp_sum)
            a_prev = target.alpha
        run.ess_history.append(ess(logw))
        run.blocks_done = k
        if progress is not None:
            progress(k, len(limits))
        if done:
            break
        if run.ess_history[-1] < params.ess_threshold * n:
            idx = RESAMPLERS[resample](normalise(logw), rng)
            parts = [parts[j] for j in idx]
            rewards = [rewards[j] for j in idx]
            logw[:] = 0.0
            run.resamples += 1
    run.particles, run.logw = parts, logw
    return run


async def run_smc(
    model: TokenModel,
    prompt: Prompt,
    params: SamplerParams,
    *,
    target: Target,
    rng: np.random.Generator,
    budget: Budget | None,
    evaluator: Reward | None,
    progress: Callable[[int, int], None] | None,
) -> GenerationResult:
    """Power-SMC; returns one particle drawn by normalised weight (``last``), or the best final particle
    under the target (``best_target``) or the evaluator (``best_evaluator``)."""
    if params.selection == "best_evaluator" and evaluator is None:
        raise ConfigError("evaluator", "selection='best_evaluator' needs an evaluator")
    run = await smc_particles(model, prompt, params, target=target, rng=rng, budget=budget, progress=progress)
    w = normalise(run.logw)
    score: float | None = None
    if params.selection == "last":
        j = int(rng.choice(len(w), p=w))
    elif params.selection == "best_target":
        j = int(np.argmax([target.log_density(s.logp_sum, state_text(model, s)) for s in run.particles]))
    else:
        assert evaluator is not None
        scores = [float(evaluator(state_text(model, s))) for s in run.particles]
        j = int(np.argmax(scores))
        score = scores[j]
    return make_result(
        model, "smc", run.particles[j], run.meter, target=target, selection=params.selection,
        evaluator_score=score, ess_history=run.ess_history, resamples=run.resamples,
        budget_exhausted=run.budget_exhausted,
        extra={"n_particles": params.n_particles, "block_size": params.block_size, "alphas": run.alphas,
               "blocks_done": run.blocks_done, "weight": float(w[j]), "proposal_temperature": params.tau},
    )

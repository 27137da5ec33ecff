"""Sequential Monte Carlo for p(x)^α (Power-SMC, arXiv 2602.10273).

``N`` particles grow by blocks of ``B`` tokens, all live particles in one batched ``extend`` call per block
(finished, EOS-ended particles are not extended). Block ``k`` targets p^{α_k}·exp(λ·reward); a particle's
incremental log weight is

    α_k·Σlogp(new) − Σlogq(new) + (α_k − α_{k−1})·Σlogp(old prefix) + λ·(reward(new text) − reward(old))

so with an α schedule the weights telescope to α·Σlogp − Σlogq (+ λ·reward) at the end: α_k is exactly α
at the final block, and if every particle has finished earlier the remaining correction is applied at
once. Two schedules: ``anneal_steps`` (linear in blocks) and ``ramp_tokens`` (linear in tokens generated,
Power-SMC's ramp: α_k = 1 + (α − 1)·min(L_k, R)/R at the block ending at token L_k). Particles are
resampled (``resampler``: systematic, stratified or chopthin, :mod:`~genesis_ps.sampling.resample`) when
ESS < ``ess_threshold``·N at a block boundary.

``adaptive`` runs rounds of N fresh particles, each with its estimate Ẑ of the normalising constant, and
stops once the rounds' *bottleneck* effective sample sizes (each round's smallest ESS over its blocks,
before resampling) add up to ``ess_threshold``·N, or after ``max_rounds``: a run whose weights never
degenerated stops after one round, one that collapsed to a few particles gets more. The final particles
are pooled with weights normalised within a round times that round's Ẑ (consistent); stopping on the
weights costs a small bias, measured by ``bench exactness`` (rows ``smc_adaptive``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from genesis_ps.errors import ConfigError
from genesis_ps.sampling._common import (
    EMPTY,
    Consensus,
    Meter,
    State,
    check_one_alpha,
    make_result,
    normalise,
    state_text,
)
from genesis_ps.sampling.mh import stage_limits
from genesis_ps.sampling.params import Budget, SamplerParams
from genesis_ps.sampling.protocol import Prompt, TokenModel
from genesis_ps.sampling.resample import RESAMPLERS, multinomial_resample, systematic_resample
from genesis_ps.sampling.result import GenerationResult
from genesis_ps.sampling.target import Reward, Target

__all__ = [
    "SMCRun",
    "alpha_schedule",
    "ess",
    "incremental_log_weight",
    "multinomial_resample",
    "normalise",
    "ramp_schedule",
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


def ramp_schedule(alpha: float, ramp_tokens: int, limits: Sequence[int]) -> list[float]:
    """α_k for blocks ending at token ``limits[k]``: 1 + (α − 1)·min(L_k, R)/R, exactly α at the last."""
    if ramp_tokens <= 0:
        return [float(alpha)] * len(limits)
    sched = [1.0 + (alpha - 1.0) * min(L, ramp_tokens) / ramp_tokens for L in limits]
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


def _lse(x: np.ndarray) -> float:
    m = float(np.max(x))
    return m + math.log(float(np.exp(x - m).sum())) if math.isfinite(m) else m


def ess(logw: np.ndarray) -> float:
    """Effective sample size 1/Σw̄² of normalised weights (N when all weights are equal)."""
    w = normalise(np.asarray(logw, dtype=float))
    return float(1.0 / np.sum(w * w))


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
    log_z: float = 0.0
    """log Ẑ: the particle estimate of the target's normalising constant (relative to the proposal)."""
    distinct_first_tokens: int = 0
    """Distinct first tokens among the particles after the first block, before any resampling."""

    @property
    def min_ess(self) -> float:
        """The bottleneck: the smallest ESS over the blocks (before any resampling)."""
        return min(self.ess_history, default=float(len(self.particles)))


async def smc_particles(
    model: TokenModel,
    prompt: Prompt,
    params: SamplerParams,
    *,
    target: Target,
    rng: np.random.Generator,
    budget: Budget | None = None,
    progress: Callable[[int, int], None] | None = None,
    meter: Meter | None = None,
) -> SMCRun:
    """Run the particle system once; the caller picks the particle to return."""
    check_one_alpha(params, target)
    scheme = RESAMPLERS[params.resampler]
    n = params.n_particles
    meter = meter or Meter(model, prompt, rng, budget)
    limits = stage_limits(params.max_new_tokens, params.block_size)
    if params.ramp_tokens:
        alphas = ramp_schedule(target.alpha, params.ramp_tokens, limits)
    else:
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
        before = _lse(logw)
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
        if k == 1:
            run.distinct_first_tokens = len({(s.tokens[:1], s.text[:1] if s.text else None) for s in parts})
        done = all(s.eos or len(s) >= params.max_new_tokens for s in parts)
        if done and a_prev != target.alpha:  # all finished before the schedule reached α: final correction
            for i in range(n):
                logw[i] += incremental_log_weight(target.alpha, a_prev, parts[i].logp_sum)
            a_prev = target.alpha
        run.log_z += _lse(logw) - before
        run.ess_history.append(ess(logw))
        run.blocks_done = k
        if progress is not None:
            progress(k, len(limits))
        if done:
            break
        if run.ess_history[-1] < params.ess_threshold * n:
            idx, new_logw = scheme(normalise(logw), rng)
            parts = [parts[j] for j in idx]
            rewards = [rewards[j] for j in idx]
            logw[:] = new_logw
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
    extract_answer: Callable[[str], str | None] | None = None,
) -> GenerationResult:
    """Power-SMC; returns one particle drawn by normalised weight (``last``), the best final particle
    under the target (``best_target``) or the evaluator (``best_evaluator``), or a particle carrying the
    answer of largest total weight (``consensus``, by ``extract_answer``)."""
    if params.selection == "best_evaluator" and evaluator is None:
        raise ConfigError("evaluator", "selection='best_evaluator' needs an evaluator")
    if params.selection == "consensus" and extract_answer is None:
        raise ConfigError("answer_extractor", "selection='consensus' needs an answer extractor")
    check_one_alpha(params, target)
    meter = Meter(model, prompt, rng, budget)
    rounds: list[SMCRun] = []
    particles: list[State] = []
    pooled = np.zeros(0)
    bottleneck = 0.0
    for _ in range(params.max_rounds if params.adaptive else 1):
        r = await smc_particles(model, prompt, params, target=target, rng=rng, progress=progress, meter=meter)
        rounds.append(r)
        particles += r.particles
        pooled = np.concatenate([pooled, r.logw - _lse(r.logw) + r.log_z])
        bottleneck += r.min_ess
        if r.budget_exhausted or bottleneck >= params.ess_threshold * params.n_particles:
            break
    w = normalise(pooled)
    score: float | None = None
    extra: dict[str, object] = {}
    if params.selection == "last":
        j = int(rng.choice(len(w), p=w))
    elif params.selection == "best_target":
        j = int(np.argmax([target.log_density(s.logp_sum, state_text(model, s)) for s in particles]))
    elif params.selection == "best_evaluator":
        assert evaluator is not None
        scores = [float(evaluator(state_text(model, s))) for s in particles]
        j = int(np.argmax(scores))
        score = scores[j]
    else:
        assert extract_answer is not None
        votes = Consensus(extract_answer)
        for i in np.argsort(w, kind="stable"):
            votes.offer(state_text(model, particles[int(i)]), particles[int(i)], float(w[int(i)]))
        answer, chosen = votes.pick()
        j = next((i for i, s in enumerate(particles) if s is chosen), int(np.argmax(w)))
        extra["consensus_answer"] = answer
        extra["consensus_share"] = votes.totals.get(answer, 0.0) if answer is not None else 0.0
    first = rounds[0]
    extra.update({
        "n_particles": params.n_particles, "block_size": params.block_size, "alphas": first.alphas,
        "blocks_done": first.blocks_done, "weight": float(w[j]), "proposal_temperature": params.tau,
        "resampler": params.resampler, "rounds": len(rounds), "pooled_ess": ess(pooled),
        "bottleneck_ess": [r.min_ess for r in rounds],
        "distinct_first_tokens": first.distinct_first_tokens,
    })
    if params.ramp_tokens > params.max_new_tokens:
        extra["ramp_note"] = (
            f"ramp_tokens={params.ramp_tokens} is longer than max_new_tokens={params.max_new_tokens}: α reached "
            f"{first.alphas[-2] if len(first.alphas) > 1 else 1.0:g} by the ramp and the final block's correction "
            f"made up the rest to α = {target.alpha:g}"
        )
    if first.distinct_first_tokens == 1 and params.n_particles > 1:
        extra["mixing_warning"] = (
            f"all {params.n_particles} particles drew the same first token (proposals at τ = {params.tau:.3g}); "
            "other first tokens were never weighed — raise proposal_temperature or n_particles"
        )
    return make_result(
        model, "smc", particles[j], meter, target=target, selection=params.selection,
        evaluator_score=score, ess_history=[e for r in rounds for e in r.ess_history],
        resamples=sum(r.resamples for r in rounds), budget_exhausted=any(r.budget_exhausted for r in rounds),
        extra=extra,
    )

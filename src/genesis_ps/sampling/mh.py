"""Block-wise Metropolis–Hastings for p(x)^α (Karan & Du, "Reasoning with Sampling", arXiv 2510.14901).

The sequence grows by blocks of ``B`` tokens up to ``T`` (stage ``k`` has the length limit
``L_k = min(k·B, T)``). After each block, ``n_mcmc`` MH steps: cut at ``t`` uniform over the state's
length, regenerate the suffix at the proposal temperature τ up to the *stage* limit or EOS, and accept with

    α·Σlogp(y[t:]) + Σlogq(x[t:]) − α·Σlogp(x[t:]) − Σlogq(y[t:]) + log len(x) − log len(y)

(sums over the whole differing suffixes, also when one side ended on EOS early; the last term is the
probability of the reverse cut). Regenerating to the stage limit — never to the state's own length — and
the length term are what keep the chain exact once EOS ends sequences at different lengths; the
ablations ``stage_limit=False`` (regenerate to the state's own length) and ``length_term=False`` drop them,
to show what goes wrong (see ``genesis-ps bench exactness``).

:func:`mh_chains` runs any number of independent chains in lockstep, each step one batched ``extend``
call; :func:`run_mh` is one chain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from genesis_ps.errors import CapabilityError, ConfigError
from genesis_ps.sampling._common import EMPTY, Best, Meter, State, make_result, state_text
from genesis_ps.sampling.params import Budget, SamplerParams
from genesis_ps.sampling.protocol import Prompt, TokenModel
from genesis_ps.sampling.result import GenerationResult
from genesis_ps.sampling.target import Reward, Target

__all__ = ["MHRun", "mh_chains", "mh_log_ratio", "run_mh", "stage_limits"]


def mh_log_ratio(
    alpha: float,
    cur_logp: Sequence[float],
    cur_logq: Sequence[float],
    prop_logp: Sequence[float],
    prop_logq: Sequence[float],
    *,
    cur_len: int,
    prop_len: int,
    cur_reward: float = 0.0,
    prop_reward: float = 0.0,
    length_correction: bool = True,
) -> float:
    """Log acceptance ratio of a suffix move x → y cut at the same index.

    ``cur_*`` / ``prop_*`` are the per-token log p and log q of the *whole* differing suffixes (their
    lengths may differ). ``cur_len`` / ``prop_len`` are the full lengths of x and y (the reverse cut is
    chosen with probability 1/len(y)). ``*_reward`` are λ·reward terms of the tilted target.
    """
    lr = alpha * (math.fsum(prop_logp) - math.fsum(cur_logp)) + math.fsum(cur_logq) - math.fsum(prop_logq)
    if length_correction:
        lr += math.log(cur_len) - math.log(prop_len)
    return lr + prop_reward - cur_reward


def stage_limits(max_new_tokens: int, block_size: int) -> list[int]:
    """``L_k = min(k·B, T)`` for k = 1..ceil(T/B)."""
    k = -(-max_new_tokens // block_size)
    return [min((i + 1) * block_size, max_new_tokens) for i in range(k)]


@dataclass
class MHRun:
    """What :func:`mh_chains` did: per chain the selected and the final state, and the counts."""

    selected: list[State]
    final: list[State]
    scores: list[float | None]
    meter: Meter
    proposals: int = 0
    accepted: int = 0
    budget_exhausted: bool = False
    stages_done: int = 0


async def mh_chains(
    model: TokenModel,
    prompt: Prompt,
    params: SamplerParams,
    *,
    n_chains: int = 1,
    target: Target,
    rng: np.random.Generator,
    budget: Budget | None = None,
    evaluator: Reward | None = None,
    progress: Callable[[int, int], None] | None = None,
    stage_limit: bool = True,
    length_term: bool = True,
) -> MHRun:
    """Run ``n_chains`` independent block-wise MH chains in lockstep (one batched extend per step).

    ``stage_limit`` / ``length_term`` exist only for the ablation benchmark; both must stay on for an
    exact sampler."""
    if not model.capabilities.prefix_continuation:
        raise CapabilityError(f"{model.provider}/{model.model} cannot continue a prefix; use imh")
    if isinstance(n_chains, bool) or not isinstance(n_chains, int) or n_chains < 1:
        raise ConfigError("n_chains", f"must be an integer >= 1, got {n_chains!r}")
    if params.selection == "best_evaluator" and evaluator is None:
        raise ConfigError("evaluator", "selection='best_evaluator' needs an evaluator")
    meter = Meter(model, prompt, rng, budget)
    alpha, tau = target.alpha, params.tau
    limits = stage_limits(params.max_new_tokens, params.block_size)
    states = [EMPTY] * n_chains
    tilted = target.tilted

    def rterm(s: State) -> float:
        return target.reward_term(state_text(model, s)) if tilted else 0.0

    rewards = [rterm(EMPTY)] * n_chains
    bests: list[Best] | None = None
    if params.selection == "best_target":
        bests = [Best(lambda s: target.log_density(s.logp_sum, state_text(model, s))) for _ in range(n_chains)]
    elif params.selection == "best_evaluator":
        assert evaluator is not None
        ev = evaluator
        bests = [Best(lambda s: ev(state_text(model, s))) for _ in range(n_chains)]
    run = MHRun(selected=states, final=states, scores=[None] * n_chains, meter=meter)

    for k, limit in enumerate(limits, start=1):
        final_stage = k == len(limits)
        grow = [i for i, s in enumerate(states) if not s.eos and len(s) < limit]
        if grow:
            max_new = [limit - len(states[i]) for i in grow]
            if not meter.affordable(max_new):
                run.budget_exhausted = True
                break
            segs = await meter.extend([states[i].tokens for i in grow], max_new, tau)
            for i, seg in zip(grow, segs, strict=True):
                states[i] = states[i].grow(seg)
                rewards[i] = rterm(states[i])
        if final_stage and bests is not None:
            for b, s in zip(bests, states, strict=True):
                b.offer(s)
        for _ in range(params.n_mcmc):
            lens = np.array([len(s) for s in states], dtype=np.int64)
            cuts = rng.integers(0, lens)
            step_new: list[int] = ((limit - cuts) if stage_limit else (lens - cuts)).tolist()
            if not meter.affordable(step_new):
                run.budget_exhausted = True
                break
            cuts_l = cuts.tolist()
            segs = await meter.extend([s.tokens[:t] for s, t in zip(states, cuts_l, strict=True)], step_new, tau)
            us = rng.random(n_chains)
            for i, (x, t, seg) in enumerate(zip(states, cuts_l, segs, strict=True)):
                y = x.splice(t, seg)
                ry = rterm(y) if tilted else 0.0
                lr = mh_log_ratio(
                    alpha, x.logp[t:], x.logq[t:], seg.logp, seg.logq,
                    cur_len=len(x.logp), prop_len=len(y.logp), cur_reward=rewards[i], prop_reward=ry,
                    length_correction=length_term,
                )
                run.proposals += 1
                if lr >= 0 or us[i] < math.exp(lr):
                    states[i], rewards[i] = y, ry
                    run.accepted += 1
                if final_stage and bests is not None:
                    bests[i].offer(states[i])
        if run.budget_exhausted:
            break
        run.stages_done = k
        if progress is not None:
            progress(k, len(limits))

    run.final = states
    if bests is not None and run.stages_done == len(limits):
        run.selected = [b.state if b.state is not None else s for b, s in zip(bests, states, strict=True)]
        run.scores = [b.value for b in bests]
    else:
        run.selected = list(states)
    return run


async def run_mh(
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
    """One block-wise MH chain; returns the state chosen by ``params.selection``."""
    run = await mh_chains(
        model, prompt, params, n_chains=1, target=target, rng=rng, budget=budget, evaluator=evaluator,
        progress=progress,
    )
    score = run.scores[0] if params.selection == "best_evaluator" else None
    return make_result(
        model, "mh", run.selected[0], run.meter, target=target, selection=params.selection,
        evaluator_score=score,
        acceptance_rate=(run.accepted / run.proposals) if run.proposals else None,
        proposals=run.proposals, accepted=run.accepted, budget_exhausted=run.budget_exhausted,
        extra={"block_size": params.block_size, "stages": len(stage_limits(params.max_new_tokens, params.block_size)),
               "stages_done": run.stages_done, "proposal_temperature": params.tau},
    )

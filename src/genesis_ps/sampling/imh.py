"""Whole-sequence independence Metropolis–Hastings for models that cannot continue a prefix (chat APIs).

Proposals are whole sequences sampled at the proposal temperature τ from the prompt alone, so they do
not depend on the chain state: all ``M = n_mcmc + 1`` of them are requested at once (chunks of the
model's ``max_batch``, gathered concurrently). The first is the initial state; each later proposal y
replaces the state x with probability ``min(1, exp(α·logp(y) − logq(y) − α·logp(x) + logq(x)
+ λ·(reward(y) − reward(x))))``. With a top-k provider, log q is approximate and the result says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from genesis_ps.errors import ConfigError
from genesis_ps.sampling._common import EMPTY, Best, Consensus, Meter, State, check_one_alpha, make_result, state_text
from genesis_ps.sampling.params import Budget, SamplerParams
from genesis_ps.sampling.protocol import Prompt, TokenModel
from genesis_ps.sampling.result import GenerationResult
from genesis_ps.sampling.target import Reward, Target

__all__ = ["imh_log_ratio", "run_imh"]


def imh_log_ratio(
    alpha: float, cur: State, prop: State, *, cur_reward: float = 0.0, prop_reward: float = 0.0
) -> float:
    """log of [π(y)·q(x)] / [π(x)·q(y)] for whole sequences (π = p^α·exp(λ·reward))."""
    return (
        alpha * (prop.logp_sum - cur.logp_sum) - prop.logq_sum + cur.logq_sum + prop_reward - cur_reward
    )


async def run_imh(
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
    """Independence MH over ``n_mcmc + 1`` concurrently requested whole-sequence proposals.

    Under a :class:`Budget`, only as many proposals as it affords are requested (``budget_exhausted`` is
    then set). ``best_target`` / ``best_evaluator`` pick among the chain's states, never proposals it
    rejected."""
    if params.selection == "best_evaluator" and evaluator is None:
        raise ConfigError("evaluator", "selection='best_evaluator' needs an evaluator")
    if params.selection == "consensus" and extract_answer is None:
        raise ConfigError("answer_extractor", "selection='consensus' needs an answer extractor")
    check_one_alpha(params, target)
    meter = Meter(model, prompt, rng, budget)
    t_max = params.max_new_tokens
    wanted = params.n_mcmc + 1
    m = wanted
    while m > 0 and not meter.affordable([t_max] * m):
        m -= 1
    exhausted = m < wanted
    if m == 0:
        return make_result(
            model, "imh", EMPTY, meter, target=target, selection=params.selection, budget_exhausted=True,
            extra={"proposals_requested": 0},
        )
    segs = await meter.extend([()] * m, [t_max] * m, params.tau)
    if progress is not None:
        progress(m, wanted)
    tilted = target.tilted

    def rterm(s: State) -> float:
        return target.reward_term(state_text(model, s)) if tilted else 0.0

    best: Best | None = None
    if params.selection == "best_target":
        best = Best(lambda s: target.log_density(s.logp_sum, state_text(model, s)))
    elif params.selection == "best_evaluator":
        assert evaluator is not None
        ev = evaluator
        best = Best(lambda s: ev(state_text(model, s)))
    votes = Consensus(extract_answer) if params.selection == "consensus" and extract_answer is not None else None
    x = EMPTY.grow(segs[0])
    rx = rterm(x)
    if best is not None:
        best.offer(x)
    if votes is not None:
        votes.offer(state_text(model, x), x)
    accepted = 0
    us = rng.random(m - 1)
    for u, seg in zip(us, segs[1:], strict=True):
        y = EMPTY.grow(seg)
        ry = rterm(y)
        lr = imh_log_ratio(target.alpha, x, y, cur_reward=rx, prop_reward=ry)
        if lr >= 0 or u < math.exp(lr):
            x, rx = y, ry
            accepted += 1
        if best is not None:
            best.offer(x)
        if votes is not None:
            votes.offer(state_text(model, x), x)
    chosen = best.state if best is not None and best.state is not None else x
    extra: dict[str, object] = {"proposals_requested": m, "proposal_temperature": params.tau}
    if votes is not None:
        answer, st = votes.pick()
        chosen = st if st is not None else x
        extra["consensus_answer"] = answer
    proposals = m - 1
    return make_result(
        model, "imh", chosen, meter, target=target, selection=params.selection,
        evaluator_score=(best.value if params.selection == "best_evaluator" and best is not None else None),
        acceptance_rate=(accepted / proposals) if proposals else None, proposals=proposals, accepted=accepted,
        budget_exhausted=exhausted, extra=extra,
    )

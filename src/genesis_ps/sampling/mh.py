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

With ``block_tries = K > 1`` a new block is drawn K times in one batched call and one draw kept with
probability ∝ its importance weight exp(α·Σlog p − Σlog q) (times the tilt's reward factor): given the prefix, a
block of p^α is distributed ∝ p(block | prefix)^α, which sampling-importance-resampling approaches, so
the block's chain starts nearer its target. Only the start changes, never a step, so the chain's target
stays p^α.

Where a step cuts and what it proposes there — the plain move above, ``differ`` (a suffix that always
differs from the current one, generated from its first difference) or ``decision`` moves — is planned by
:mod:`genesis_ps.sampling.moves`; each move's own ratio term is in :mod:`genesis_ps.sampling.cuts`.

:func:`mh_chains` runs any number of independent chains in lockstep, each step one batched ``extend``
call; :func:`run_mh` is one chain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from genesis_ps.errors import CapabilityError, ConfigError, MalformedResponseError
from genesis_ps.sampling._common import (
    EMPTY,
    Best,
    Consensus,
    Meter,
    State,
    check_one_alpha,
    make_result,
    mixing_note,
    normalise,
    state_text,
)
from genesis_ps.sampling.cuts import differ_bound, mtm_log_ratio, suffix_log_weight
from genesis_ps.sampling.early import Pending, early_reject_applies, propose_with_early_rejection
from genesis_ps.sampling.moves import CutRule, cut_log_probs_of, move_log_ratio, plan_moves
from genesis_ps.sampling.params import Budget, SamplerParams
from genesis_ps.sampling.protocol import Prompt, TokenModel
from genesis_ps.sampling.result import GenerationResult
from genesis_ps.sampling.target import Reward, Target

__all__ = ["MHRun", "check_mh_model", "mh_chains", "mh_log_ratio", "run_mh", "stage_limits"]


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
    steps: int = 0
    """MH steps taken, over all chains (fewer than ``n_mcmc`` per stage and chain when adaptive)."""
    first_token_moves: list[int] = field(default_factory=list)
    """Per chain: accepted moves that changed the first token."""
    first_token_proposals: list[int] = field(default_factory=list)
    """Per chain: proposals that cut at position 0 (could change the first token)."""
    consensus: list[str | None] = field(default_factory=list)
    """Per chain, with ``selection="consensus"``: the majority answer."""
    early_rejected: int = 0
    """Proposals rejected before their suffix was complete (see :mod:`genesis_ps.sampling.early`)."""


def check_mh_model(model: TokenModel, params: SamplerParams) -> None:
    """What MH's options need of the model — a token excluded from a draw (``change_at_cut``, ``moves``
    other than plain), next-token entropies (``cuts="entropy"``, ``moves="decision"``) — refused before any
    model work, naming the option (also called by the public API's edge)."""
    caps, name = model.capabilities, f"{model.provider}/{model.model}"
    if params.cuts == "entropy" and caps.entropy == "none":
        raise ConfigError("cuts", f"{name} returns no top-k log-probabilities, so there is no next-token entropy to "
                                  "cut by; use cuts='uniform'")  # fmt: skip
    if not caps.exclude_first:
        for field, on, off in (("change_at_cut", bool(params.change_at_cut), "change_at_cut=0 (off)"),
                               ("moves", params.moves != "plain", "moves='plain'")):  # fmt: skip
            if on:
                raise ConfigError(field, f"{name} cannot exclude a token from a draw (the local backend and the toys "
                                         f"can); use {off}")  # fmt: skip
    if params.moves == "decision" and caps.entropy == "none":
        raise ConfigError("moves", f"{name} returns no next-token entropies, which decision moves cut by; use "
                                   "moves='differ'")  # fmt: skip


def _check(model: TokenModel, params: SamplerParams, target: Target, n_chains: object) -> None:
    if not model.capabilities.prefix_continuation:
        raise CapabilityError(f"{model.provider}/{model.model} cannot continue a prefix; use imh")
    if isinstance(n_chains, bool) or not isinstance(n_chains, int) or n_chains < 1:
        raise ConfigError("n_chains", f"must be an integer >= 1, got {n_chains!r}")
    check_one_alpha(params, target)
    check_mh_model(model, params)


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
    extract_answer: Callable[[str], str | None] | None = None,
) -> MHRun:
    """Run ``n_chains`` independent block-wise MH chains in lockstep (one batched extend per step).

    ``stage_limit`` / ``length_term`` exist only for the ablation benchmark; both must stay on for an
    exact sampler (``length_term=False`` drops the cut-probability term, for uniform cuts the log-length
    correction)."""
    _check(model, params, target, n_chains)
    if params.selection == "best_evaluator" and evaluator is None:
        raise ConfigError("evaluator", "selection='best_evaluator' needs an evaluator")
    if params.selection == "consensus" and extract_answer is None:
        raise ConfigError("answer_extractor", "selection='consensus' needs an answer extractor")
    meter = Meter(model, prompt, rng, budget)
    alpha, tau, k_tries = target.alpha, params.tau, params.n_tries
    rho = float(params.change_at_cut)
    early = params.early_reject and stage_limit and length_term and early_reject_applies(
        logprobs=model.capabilities.logprobs, tau=tau, alpha=alpha, tilted=target.tilted, n_tries=k_tries
    )
    limits = stage_limits(params.max_new_tokens, params.block_size)
    states = [EMPTY] * n_chains
    tilted = target.tilted

    def rterm(s: State) -> float:
        return target.reward_term(state_text(model, s)) if tilted else 0.0

    def cut_logp(s: State, rule: CutRule) -> np.ndarray:
        if rule != "uniform" and not s.has_entropy:
            raise MalformedResponseError(f"{model.provider}/{model.model} returned a segment without entropies")
        return cut_log_probs_of(s, rule)

    rewards = [rterm(EMPTY)] * n_chains
    bests: list[Best] | None = None
    if params.selection == "best_target":
        bests = [Best(lambda s: target.log_density(s.logp_sum, state_text(model, s))) for _ in range(n_chains)]
    elif params.selection == "best_evaluator":
        assert evaluator is not None
        ev = evaluator
        bests = [Best(lambda s: ev(state_text(model, s))) for _ in range(n_chains)]
    votes = [Consensus(extract_answer) for _ in range(n_chains)] if extract_answer is not None else None
    if params.selection != "consensus":
        votes = None
    run = MHRun(selected=states, final=states, scores=[None] * n_chains, meter=meter,
                first_token_moves=[0] * n_chains, first_token_proposals=[0] * n_chains)  # fmt: skip

    for k, limit in enumerate(limits, start=1):
        final_stage = k == len(limits)
        grow = [i for i, s in enumerate(states) if not s.eos and len(s) < limit]
        if grow:
            max_new = [limit - len(states[i]) for i in grow]
            nb = params.block_tries
            if not meter.affordable([m for m in max_new for _ in range(nb)]):
                run.budget_exhausted = True
                break
            segs = await meter.extend([states[i].tokens for i in grow for _ in range(nb)],
                                      [m for m in max_new for _ in range(nb)], tau)  # fmt: skip
            for a, i in enumerate(grow):
                mine = segs[a * nb : (a + 1) * nb]
                grown = [states[i].grow(seg) for seg in mine]
                got = [rterm(g) for g in grown] if tilted else [0.0] * nb
                j = 0
                if nb > 1:  # sampling-importance-resampling: one continuation ∝ π/q given the shared prefix
                    w = [suffix_log_weight(alpha, seg.logp, seg.logq, r) for seg, r in zip(mine, got, strict=True)]
                    j = int(rng.choice(nb, p=normalise(w)))
                states[i], rewards[i] = grown[j], got[j]
        if final_stage:
            for i, s in enumerate(states):
                if bests is not None:
                    bests[i].offer(s)
                if votes is not None:
                    votes[i].offer(state_text(model, s), s)
        active = list(range(n_chains))
        unchanged = [0] * n_chains
        for _ in range(params.n_mcmc):
            if not active:
                break
            plan = plan_moves(states, active, params, rng, cut_logp)
            moving = [i for i in active if not plan[i].null]
            rows = [i for i in moving for _ in range(k_tries)]
            step_new = [(limit if stage_limit else len(states[i])) - plan[i].start for i in rows]
            if not meter.affordable(step_new):
                run.budget_exhausted = True
                break
            tries_of: dict[int, list[State] | None] = {}
            if early:
                us = rng.random(len(active))
                pend = []
                for a, i in enumerate(active):
                    m = plan[i]
                    if m.null:
                        continue
                    x = states[i]
                    need = _need(us[a], alpha, x, m.start, rewards[i], m.cut_logp)
                    if m.kind == "differ":  # x's side of the differ term, −log(1 − q(x[t:]))
                        need += differ_bound(math.fsum(x.logq[m.t :]))
                    x_tok = x.tokens[m.start] if (m.exclude is not None or rho > 0) else None
                    pend.append(Pending(
                        x.cut(m.start), m.t, limit, need, 1.0 if m.kind == "change" else rho, x_tok,
                        x.logq[m.start] if x_tok is not None else 0.0, m.exclude is not None,
                        differ=m.kind == "differ", rule=m.rule,
                    ))
                props = await propose_with_early_rejection(meter, pend, tau, alpha)
                for i, y_full in zip(moving, props, strict=True):
                    tries_of[i] = None if y_full is None else [y_full]
            else:
                ex_rows = [plan[i].exclude for i in rows]
                segs = await meter.extend([states[i].tokens[: plan[i].start] for i in rows], step_new, tau,
                                          exclude_first=ex_rows if any(e is not None for e in ex_rows) else None,
                                          ) if rows else []  # fmt: skip
                us = rng.random(len(active))
                for a, i in enumerate(moving):
                    mine = segs[a * k_tries : (a + 1) * k_tries]
                    tries_of[i] = [states[i].splice(plan[i].start, seg) for seg in mine]
            for a, i in enumerate(active):
                m = plan[i]
                x, t = states[i], m.t
                found = tries_of.get(i)
                if found is None:  # rejected before its suffix was complete, or no other state to propose
                    run.proposals += 1
                    run.steps += 1
                    run.early_rejected += i in tries_of
                    if m.start == 0:
                        run.first_token_proposals[i] += 1
                    unchanged[i] += 1
                    continue
                tries = found
                r_try = [rterm(y) for y in tries] if tilted else [0.0] * k_tries
                w_try = [suffix_log_weight(alpha, y.logp[t:], y.logq[t:], r) for y, r in zip(tries, r_try, strict=True)]
                j = 0 if k_tries == 1 else int(rng.choice(k_tries, p=normalise(w_try)))
                y = tries[j]
                cur_cut = m.cut_logp
                prop_cut = float(cut_logp(y, m.rule)[t]) if length_term else cur_cut
                lr = mtm_log_ratio(
                    suffix_log_weight(alpha, x.logp[t:], x.logq[t:], rewards[i]), w_try, j,
                    cur_cut_logp=cur_cut, prop_cut_logp=prop_cut,
                )
                lr += move_log_ratio(m, x, y, rho)
                run.proposals += 1
                run.steps += 1
                moved = False
                if m.start == 0:
                    run.first_token_proposals[i] += 1
                if lr >= 0 or us[a] < math.exp(lr):
                    moved = y.tokens != x.tokens or y.text != x.text
                    if moved and t == 0 and y.tokens[:1] != x.tokens[:1]:
                        run.first_token_moves[i] += 1
                    states[i], rewards[i] = y, r_try[j]
                    run.accepted += 1
                unchanged[i] = 0 if moved else unchanged[i] + 1
                if final_stage:
                    if bests is not None:
                        bests[i].offer(states[i])
                    if votes is not None:
                        votes[i].offer(state_text(model, states[i]), states[i])
            if params.adaptive and not final_stage:
                active = [i for i in active if unchanged[i] < params.patience]
        if run.budget_exhausted:
            break
        run.stages_done = k
        if progress is not None:
            progress(k, len(limits))

    run.final = states
    complete = run.stages_done == len(limits)
    if bests is not None and complete:
        run.selected = [b.state if b.state is not None else s for b, s in zip(bests, states, strict=True)]
        run.scores = [b.value for b in bests]
    elif votes is not None and complete:
        picks = [v.pick() for v in votes]
        run.selected = [st if st is not None else s for (_, st), s in zip(picks, states, strict=True)]
        run.consensus = [ans for ans, _ in picks]
    else:
        run.selected = list(states)
    return run


def _need(u: float, alpha: float, x: State, t: int, reward: float, cur_cut: float) -> float:
    """The threshold ``log u + w(x[t:]) + log q_cut(t | x)`` a proposal's ratio must reach."""
    log_u = math.log(u) if u > 0 else -math.inf
    return log_u + suffix_log_weight(alpha, x.logp[t:], x.logq[t:], reward) + cur_cut


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
    extract_answer: Callable[[str], str | None] | None = None,
) -> GenerationResult:
    """One block-wise MH chain; returns the state chosen by ``params.selection``."""
    run = await mh_chains(
        model, prompt, params, n_chains=1, target=target, rng=rng, budget=budget, evaluator=evaluator,
        progress=progress, extract_answer=extract_answer,
    )
    score = run.scores[0] if params.selection == "best_evaluator" else None
    extra: dict[str, object] = {
        "block_size": params.block_size, "stages": len(stage_limits(params.max_new_tokens, params.block_size)),
        "stages_done": run.stages_done, "proposal_temperature": params.tau, "cuts": params.cuts,
        "change_at_cut": params.change_at_cut, "moves": params.moves,
        "n_tries": params.n_tries, "block_tries": params.block_tries, "adaptive": params.adaptive,
        "mh_steps": run.steps,
        "early_rejected": run.early_rejected,
        "first_token_changes": run.first_token_moves[0], "first_token_proposals": run.first_token_proposals[0],
        "approx_entropy": run.meter.approx_entropy,
    }
    if run.consensus:
        extra["consensus_answer"] = run.consensus[0]
    note = mixing_note(run.first_token_moves[0], run.final[0], params.tau, params.alpha, run.first_token_proposals[0])
    if note:
        extra["mixing_warning"] = note
    return make_result(
        model, "mh", run.selected[0], run.meter, target=target, selection=params.selection,
        evaluator_score=score,
        acceptance_rate=(run.accepted / run.proposals) if run.proposals else None,
        proposals=run.proposals, accepted=run.accepted, budget_exhausted=run.budget_exhausted,
        extra=extra,
    )

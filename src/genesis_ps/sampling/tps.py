"""Token-level power sampling (``method="tps"``; Scalable Power Sampling, Ji et al., arXiv 2601.21590).

Under p^α the next token's conditional is the low-temperature distribution scaled by the future's power
mass,

    π(x_t | x_<t) ∝ p(x_t | x_<t)^α · ζ(x_≤t),    ζ(x_≤t) = Σ_future p(future | x_≤t)^α,

and ζ is estimated by Monte Carlo: ``rollouts`` continuations of ``horizon`` tokens drawn at the proposal
temperature τ, each weighted by its importance ratio exp(α·Σlog p − Σlog q) (an unbiased estimate of the
horizon-limited ζ; a rollout that ends on EOS sees its whole future, an EOS candidate has ζ = 1). Only the
``candidates`` likeliest tokens are considered, and only at *decision points* — positions whose base
next-token entropy is at least ``decision_entropy``; elsewhere tokens are drawn at τ in one ``extend_until``
call that runs to the next decision point. All rollouts of a decision point go in one batched call.

After a decision, the chosen candidate's rollouts already hold draws of what follows it, so by default
(``reuse_rollouts``) the tokens up to the next decision point are taken from one of them, picked with
probability proportional to its importance weight (:func:`reuse_rollout`) — sampling-importance-resampling,
whose pick tends to the horizon's law under p^α as the rollouts grow, where a fresh draw at τ follows q. It
saves the model call and up to ``horizon`` decoding steps per decision point; ``bench speed`` measures both
ways side by side (rows ``tps`` and ``tps_fresh``), with their log-likelihoods over many prompts. When every
position is a decision point (``decision_entropy=0``, as ``bench exactness`` runs it) nothing is reused and
no random number is drawn for it.

The normalised estimate π̂ is a ratio of Monte Carlo sums, biased by O(1/R); a leave-one-rollout-out
jackknife, π̂_JK = R·π̂ − (R−1)·mean_j π̂_{−j} (negative entries clipped, then renormalised), removes the
leading term when R ≥ 2. It remains an approximation — the paper proves that no rollout-free per-token
rule reproduces p^α, and truncated horizons, finite rollouts and the candidate cut all leave error — so
the result says so (``extra["approximate"]``) and ``bench exactness`` reports its TV on the toys.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from genesis_ps.errors import CapabilityError, ConfigError
from genesis_ps.sampling._common import EMPTY, Meter, State, check_one_alpha, make_result, normalise
from genesis_ps.sampling.params import Budget, SamplerParams
from genesis_ps.sampling.protocol import Prompt, Segment, TokenModel
from genesis_ps.sampling.result import GenerationResult
from genesis_ps.sampling.target import Reward, Target

__all__ = ["check_tps", "reuse_rollout", "run_tps", "tps_distribution"]


def check_tps(model: TokenModel, params: SamplerParams, target: Target) -> None:
    """Refuse, before any model work, what token-level power sampling cannot do."""
    caps = model.capabilities
    if not caps.lookahead or not caps.prefix_continuation:
        raise ConfigError(
            "method", f"tps needs a model that can stop at decision points (extend_until); "
            f"{model.provider}/{model.model} cannot — use mh, smc or imh",
        )
    if target.tilted:
        raise ConfigError("reward", "tps targets p^alpha only; use mh or smc for a reward-tilted target")
    if params.selection != "last":
        raise ConfigError("selection", "tps draws one sample; only selection='last' applies")
    check_one_alpha(params, target)


def tps_distribution(
    alpha: float, cand_logp: Sequence[float], rollout_logw: Sequence[Sequence[float]]
) -> tuple[np.ndarray, np.ndarray]:
    """(π̂, π̂_JK) over candidates: ``cand_logp`` are their base log p; ``rollout_logw[c]`` their rollouts'
    log importance weights (empty for a candidate with nothing after it: ζ = 1)."""
    lp = np.asarray(cand_logp, dtype=float)
    r = max((len(w) for w in rollout_logw), default=0)

    def pi(drop: int | None) -> np.ndarray:
        scores = []
        for c, ws in enumerate(rollout_logw):
            kept = [w for j, w in enumerate(ws) if j != drop]
            zeta = _log_mean(kept) if kept else 0.0
            scores.append(alpha * lp[c] + zeta)
        s = np.asarray(scores)
        e = np.exp(s - s.max())
        out: np.ndarray = e / e.sum()
        return out

    full = pi(None)
    if r < 2:
        return full, full
    loo = np.mean([pi(j) for j in range(r)], axis=0)
    jk = np.clip(r * full - (r - 1) * loo, 0.0, None)
    if jk.sum() <= 0:
        return full, full
    return full, jk / jk.sum()


def reuse_rollout(
    futures: Sequence[Segment], logw: Sequence[float], decision_entropy: float, rng: np.random.Generator
) -> Segment:
    """The tokens that follow a chosen candidate, taken from its rollouts: one rollout picked with
    probability proportional to its importance weight (sampling-importance-resampling: as the rollouts grow
    in number, the pick tends to the horizon's law under p^α, where a fresh draw follows q), cut before its
    first decision point — a token whose base entropy is at least ``decision_entropy``, which the next
    decision gets rollouts for. Rollouts without per-token entropies give nothing; so does a first position
    that is itself a decision point (the same for every rollout of the candidate), without a draw from
    ``rng``."""
    nothing = Segment(tokens=(), logp=(), logq=(), eos=False)
    if any(len(f.entropy) != f.n_tokens for f in futures) or futures[0].entropy[0] >= decision_entropy:
        return nothing
    s = futures[int(rng.choice(len(futures), p=normalise(logw)))]
    k = next((i for i, e in enumerate(s.entropy) if e >= decision_entropy), s.n_tokens)
    return Segment(tokens=s.tokens[:k], logp=s.logp[:k], logq=s.logq[:k], eos=s.eos and k == s.n_tokens,
                   entropy=s.entropy[:k])  # fmt: skip


def _log_mean(ws: Sequence[float]) -> float:
    top = max(ws)
    return top + math.log(math.fsum(math.exp(w - top) for w in ws) / len(ws))


async def run_tps(
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
    """One token-level power sample (see the module docstring)."""
    check_tps(model, params, target)
    meter = Meter(model, prompt, rng, budget)
    alpha, tau, t_max = target.alpha, params.tau, params.max_new_tokens
    eos_id = model.capabilities.eos_token_id
    state: State = EMPTY
    decisions = rollout_calls = reused = 0
    exhausted = False
    while not state.eos and len(state) < t_max:
        if not meter.affordable([t_max - len(state)]):
            exhausted = True
            break
        seg = (await meter.extend([state.tokens], [t_max - len(state)], tau,
                                  stop_entropy=params.decision_entropy, top_n=params.candidates))[0]  # fmt: skip
        state = state.grow(seg)
        if progress is not None:
            progress(len(state), t_max)
        if state.eos or len(state) >= t_max or not seg.next_top:
            break
        cands = list(seg.next_top)
        horizon = min(params.horizon, t_max - len(state) - 1)
        rollable = [c for c, (tok, _) in enumerate(cands) if tok != eos_id] if horizon > 0 else []
        logw: list[list[float]] = [[] for _ in cands]
        futures: list[list[Segment]] = [[] for _ in cands]
        if len(cands) > 1 and rollable:
            rows = [c for c in rollable for _ in range(params.rollouts)]
            if not meter.affordable([horizon] * len(rows)):
                exhausted = True
                break
            segs = await meter.extend([(*state.tokens, cands[c][0]) for c in rows], [horizon] * len(rows), tau)
            rollout_calls += 1
            for c, s in zip(rows, segs, strict=True):
                logw[c].append(alpha * math.fsum(s.logp) - math.fsum(s.logq))
                futures[c].append(s)
        _, pi = tps_distribution(alpha, [lp for _, lp in cands], logw)
        c = int(rng.choice(len(cands), p=pi))
        tok, lp = cands[c]
        decisions += 1
        meter.tokens_generated += 1
        ent = (seg.next_entropy,) if seg.next_entropy is not None and state.has_entropy else ()
        state = state.grow(Segment(tokens=(tok,), logp=(lp,), logq=(math.log(pi[c]),), eos=tok == eos_id,
                                   entropy=ent))  # fmt: skip
        if params.reuse_rollouts and futures[c] and not state.eos:
            kept = reuse_rollout(futures[c], logw[c], params.decision_entropy, rng)
            reused += kept.n_tokens
            state = state.grow(kept)
        if progress is not None:
            progress(len(state), t_max)
    if not state.logp:
        raise CapabilityError(f"{model.provider}/{model.model} returned nothing to sample from")
    return make_result(
        model, "tps", state, meter, target=target, selection=params.selection, budget_exhausted=exhausted,
        extra={
            "approximate": "token-level estimate of p^alpha (finite rollouts and horizon, top candidates only)",
            "decision_points": decisions, "rollout_calls": rollout_calls, "candidates": params.candidates,
            "rollouts": params.rollouts, "horizon": params.horizon, "decision_entropy": params.decision_entropy,
            "proposal_temperature": tau, "jackknife": params.rollouts >= 2,
            "reuse_rollouts": params.reuse_rollouts, "reused_tokens": reused,
        },
    )

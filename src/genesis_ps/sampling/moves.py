"""What each MH chain proposes in one step: its cut, where generation starts, which token its first draw
leaves out, and the move's own term of the acceptance ratio (see :mod:`genesis_ps.sampling.cuts`).

Three kinds of move: ``plain`` (regenerate from the cut; with ``change_at_cut = ρ`` the token at the cut is
redrawn without the current one with probability ρ), ``differ`` (a suffix that differs from the current
one, generated from its first difference) and ``change`` (``moves="decision"``'s decision move: the token
before an entropy jump redrawn without the current one). :func:`plan_moves` draws them for every active
chain; a step with ``moves="plain"`` draws its random numbers in the order it always has, so a seed replays
as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from genesis_ps.sampling._common import State
from genesis_ps.sampling.cuts import (
    change_log_ratio,
    cut_log_probs,
    decision_log_probs,
    differ_log_ratio,
    divergence_point,
)
from genesis_ps.sampling.params import DECISION_SHARE, SamplerParams

__all__ = ["CutRule", "Move", "cut_log_probs_of", "move_log_ratio", "plan_moves"]

CutRule = Literal["uniform", "entropy", "decision"]
Kind = Literal["plain", "differ", "change"]
NO_OTHER = 1e-12
"""A token (or suffix) whose proposal probability is within this of 1 has no other branch to take."""


@dataclass(frozen=True)
class Move:
    """One chain's proposal in one step."""

    t: int
    """The cut: the ratio compares the suffixes from here."""
    start: int
    """Where generation starts: the cut, or a ``differ`` move's first difference (x[t:start] is kept)."""
    exclude: int | None
    """The token the first draw leaves out (x's token at ``start``), or None."""
    kind: Kind
    rule: CutRule
    """The cut distribution this move drew ``t`` from (the reverse cut is computed by the same rule)."""
    cut_logp: float
    """log q_cut(t | x)."""
    null: bool = False
    """No other state to propose (the excluded token or suffix had probability 1): x stays, no model call."""


def cut_log_probs_of(s: State, rule: CutRule) -> np.ndarray:
    """log q_cut(· | s) under ``rule`` (entropy rules need ``s.has_entropy``; the caller checks)."""
    if rule == "decision":
        return decision_log_probs(len(s), s.ent, s.logq)
    return cut_log_probs(len(s), s.ent if rule == "entropy" else None)


def plan_moves(
    states: Sequence[State], active: Sequence[int], params: SamplerParams, rng: np.random.Generator,
    cut_logp: Callable[[State, CutRule], np.ndarray],
) -> dict[int, Move]:  # fmt: skip
    """Each active chain's move this step (``cut_logp`` is :func:`cut_log_probs_of` behind the caller's
    check that the model reported entropies)."""
    base: CutRule = "entropy" if params.cuts == "entropy" else "uniform"
    if params.moves == "plain":
        return _plan_plain(states, active, params, rng, cut_logp, base)
    if params.moves == "decision":
        is_change = (rng.random(len(active)) < DECISION_SHARE).tolist()
    else:
        is_change = [False] * len(active)
    rules: list[CutRule] = ["decision" if c else base for c in is_change]
    lps = [cut_logp(states[i], r) for i, r in zip(active, rules, strict=True)]
    cuts = _draw(lps, rng.random(len(active)))
    us_div = rng.random(len(active)).tolist()
    out = {}
    for a, i in enumerate(active):
        x, t, lp = states[i], cuts[a], float(lps[a][cuts[a]])
        if is_change[a]:
            out[i] = Move(t, t, x.tokens[t], "change", "decision", lp, null=_certain(x.logq[t]))
            continue
        k = divergence_point(x.logq[t:], us_div[a])
        start = t if k is None else t + k
        out[i] = Move(t, start, x.tokens[start] if k is not None else None, "differ", rules[a], lp, null=k is None)
    return out


def _plan_plain(
    states: Sequence[State], active: Sequence[int], params: SamplerParams, rng: np.random.Generator,
    cut_logp: Callable[[State, CutRule], np.ndarray], rule: CutRule,
) -> dict[int, Move]:  # fmt: skip
    if rule == "entropy":
        lps = [cut_logp(states[i], rule) for i in active]
        cuts = _draw(lps, rng.random(len(active)))
        cut_lp = [float(lp[t]) for lp, t in zip(lps, cuts, strict=True)]
    else:
        lens = np.array([len(states[i]) for i in active], dtype=np.int64)
        cuts = rng.integers(0, lens).tolist()
        cut_lp = [-math.log(len(states[i])) for i in active]
    # change_at_cut: the chains whose token at the cut is redrawn without the current one this step
    # (probability ρ); where no other token is left, that step is a null move
    rho = float(params.change_at_cut)
    forced = (rng.random(len(active)) < rho).tolist() if rho > 0 else [False] * len(active)
    out = {}
    for a, i in enumerate(active):
        x, t = states[i], cuts[a]
        ex = x.tokens[t] if forced[a] else None
        out[i] = Move(t, t, ex, "plain", rule, cut_lp[a], null=forced[a] and _certain(x.logq[t]))
    return out


def _certain(logq: float) -> bool:
    """Whether the proposal drew this token with probability 1 (within ``NO_OTHER``): no other to change to."""
    return -math.expm1(logq) <= NO_OTHER


def _draw(log_probs: Sequence[np.ndarray], us: np.ndarray) -> list[int]:
    """One index per distribution, by inversion of its cumulative sum with the uniform ``us[a]``."""
    out = []
    for lp, u in zip(log_probs, us.tolist(), strict=True):
        w = np.exp(lp)
        out.append(min(int(np.searchsorted(np.cumsum(w), u * math.fsum(w), side="right")), len(lp) - 1))
    return out


def move_log_ratio(m: Move, x: State, y: State, rho: float) -> float:
    """The move's own term of the acceptance ratio of x → y (the cut terms and π/q are the caller's): the
    change term of ``change_at_cut`` (plain) or of the decision move (ρ = 1) where the token at the cut
    changed, the differ term where the suffix did."""
    t = m.t
    if m.kind == "differ":
        if y.tokens[t:] == x.tokens[t:]:
            return 0.0
        return differ_log_ratio(math.fsum(x.logq[t:]), math.fsum(y.logq[t:]))
    r = 1.0 if m.kind == "change" else rho
    if r > 0 and y.tokens[t : t + 1] != x.tokens[t : t + 1]:
        return change_log_ratio(r, x.logq[t], y.logq[t])
    return 0.0

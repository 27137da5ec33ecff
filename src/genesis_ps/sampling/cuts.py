"""Where block-wise MH cuts, and the acceptance rule of its suffix moves (plain, multiple-try, changed).

A step from state x picks a cut ``t`` with probability q_cut(t | x), regenerates the suffix from ``t``
and accepts the new state y with the Metropolis–Hastings ratio

    π(y)·q(x[t:] | x[:t])·q_cut(t | y)  /  π(x)·q(y[t:] | x[:t])·q_cut(t | x).

* ``uniform`` cuts: q_cut(t | x) = 1/len(x), so the cut term is ``log len(x) − log len(y)``.
* ``entropy`` cuts favour *decision points*, where the base model's next-token entropy jumps up (the
  rule of Entropy-Cut MH, arXiv 2605.30327): q_cut(t | x) ∝ J_t(x) + ε with the jump
  ``J_t = max(H_t − H_{t−1}, 0)`` (``H_{−1} = 0``), H_t the base model's next-token entropy at position t
  (reported by the model from the forward pass that sampled token t), and ``ε = 0.05·mean_t H_t(x) +
  1e-6`` keeping every position reachable. J_t depends only on x[:t], so x and y weigh the shared cut
  alike; their normalisers Σ_t (J_t + ε) differ, and the ratio carries both, which keeps the chain's
  target exactly p^α. Weighting by the entropy itself rather than its jump sent the cuts to the
  high-entropy filler after a decision (on the trap toy, the four even letters after ``A``) and mixed
  more slowly than uniform cuts there; the jump puts them where uncertainty *starts*.

With ``K`` tries (multiple-try Metropolis for an independence proposal given the prefix; Liu, Liang & Wong
2000, Martino 2018): K suffixes are drawn in one batched call, y is chosen with probability ∝ its
importance weight w(y) = π(y)/q(y[t:] | x[:t]), and accepted with

    [Σ_j w(y_j)] · q_cut(t | y)  /  [Σ_j w(y_j) − w(y) + w(x)] · q_cut(t | x),

which is the plain ratio when K = 1.

With ``change_at_cut = ρ`` (K = 1), a step draws the token at the cut, with probability ρ, from the proposal
*without* the current token, q(v)/(1 − q(x_t)) for v ≠ x_t (a Metropolised-Gibbs move, Liu 1996), and
otherwise from q as before; the rest of the suffix is drawn as before. The token's proposal is then the
mixture Q(v | x_t) of :func:`change_log_ratio`, whose density the ratio carries, so the chain stays exact
for any ρ in [0, 1]. A changed draw at a cut where q(x_t) = 1 has no other branch: that step leaves x as it
is, which is exact too (every state sharing the prefix has the same token there).

``moves="differ"`` proposes, at cut ``t``, a suffix drawn from q *conditioned on differing* from x's:
Q(y[t:] | x) = q(y[t:]) / (1 − q(x[t:])) for y[t:] ≠ x[t:], q(x[t:]) the product of x's own recorded
log q from t to its end (EOS included). It is drawn without a model call until the first difference: that
position k is drawn with probability q(x[t:k])·(1 − q(x_k)) / (1 − q(x[t:])) (:func:`divergence_point`),
then one ``extend`` continues x[:k] with x_k excluded from its first draw. The ratio gains
log(1 − q(x[t:])) − log(1 − q(y[t:])) (:func:`differ_log_ratio`). Every off-diagonal transition
probability is at least the plain move's (both terms of its min grow by 1/(1 − q)), so by Peskun's theorem
no average over the chain has a larger asymptotic variance (the distance to p^α after a fixed number of
steps is another matter: a chain that always moves can swing between two heavy states), and it generates
only the tokens after the first difference. A suffix with q(x[t:]) = 1 has no other state to propose: a
null move.

``moves="decision"`` mixes that move with a decision move, chosen independently of the state each step
(a mixture of kernels that each keep p^α invariant keeps it invariant): with probability
``DECISION_SHARE`` the cut is drawn by :func:`decision_log_probs` — ∝ (J_{t+1} + ε)·(1 − q(x_t)), the
token *before* an entropy jump, the choice that led into an uncertain future (which p^α, favouring
concentrated futures, penalises), where another token was possible — and its token is redrawn without the
current one (the change at the cut with ρ = 1). That cut depends on the token and the entropy after it,
which differ between x and y; the ratio carries q_cut(t | y) computed on y. A state with no position where
another token was possible has nothing for a decision move to change: a null move.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "ENTROPY_EPS", "change_log_ratio", "cut_log_probs", "decision_log_probs", "differ_bound",
    "differ_log_ratio", "divergence_point", "entropy_jumps", "log_sum_exp", "mtm_log_ratio", "suffix_log_weight",
]

ENTROPY_EPS = 0.05
"""Entropy cuts: the floor ``ε`` on a position's weight, as a fraction of the state's mean entropy."""


def entropy_jumps(ent: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """``(H, J)``: the entropies clipped at 0 and their upward jumps J_t = max(H_t − H_{t−1}, 0), H_{−1} = 0."""
    h = np.maximum(np.asarray(ent, dtype=float), 0.0)
    prev = np.concatenate(([0.0], h[:-1]))
    return h, np.maximum(h - prev, 0.0)


def cut_log_probs(n: int, ent: Sequence[float] | None) -> np.ndarray:
    """log q_cut(t | x) for t = 0..n−1: uniform when ``ent`` is None, else ∝ J_t + ε."""
    if n <= 0:
        raise ValueError("a state to cut needs at least one token")
    if ent is None:
        return np.full(n, -math.log(n))
    if len(ent) < n:
        raise ValueError("entropy cuts need one entropy per token")
    h, jump = entropy_jumps(ent[:n])
    w = jump + ENTROPY_EPS * float(h.mean()) + 1e-6
    out: np.ndarray = np.log(w) - math.log(float(w.sum()))
    return out


def decision_log_probs(n: int, ent: Sequence[float], logq: Sequence[float]) -> np.ndarray:
    """log q_cut(t | x) of ``moves="decision"``'s change move: ∝ (J_{t+1} + ε)·(1 − q(x_t)) — the upward
    entropy jump right after position t (none after the last position), ε as in :func:`cut_log_probs`,
    times the proposal's probability of another token at t (a change where x_t was near-certain is a
    step the ratio's (1 − q(x_t)) / (1 − q(y_t)) would reject; where it was certain, none is possible)."""
    if n <= 0:
        raise ValueError("a state to cut needs at least one token")
    if len(ent) < n or len(logq) < n:
        raise ValueError("decision cuts need one entropy and one log q per token")
    h, jump = entropy_jumps(ent[:n])
    after = np.concatenate((jump[1:], [0.0]))
    other = np.maximum(-np.expm1(np.asarray(logq[:n], dtype=float)), 0.0)
    w = (after + ENTROPY_EPS * float(h.mean()) + 1e-6) * other + 1e-300
    out: np.ndarray = np.log(w) - math.log(float(w.sum()))
    return out


def log_sum_exp(values: Sequence[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(math.fsum(math.exp(v - top) for v in values))


def suffix_log_weight(
    alpha: float, logp: Sequence[float], logq: Sequence[float], reward_term: float = 0.0
) -> float:
    """log π(suffix) − log q(suffix) of a suffix given the shared prefix (the prefix cancels)."""
    return alpha * math.fsum(logp) - math.fsum(logq) + reward_term


def mtm_log_ratio(
    cur_weight: float,
    try_weights: Sequence[float],
    chosen: int,
    *,
    cur_cut_logp: float,
    prop_cut_logp: float,
) -> float:
    """Log acceptance ratio of a (multiple-try) suffix move; see the module docstring.

    ``cur_weight`` / ``try_weights`` are :func:`suffix_log_weight` of x's suffix and of each try;
    ``chosen`` indexes the try proposed; ``*_cut_logp`` are log q_cut(t | x) and log q_cut(t | y)."""
    total = log_sum_exp(try_weights)
    rest = [w for j, w in enumerate(try_weights) if j != chosen] + [cur_weight]
    return total - log_sum_exp(rest) + prop_cut_logp - cur_cut_logp


def change_log_ratio(rho: float, logq_x_t: float, logq_y_t: float) -> float:
    """The term ``change_at_cut = ρ`` adds to the ratio of a move whose token at the cut changed, x_t → y_t.

    The token at the cut is proposed from Q(v | x_t) = (1 − ρ)·q(v) + ρ·q(v)·[v ≠ x_t]/(1 − q(x_t)), so for
    v ≠ x_t, Q(v | x_t) = q(v)·m(x_t) with m(w) = (1 − ρ) + ρ/(1 − q(w)). The plain ratio already carries
    q(x_t)/q(y_t); this adds log m(y_t) − log m(x_t). (A move that keeps the token at the cut has
    Q(x_t | x_t) = (1 − ρ)·q(x_t) both ways: no term.) 1 − q(w) is at least the other token's q, which
    guards the subtraction where a q rounds to 1."""
    rest_x = max(-math.expm1(logq_x_t), math.exp(logq_y_t))
    rest_y = max(-math.expm1(logq_y_t), math.exp(logq_x_t))
    return _log_mix(rho, rest_y) - _log_mix(rho, rest_x)


def divergence_point(logq: Sequence[float], u: float) -> int | None:
    """Where a proposal made to differ from the current suffix first differs from it.

    ``logq`` are the current suffix's per-token log q (from the cut to its end, EOS included); ``u`` a
    uniform draw. Position k is returned with probability q(x[:k])·(1 − q(x_k)) / (1 − q(x)): the law of
    the first difference of a suffix drawn from q conditioned on not being x. None where q(x) rounds to 1
    (every suffix of this prefix is x's: no other state to propose)."""
    lq = np.asarray(logq, dtype=float)
    if lq.size == 0:
        return None
    head = np.concatenate(([0.0], np.cumsum(lq[:-1])))
    w = np.exp(head) * -np.expm1(lq)
    total = float(w.sum())
    if not total > 1e-12:
        return None
    k = int(np.searchsorted(np.cumsum(w), u * total, side="right"))
    return min(k, lq.size - 1)


def differ_log_ratio(logq_x: float, logq_y: float) -> float:
    """The term ``moves="differ"`` adds to a move's ratio: log(1 − q(x[t:])) − log(1 − q(y[t:])), given the
    two suffixes' summed log q (the change term of :func:`change_log_ratio` at ρ = 1, for whole suffixes)."""
    return change_log_ratio(1.0, logq_x, logq_y)


def differ_bound(logq_partial: float) -> float:
    """An upper bound on −log(1 − q(y[t:])) for any completion of a partial suffix with summed log q
    ``logq_partial`` (completing it can only lower q)."""
    rest = -math.expm1(logq_partial)
    return -math.log(rest) if rest > 0.0 else math.inf


def _log_mix(rho: float, rest: float) -> float:
    """log((1 − ρ) + ρ/rest)."""
    keep = math.log1p(-rho) if rho < 1.0 else -math.inf
    change = math.log(rho) - math.log(rest) if rho > 0.0 else -math.inf
    return float(np.logaddexp(keep, change))

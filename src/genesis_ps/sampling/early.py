"""Early rejection of MH suffix proposals, exactly.

A suffix y[t:] proposed at temperature τ carries the log-weight ``Σ_j α·log p(y_j) − log q(y_j)``. When
``q`` is the base distribution at τ (possibly restricted to a top-k/top-p set S), each term is

    α·log p − log q = (α − 1/τ)·log p + log Σ_S p^{1/τ},

and with 1 ≤ 1/τ ≤ α both parts are ≤ 0: the weight of a partly generated suffix can only fall as it
grows. The MH step accepts y when ``log u ≤ w(y) − w(x) + log q_cut(t | y) − log q_cut(t | x)``, with u
drawn *before* generating. So once the partial weight plus an upper bound on log q_cut(t | y) falls below
``log u + w(x) + log q_cut(t | x)``, y is rejected whatever its remaining tokens would be, and they need
not be generated. The decision is the one the full suffix would have given (same u, same ratio), so the
chain is the same Markov chain; only the tokens spent on a rejected proposal shrink.

Bounds on the reverse cut: uniform cuts, ``log q_cut(t | y) = −log len(y) ≤ −log m`` for the m tokens y
has so far. Entropy cuts, q_cut(t | y) = (J_t + ε)/Σ_j (J_j + ε) ≤ (J_t + ε)/(A + m·ε) ≤ max(J_t/A, 1/m),
where A sums the entropy jumps of y's first m positions (each fixed by y's first m tokens; every ε > 0).
The decision move's cut weighs (J_{t+1} + ε)·(1 − q(y_t)): bounded the same way once y has position t + 1
(``_decision_bound``), else by 1. A ``differ``
move's term −log(1 − q(y[t:])) can only fall as y's suffix grows (q of a longer suffix is smaller), so
its value for the partial suffix bounds it.

The suffix is generated in chunks that double (the first about 1/16 of the room left, at least the
model's ``capabilities.call_tokens``: on the local backend a call's fixed cost is worth about 8 tokens),
each chunk one batched ``extend`` continuing the rows still undecided; the local backend serves each
continuation from its prefix KV cache.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from genesis_ps.sampling._common import Meter, State
from genesis_ps.sampling.cuts import change_log_ratio, differ_bound, entropy_jumps

__all__ = ["MARGIN_PER_TOKEN", "Pending", "early_reject_applies", "propose_with_early_rejection", "reverse_cut_bound"]

MARGIN_PER_TOKEN = 1e-6
"""Slack per token still to come, for rounding in the reported log p / log q (each term is ≤ 0 in exact
arithmetic; a float one may read +1e-7)."""


def early_reject_applies(*, logprobs: str, tau: float, alpha: float, tilted: bool, n_tries: int) -> bool:
    """Whether the per-token weights are provably ≤ 0 here (exact log-probs, 1/α ≤ τ ≤ 1, no reward tilt
    and one try per cut: a tilt's reward and multiple tries' normalisers have no sign)."""
    return logprobs == "exact" and not tilted and n_tries == 1 and 1.0 / alpha - 1e-12 <= tau <= 1.0


def reverse_cut_bound(y: State, t: int, rule: str) -> float:
    """An upper bound on log q_cut(t | y) for any completion of the partial state ``y`` under the cut
    ``rule`` (``uniform``, ``entropy``, ``decision``)."""
    m = len(y)
    if rule == "uniform":
        return -math.log(m)
    if not y.has_entropy:
        return 0.0
    if rule == "decision":
        return _decision_bound(y, t)
    _, jump = entropy_jumps(y.ent[:m])
    a = math.fsum(jump.tolist())
    return 0.0 if a <= 0 else math.log(max(float(jump[t]) / a, 1.0 / m))


def _decision_bound(y: State, t: int) -> float:
    """The decision rule's weights w_j = (J_{j+1} + e)·c_j, c_j = 1 − q(y_j), e = ε + 1e-6 > 0 unknown until
    y is complete (ε follows y's mean entropy). With m tokens, w_j is known for j ≤ m − 2 up to e, and the
    weights after are ≥ 0, so q_cut(t | y) ≤ (J_{t+1} + e)·c_t / Σ_{j ≤ m−2} (J_{j+1} + e)·c_j — a ratio of
    linear functions of e, so at most its larger end value: max(J_{t+1}·c_t / Σ J_{j+1}·c_j, c_t / Σ c_j).
    Until y has position t + 1, 1."""
    m = len(y)
    if m <= t + 1:
        return 0.0
    _, jump = entropy_jumps(y.ent[:m])
    after = jump[1:m]  # J_{j+1} for j = 0..m-2
    c = [max(-math.expm1(q), 0.0) for q in y.logq[: m - 1]]
    sum_c = math.fsum(c)
    if sum_c <= 0.0:
        return 0.0
    ends = [c[t] / sum_c]
    sum_ac = math.fsum(float(a) * cj for a, cj in zip(after.tolist(), c, strict=True))
    if sum_ac > 0.0:
        ends.append(float(after[t]) * c[t] / sum_ac)
    best = min(1.0, max(ends))
    return math.log(best) if best > 0.0 else -math.inf


@dataclass
class Pending:
    """One chain's proposal in progress: cut ``t`` of the current state, its stage ``limit``, and the
    threshold ``need = log u + w(x[start:]) + log q_cut(t | x)`` (plus x's side of a differ term) its final
    ratio is held against; generation continues ``prefix`` = x[:start]."""

    prefix: State
    t: int
    limit: int
    need: float
    rho: float = 0.0
    """The change term's ρ (``change_at_cut``, or 1 for a decision move), the current token at the cut and
    its log q, and whether this draw excludes it. Once y_t is drawn,
    :func:`~genesis_ps.sampling.cuts.change_log_ratio` (known from then on) joins the proposal's weight
    where y_t differs from x_t."""
    cut_token: int | None = None
    cut_logq: float = 0.0
    exclude: bool = False
    differ: bool = False
    """A ``differ`` move (its first draw, at ``len(prefix)``, excludes ``cut_token``): the bound gains
    :func:`~genesis_ps.sampling.cuts.differ_bound` of y's partial suffix from ``t``."""
    rule: str = "uniform"
    """The cut rule (for the reverse-cut bound)."""


async def propose_with_early_rejection(
    meter: Meter, pending: Sequence[Pending], tau: float, alpha: float
) -> list[State | None]:
    """Each pending proposal's full state, or None where it was rejected before its suffix was done."""
    states = [p.prefix for p in pending]
    weight = [0.0] * len(pending)
    out: list[State | None] = [None] * len(pending)
    live = list(range(len(pending)))
    floor = max(1, int(meter.model.capabilities.call_tokens))
    size = [max(floor, (p.limit - len(p.prefix)) // 16) for p in pending]
    while live:
        max_new = [min(size[i], pending[i].limit - len(states[i])) for i in live]
        first_call = [len(states[i]) == len(pending[i].prefix) for i in live]
        first = [pending[i].cut_token if pending[i].exclude and f else None
                 for i, f in zip(live, first_call, strict=True)]  # fmt: skip
        segs = await meter.extend([states[i].tokens for i in live], max_new, tau,
                                  exclude_first=first if any(e is not None for e in first) else None)  # fmt: skip
        still: list[int] = []
        for i, seg, f in zip(live, segs, first_call, strict=True):
            states[i] = states[i].grow(seg)
            weight[i] += alpha * math.fsum(seg.logp) - math.fsum(seg.logq)
            p = pending[i]
            if f and p.rho > 0 and not p.differ and seg.n_tokens and seg.tokens[:1] != (p.cut_token,):
                weight[i] += change_log_ratio(p.rho, p.cut_logq, seg.logq[0])
            if states[i].eos or len(states[i]) >= p.limit or seg.n_tokens == 0:
                out[i] = states[i]
                continue
            room = p.limit - len(states[i])
            bound = weight[i] + reverse_cut_bound(states[i], p.t, p.rule) + MARGIN_PER_TOKEN * room
            if p.differ:
                bound += differ_bound(math.fsum(states[i].logq[p.t :]))
            if bound < p.need:
                continue  # rejected: no completion can reach the threshold
            size[i] *= 2
            still.append(i)
        live = still
    return out

"""Approximate the proposal log-probability log q_τ(token) from a provider's top-k log-probs.

A completions server samples token y at temperature τ from q_τ(y) = p(y)^{1/τ} / Z_τ with
Z_τ = Σ_v p(v)^{1/τ}, and (vLLM's default ``raw_logprobs``) returns log p(y) and the top-k log p(v)
at temperature 1. Z_τ needs the whole vocabulary; we only see S = top-k ∪ {y}. Bounds:

* lower: Z_τ ≥ Σ_{v∈S} p(v)^{1/τ} — renormalising over S (mode ``renorm``) gives an *upper* bound on
  log q_τ(y);
* upper: the unseen tail has mass r = 1 − Σ_{v∈S} p(v) and every tail token has p ≤ m = min_{v∈top-k} p(v),
  so (for τ ≤ 1) Σ_tail p^{1/τ} ≤ m^{1/τ−1}·r — mode ``bound`` uses this and gives a *lower* bound;
* ``mid`` takes the midpoint of the two log-bounds.

Which is closest is measured on the embedded model (``python -m genesis_ps.bench.topk_error``,
docs/providers.md). For τ > 1 the tail bound does not hold; ``bound`` and ``mid`` then fall back to
``renorm``. At τ = 1, q = p exactly and no approximation is needed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

from genesis_ps.errors import ConfigError

__all__ = ["APPROX_MODES", "ApproxMode", "approx_logq", "logsumexp", "topk_entropy"]

ApproxMode = Literal["renorm", "bound", "mid"]
APPROX_MODES: tuple[str, ...] = ("renorm", "bound", "mid")


def logsumexp(values: Iterable[float]) -> float:
    """Stable log Σ exp(values); −inf for an empty input."""
    vals = [v for v in values if v != -math.inf]
    if not vals:
        return -math.inf
    top = max(vals)
    return top + math.log(sum(math.exp(v - top) for v in vals))


def approx_logq(
    sampled_logp: float,
    top_logps: Iterable[float],
    tau: float,
    *,
    sampled_in_top: bool,
    mode: ApproxMode = "renorm",
) -> float:
    """log q_τ of the sampled token from its log p and the top-k log p (all at temperature 1).

    ``sampled_in_top`` says whether ``sampled_logp`` is one of ``top_logps`` (so it is not counted
    twice). Returns exactly ``sampled_logp`` when τ = 1.
    """
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau > 0):
        raise ConfigError("temperature", f"must be a finite number > 0, got {tau!r}")
    if mode not in APPROX_MODES:
        raise ConfigError("approx", f"unknown mode {mode!r}; choose one of {', '.join(APPROX_MODES)}")
    if tau == 1.0:
        return float(sampled_logp)
    top = [float(v) for v in top_logps]
    support = top if sampled_in_top else [*top, float(sampled_logp)]
    inv = 1.0 / tau
    log_z_low = logsumexp(v * inv for v in support)
    upper_q = sampled_logp * inv - log_z_low
    if mode == "renorm" or tau > 1.0 or not top:
        return upper_q
    seen_mass = min(1.0, math.exp(logsumexp(support)))
    tail = max(0.0, 1.0 - seen_mass)
    if tail <= 0.0:
        return upper_q
    log_tail_bound = (inv - 1.0) * min(top) + math.log(tail)
    log_z_high = logsumexp([log_z_low, log_tail_bound])
    lower_q = sampled_logp * inv - log_z_high
    if mode == "bound":
        return lower_q
    return 0.5 * (upper_q + lower_q)


def topk_entropy(top_logps: Iterable[float]) -> float:
    """Next-token entropy (nats) estimated from the top-k log p: −Σ_top p·log p − r·log r, the unseen
    tail of mass r counted as one outcome. That is a lower bound on the true entropy (the tail can only
    be more spread); adapters flag it ``approx_entropy``."""
    ps = [math.exp(v) for v in top_logps if v != -math.inf]
    h = -math.fsum(p * math.log(p) for p in ps if p > 0)
    r = 1.0 - math.fsum(ps)
    if r > 1e-12:
        h -= r * math.log(r)
    return max(h, 0.0)

"""Convergence and loss-curve health, from measured losses only.

A target *converges* when its final loss is below ``0.3 x`` its random-embedding baseline, or — for the
answer, the one target with a real-token context — below ``2 x`` the full-context loss L(A | Q). A pair
converges when all its targets do (a joint sum could hide one failing target).

Health of a training curve (the weighted joint loss per step):

- ``diverging``: a non-finite value, or the last loss above the first;
- ``flat``: the best loss is within 5% of the first — nothing moved from the start;
- ``oscillating``: the rises along the curve add up to more than half of its total descent
  (first minus best), i.e. it bounces about as much as it descends;
- ``healthy``: otherwise — monotone, or a plateau followed by a drop.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

__all__ = ["FULL_CONTEXT_FACTOR", "HEALTH_CLASSES", "RANDOM_FACTOR", "classify_curve", "target_converged"]

HEALTH_CLASSES = ("healthy", "oscillating", "flat", "diverging")
RANDOM_FACTOR = 0.3
FULL_CONTEXT_FACTOR = 2.0


def target_converged(final: float, random_baseline: float, full_context: float | None = None) -> bool:
    """The convergence rule above for one target (``full_context`` only for the answer)."""
    if not math.isfinite(final):
        return False
    if final < RANDOM_FACTOR * random_baseline:
        return True
    return full_context is not None and final < FULL_CONTEXT_FACTOR * full_context


def classify_curve(curve: Sequence[float]) -> str:
    """One of :data:`HEALTH_CLASSES` for a loss curve (at least one value)."""
    if not curve:
        raise ValueError("an empty curve has no health")
    if not all(math.isfinite(x) for x in curve):
        return "diverging"
    first, last, best = curve[0], curve[-1], min(curve)
    if last > first:
        return "diverging"
    descent = first - best
    if descent <= 0.05 * abs(first):
        return "flat"
    rises = sum(max(0.0, b - a) for a, b in itertools.pairwise(curve))
    if rises > 0.5 * descent:
        return "oscillating"
    return "healthy"

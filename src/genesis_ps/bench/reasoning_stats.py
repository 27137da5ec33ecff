"""Two paired statistics of the reasoning benchmark: the relative reduction of a cost with a paired
bootstrap interval, and Newcombe's score interval for a difference of paired proportions."""

from __future__ import annotations

import math

import numpy as np

from genesis_ps.bench.stats import wilson_interval

__all__ = ["paired_difference_ci", "reduction"]


def reduction(a: list[float], b: list[float], *, n_boot: int = 5000, seed: int = 0) -> tuple[float, float, float]:
    """``1 − Σb/Σa`` and its paired percentile-bootstrap 95% interval (problems resampled with replacement;
    resamples with ``Σa = 0`` dropped). NaN triple when ``Σa`` is 0 or there are no pairs."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.size == 0 or xa.sum() <= 0:
        return (math.nan, math.nan, math.nan)
    idx = np.random.default_rng(seed).integers(0, xa.size, size=(n_boot, xa.size))
    sa, sb = xa[idx].sum(axis=1), xb[idx].sum(axis=1)
    r = 1.0 - sb[sa > 0] / sa[sa > 0]
    return (float(1.0 - xb.sum() / xa.sum()), float(np.percentile(r, 2.5)), float(np.percentile(r, 97.5)))


def paired_difference_ci(a: list[bool], b: list[bool]) -> tuple[float, float]:
    """Newcombe's hybrid score 95% interval for ``mean(b) − mean(a)`` on paired binary outcomes (Newcombe
    1998, method 10: Wilson intervals of both proportions, joined with the pairs' correlation φ). Unlike a
    percentile bootstrap it does not collapse to a point, or to an end at 0, when one method is never
    worse on a small sample. (NaN, NaN) with no pairs."""
    n = len(a)
    if n == 0:
        return (math.nan, math.nan)
    both = sum(x and y for x, y in zip(a, b, strict=True))
    b_only = sum(y and not x for x, y in zip(a, b, strict=True))
    a_only = sum(x and not y for x, y in zip(a, b, strict=True))
    neither = n - both - b_only - a_only
    p1, p2 = (both + b_only) / n, (both + a_only) / n
    (l1, u1), (l2, u2) = wilson_interval(both + b_only, n), wilson_interval(both + a_only, n)
    den = (both + b_only) * (a_only + neither) * (both + a_only) * (b_only + neither)
    phi = (both * neither - b_only * a_only) / math.sqrt(den) if den > 0 else 0.0
    d = p1 - p2
    lo = d - math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    hi = d + math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    return (max(lo, -1.0), min(hi, 1.0))

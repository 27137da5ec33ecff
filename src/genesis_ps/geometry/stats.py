"""Correlations reported by steps 3 and 6 (Spearman and Pearson, with their p-values)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["correlation"]


def correlation(x: Sequence[float | None], y: Sequence[float | None]) -> dict[str, Any]:
    """``{n, spearman, spearman_p, pearson, pearson_p}`` over the pairs where both values are present (None
    or NaN pairs are dropped and counted in ``dropped``); the coefficients are None (with ``note``) when
    fewer than 3 pairs remain or either side is constant, where a correlation is undefined."""
    a0 = np.asarray([np.nan if v is None else v for v in x], dtype=float)
    b0 = np.asarray([np.nan if v is None else v for v in y], dtype=float)
    keep = np.isfinite(a0) & np.isfinite(b0)
    a, b = a0[keep], b0[keep]
    out: dict[str, Any] = {"n": int(a.size), "dropped": int((~keep).sum()), "spearman": None, "spearman_p": None,
                           "pearson": None, "pearson_p": None}  # fmt: skip
    if a.size < 3:
        out["note"] = "fewer than 3 points"
        return out
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        out["note"] = "one side is constant"
        return out
    from scipy import stats

    s = stats.spearmanr(a, b)
    p = stats.pearsonr(a, b)
    out.update(spearman=float(s.statistic), spearman_p=float(s.pvalue), pearson=float(p.statistic),
               pearson_p=float(p.pvalue))  # fmt: skip
    return out

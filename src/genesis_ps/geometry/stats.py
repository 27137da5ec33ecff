"""Correlations reported by steps 3 and 6 (Spearman and Pearson, with their p-values)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["correlation"]


def correlation(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    """``{n, spearman, spearman_p, pearson, pearson_p}``; the coefficients are None (with ``note``) when
    fewer than 3 points or either side is constant, where a correlation is undefined."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    out: dict[str, Any] = {"n": int(a.size), "spearman": None, "spearman_p": None, "pearson": None, "pearson_p": None}
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

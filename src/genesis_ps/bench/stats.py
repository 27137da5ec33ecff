"""Statistics for benchmark tables: Wilson intervals, paired bootstrap intervals, paired tests — computed
by :mod:`scipy.stats`; this module fixes the conventions (95%, percentile bootstrap, seeds, pairing).

Every comparison between two methods is *paired*: both ran on the same items (records, problems), so
the differences per item are what is resampled and tested.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["PairedComparison", "mean_ci", "paired_compare", "paired_permutation_p", "wilson_interval"]


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (``scipy.stats.binomtest``); (0, 1) when ``n`` is 0."""
    if n <= 0:
        return (0.0, 1.0)
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (max(0.0, float(ci.low)), min(1.0, float(ci.high)))


def _bootstrap_mean(x: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile-bootstrap 95% interval of the mean (``scipy.stats.bootstrap``); a point when every value
    is the same (the bootstrap distribution is degenerate)."""
    if np.all(x == x[0]):
        return (float(x[0]), float(x[0]))
    res = stats.bootstrap((x,), np.mean, n_resamples=n_boot, method="percentile", vectorized=True,
                          random_state=np.random.default_rng(seed))  # fmt: skip
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def mean_ci(values: Sequence[float], *, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and a percentile-bootstrap 95% interval of ``values`` (NaN triple when empty)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    lo, hi = _bootstrap_mean(x, n_boot, seed)
    return (float(x.mean()), lo, hi)


def paired_permutation_p(diff: Sequence[float], *, n_perm: int = 10000, seed: int = 0) -> float:
    """Two-sided paired (sign-flip) permutation test of mean difference 0 (``scipy.stats.permutation_test``,
    exact while 2**n <= ``n_perm``)."""
    d = np.asarray(diff, dtype=float)
    if d.size < 2 or np.all(d == 0):
        return 1.0  # with one pair both sign flips give the same |mean|: the exact p is 1
    res = stats.permutation_test((d,), np.mean, permutation_type="samples", vectorized=True, n_resamples=n_perm,
                                 alternative="two-sided", random_state=np.random.default_rng(seed))  # fmt: skip
    return float(min(1.0, res.pvalue))


@dataclass(frozen=True)
class PairedComparison:
    """Method ``b`` minus method ``a`` on ``n`` shared items."""

    a: str
    b: str
    metric: str
    n: int
    mean_a: float
    mean_b: float
    mean_diff: float
    ci_low: float
    ci_high: float
    p_wilcoxon: float | None
    p_permutation: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_compare(
    a: Sequence[float],
    b: Sequence[float],
    *,
    name_a: str = "a",
    name_b: str = "b",
    metric: str = "",
    n_boot: int = 5000,
    seed: int = 0,
) -> PairedComparison:
    """Mean of ``b − a`` with a paired bootstrap 95% interval (items resampled with replacement),
    a Wilcoxon signed-rank p-value (None when every difference is 0 or n < 2) and a paired
    sign-flip permutation p-value."""
    xa = np.asarray(a, dtype=float)
    xb = np.asarray(b, dtype=float)
    if xa.shape != xb.shape:
        raise ValueError("paired_compare needs the same number of items for both methods")
    d = xb - xa
    n = int(d.size)
    if n == 0:
        nan = math.nan
        return PairedComparison(name_a, name_b, metric, 0, nan, nan, nan, nan, nan, None, 1.0)
    ci_low, ci_high = _bootstrap_mean(d, n_boot, seed)
    p_w: float | None = None
    if n >= 2 and np.any(d != 0):
        p_w = float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
    return PairedComparison(
        a=name_a,
        b=name_b,
        metric=metric,
        n=n,
        mean_a=float(xa.mean()),
        mean_b=float(xb.mean()),
        mean_diff=float(d.mean()),
        ci_low=ci_low,
        ci_high=ci_high,
        p_wilcoxon=p_w,
        p_permutation=paired_permutation_p(d, seed=seed),
    )

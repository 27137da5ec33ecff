"""Statistics for benchmark tables: Wilson intervals, paired bootstrap intervals, paired tests.

Every comparison between two methods is *paired*: both ran on the same items (records, problems), so
the differences per item are what is resampled and tested.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["PairedComparison", "mean_ci", "paired_compare", "paired_permutation_p", "wilson_interval"]


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default); (0, 1) when ``n`` is 0."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_ci(values: Sequence[float], *, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and a percentile-bootstrap 95% interval of ``values`` (NaN triple when empty)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    boots = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    return (float(x.mean()), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5)))


def paired_permutation_p(diff: Sequence[float], *, n_perm: int = 10000, seed: int = 0) -> float:
    """Two-sided paired (sign-flip) permutation test of mean difference 0. Exact for n ≤ 16."""
    d = np.asarray(diff, dtype=float)
    if d.size == 0 or np.all(d == 0):
        return 1.0
    obs = abs(d.mean())
    if d.size <= 16:
        signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * d.size)).reshape(d.size, -1).T
    else:
        signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(n_perm, d.size))
    stats = np.abs((signs * d).mean(axis=1))
    return float(np.mean(stats >= obs - 1e-12))


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
    a Wilcoxon signed-rank p-value (scipy; None when every difference is 0 or n < 2) and a paired
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
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    p_w: float | None = None
    if n >= 2 and np.any(d != 0):
        from scipy.stats import wilcoxon

        p_w = float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
    return PairedComparison(
        a=name_a,
        b=name_b,
        metric=metric,
        n=n,
        mean_a=float(xa.mean()),
        mean_b=float(xb.mean()),
        mean_diff=float(d.mean()),
        ci_low=float(np.percentile(boots, 2.5)),
        ci_high=float(np.percentile(boots, 97.5)),
        p_wilcoxon=p_w,
        p_permutation=paired_permutation_p(d, seed=seed),
    )

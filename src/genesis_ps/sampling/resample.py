"""Resampling schemes for SMC, named: ``systematic``, ``stratified``, ``chopthin`` (and ``multinomial``).

Each takes normalised weights and the run's generator and returns ``(indices, log_weights)``: the
ancestors of the N new particles and their new (unnormalised) log weights — zeros for the three
schemes that equalise the weights, and for chopthin the bounded weights it keeps.

* **systematic** — one uniform offset, N evenly spaced points through the CDF (each count within one
  of N·w).
* **stratified** — one uniform per stratum [k/N, (k+1)/N).
* **chopthin** (Gandy & Lau, "The chopthin algorithm for resampling", IEEE TSP 2016) — with the
  weights scaled to mean 1 and ``b = a·η/2``, a particle of weight v < a is *thinned* (expected
  offspring v/a, weight a), a ≤ v < b is kept once with its weight, v ≥ b is *chopped* into about
  v/b copies of weight b; ``a`` solves Σ offspring = N. Offspring counts are drawn systematically.
  Every particle's expected total weight is kept (unbiased), and the new weights stay within a factor
  η/2 of each other, so it resamples far less mass than the equalising schemes. η = 4 here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["CHOPTHIN_ETA", "RESAMPLERS", "chopthin_resample", "multinomial_resample", "stratified_resample",
           "systematic_resample"]  # fmt: skip

CHOPTHIN_ETA = 4.0
Resampled = tuple[np.ndarray, np.ndarray]


def _from_points(weights: np.ndarray, points: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights)
    cdf[-1] = 1.0
    out: np.ndarray = np.searchsorted(cdf, points, side="right").clip(0, len(weights) - 1)
    return out


def systematic_resample(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices by systematic resampling: one uniform offset, N evenly spaced points."""
    n = len(weights)
    return _from_points(weights, (rng.random() + np.arange(n)) / n)


def stratified_resample(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices by stratified resampling: one uniform point in each of N equal strata."""
    n = len(weights)
    return _from_points(weights, (rng.random(n) + np.arange(n)) / n)


def multinomial_resample(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices drawn i.i.d. by weight."""
    return rng.choice(len(weights), size=len(weights), p=weights)


def _offspring(v: np.ndarray, a: float, eta: float) -> np.ndarray:
    b = a * eta / 2.0
    out: np.ndarray = np.where(v < a, v / a, np.where(v < b, 1.0, v / b))
    return out


def chopthin_resample(weights: np.ndarray, rng: np.random.Generator, eta: float = CHOPTHIN_ETA) -> Resampled:
    """Chopthin: (ancestor indices, new log weights); see the module docstring."""
    n = len(weights)
    v = np.asarray(weights, dtype=float) * n
    lo, hi = 1e-300, float(v.max())
    for _ in range(200):  # Σ offspring falls as a rises; bisect in log space
        mid = float(np.sqrt(lo * hi))
        if _offspring(v, mid, eta).sum() > n:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1 + 1e-12:
            break
    e = _offspring(v, hi, eta)
    e *= n / e.sum()
    cum = np.cumsum(e)
    cum[-1] = float(n)
    idx = np.searchsorted(cum, rng.random() + np.arange(n), side="right").clip(0, n - 1)
    with np.errstate(divide="ignore"):
        logw = np.log(v[idx]) - np.log(e[idx])
    return idx, logw


def _equalising(fn: Callable[[np.ndarray, np.random.Generator], np.ndarray]) -> Callable[..., Resampled]:
    def run(weights: np.ndarray, rng: np.random.Generator) -> Resampled:
        idx = fn(weights, rng)
        return idx, np.zeros(len(idx))

    return run


RESAMPLERS: dict[str, Callable[[np.ndarray, np.random.Generator], Resampled]] = {
    "systematic": _equalising(systematic_resample),
    "stratified": _equalising(stratified_resample),
    "multinomial": _equalising(multinomial_resample),
    "chopthin": chopthin_resample,
}

"""The latent z of a generation, pooled on the fly, and the metrics over sets of latents.

Positions are *generated indices*: token ``j`` (1-based) is the ``j``-th token after the prompt, and the
state "at" token ``j`` is the residual stream at the position that emitted it (the last prompt position
emits token 1). A :class:`PoolSpec` selects the tokens ``j = start + s, start + 2s, …`` up to ``until``
(stride ``s``) and z is the mean of their states; a window that holds no multiple of the stride (a
completion that ended early) uses its last state instead. Sums are kept per row and layer, never per
token, so memory does not grow with the generation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PoolSpec", "Pooler", "bootstrap_variance_ratio", "mean_pairwise_distance", "relative_variance",
           "total_variance"]


@dataclass(frozen=True)
class PoolSpec:
    """Which tokens a latent averages: ``j - start`` a positive multiple of ``stride``, and ``j <= until``."""

    stride: int
    start: int | tuple[int, ...] = 0
    """One start for every row, or one per row."""
    until: int | None = None
    """Last generated index included (None: to the end)."""

    def starts(self, n_rows: int) -> list[int]:
        if isinstance(self.start, int):
            return [self.start] * n_rows
        if len(self.start) != n_rows:
            raise ValueError(f"PoolSpec has {len(self.start)} starts for {n_rows} rows")
        return list(self.start)


@dataclass
class Pooler:
    """Running sums of one :class:`PoolSpec` over a batch (torch tensors on the model's device)."""

    spec: PoolSpec
    n_rows: int
    layers: tuple[int, ...]
    hidden: int
    device: Any
    _sum: Any = field(init=False)
    _count: Any = field(init=False)
    _last: Any = field(init=False)
    _last_j: Any = field(init=False)
    _start: Any = field(init=False)

    def __post_init__(self) -> None:
        import torch

        shape = (self.n_rows, len(self.layers), self.hidden)
        self._sum = torch.zeros(shape, dtype=torch.float64, device=self.device)
        self._count = torch.zeros(self.n_rows, dtype=torch.float64, device=self.device)
        self._last = torch.zeros(shape, dtype=torch.float64, device=self.device)
        self._last_j = torch.full((self.n_rows,), -1, dtype=torch.long, device=self.device)
        self._start = torch.tensor(self.spec.starts(self.n_rows), dtype=torch.long, device=self.device)

    def update(self, states: dict[int, Any], j: Any) -> None:
        """Add the states of one forward. ``states[layer]``: ``(rows, seq, hidden)``; ``j``: ``(rows, seq)``
        generated indices, ``<= 0`` where a position emits nothing that counts (padding, finished rows)."""
        import torch

        rel = j - self._start[:, None]
        ok = (j > 0) & (rel > 0)
        if self.spec.until is not None:
            ok &= j <= self.spec.until
        if not bool(ok.any()):
            return
        take = ok & (rel % self.spec.stride == 0)
        w = take.to(torch.float64)
        jm = torch.where(ok, j, torch.full_like(j, -1))
        best = jm.argmax(dim=1)
        newer = jm.max(dim=1).values > self._last_j
        rows = torch.arange(j.shape[0], device=j.device)
        for li, layer in enumerate(self.layers):
            h = states[layer].to(torch.float64)
            self._sum[:, li] += torch.einsum("rt,rtd->rd", w, h)
            last = h[rows, best]
            self._last[:, li] = torch.where(newer[:, None], last, self._last[:, li])
        self._count += w.sum(dim=1)
        self._last_j = torch.where(newer, jm.max(dim=1).values, self._last_j)

    def latents(self) -> np.ndarray:
        """``(rows, layers, hidden)`` float64: the strided mean, or the last state where none was strided
        (NaN for a row that emitted nothing in its window)."""
        import torch

        mean = self._sum / self._count.clamp(min=1.0)[:, None, None]
        z = torch.where((self._count > 0)[:, None, None], mean, self._last)
        z = torch.where((self._last_j > 0)[:, None, None], z, torch.full_like(z, float("nan")))
        return np.asarray(z.cpu().numpy())

    def counts(self) -> list[int]:
        """How many strided tokens each row's latent averages (0: its last state stands in)."""
        return [int(c) for c in self._count.cpu().tolist()]


def total_variance(z: np.ndarray) -> np.ndarray:
    """Trace of the sample covariance (ddof 1) of ``z`` over its first axis, per remaining leading axis.

    ``z``: ``(n, layers, hidden)`` → ``(layers,)``. Identical rows give exactly 0."""
    n = z.shape[0]
    if n < 2:
        raise ValueError("the variance of latents needs at least two of them")
    # trace cov = Σ_{a<b} ‖z_a − z_b‖² / (n(n−1)): differences first, so identical rows give exactly 0
    acc = np.zeros(z.shape[1:-1])
    for a in range(n - 1):
        acc += ((z[a + 1 :] - z[a]) ** 2).sum(axis=(0, -1))
    return np.asarray(acc / (n * (n - 1)))


def relative_variance(z: np.ndarray) -> np.ndarray:
    """:func:`total_variance` over the mean squared norm of the latents (scale-free across layers)."""
    norm2 = (z**2).sum(axis=-1).mean(axis=0)
    return np.asarray(total_variance(z) / np.where(norm2 > 0, norm2, 1.0))


def _boot_variances(z: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """tr Cov of ``n_boot`` resamples (with replacement) of the rows of ``z`` (``(n, layers, hidden)``), per
    layer: ``(n·Σ w_i‖z_i‖² − ‖Σ w_i z_i‖²) / (n(n−1))`` with resample counts ``w``."""
    n = z.shape[0]
    w = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)  # (B, n)
    sq = (z**2).sum(axis=-1)  # (n, layers)
    s1 = w @ sq  # (B, layers)
    s2 = (np.einsum("bn,nld->bld", w, z) ** 2).sum(axis=-1)
    return np.asarray((n * s1 - s2) / (n * (n - 1)))


def bootstrap_variance_ratio(
    a: np.ndarray, b: np.ndarray, *, seed: int = 0, n_boot: int = 2000, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of tr Cov(a) / tr Cov(b) per layer, resampling the rows of each set
    independently: ``(low, high)``, each ``(layers,)``."""
    rng = np.random.default_rng(seed)
    va, vb = _boot_variances(a, rng, n_boot), _boot_variances(b, rng, n_boot)
    ratio = va / np.where(vb > 0, vb, np.nan)
    q = (1.0 - level) / 2.0
    return np.nanquantile(ratio, q, axis=0), np.nanquantile(ratio, 1.0 - q, axis=0)


def mean_pairwise_distance(z: np.ndarray) -> np.ndarray:
    """Mean Euclidean distance over distinct pairs, per layer: ``(n, layers, hidden)`` → ``(layers,)``."""
    n = z.shape[0]
    if n < 2:
        raise ValueError("pairwise distances need at least two latents")
    d = [np.linalg.norm(z[a] - z[b], axis=-1) for a in range(n) for b in range(a + 1, n)]
    return np.asarray(np.mean(d, axis=0))


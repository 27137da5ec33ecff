"""KV-cache reuse for :mod:`genesis_ps.providers.local.model`.

:class:`PrefixKVCache` remembers the key/value tensors of recently returned sequences (prompt ids +
sampled tokens), bounded in bytes and entries, least recently used first out. For a new prefix it finds
the stored sequence sharing the longest common prefix and hands back its tensors cropped to that length
(views: nothing is copied until the tensors go into a working cache). Resampling a suffix from a cut of a
returned sequence therefore re-encodes neither the prompt nor the kept prefix.

:class:`BufferLayer` is a transformers cache layer over a preallocated buffer: appending a token writes
in place instead of ``torch.cat``-ing the whole cache every step (which costs O(length) per step and
batch row). :func:`working_cache` builds a left-padded batch cache of those layers from per-row tensors.

Everything here imports torch lazily (inside functions), like the rest of the package.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["KV", "PrefixKVCache", "kv_nbytes", "row_kv", "select_rows", "working_cache"]

KV = list[tuple[Any, Any]]
"""Per layer ``(keys, values)``, each a tensor of shape ``(1, heads, length, head_dim)``."""


def kv_nbytes(kv: KV) -> int:
    return sum(int(k.numel() * k.element_size() + v.numel() * v.element_size()) for k, v in kv)


@dataclass
class _Entry:
    ids: np.ndarray
    kv: KV
    nbytes: int


class PrefixKVCache:
    """LRU of ``token ids -> KV tensors`` with longest-common-prefix lookup.

    ``max_bytes`` bounds the memory held (an entry larger than that is not stored); ``max_entries`` bounds
    the scan. Storing a sequence drops stored entries that are prefixes of it (it covers them).
    Thread-safe. ``hits`` / ``reused_tokens`` / ``lookups`` count what reuse actually happened.
    """

    def __init__(self, *, max_bytes: int = 512 * 2**20, max_entries: int = 128) -> None:
        self.max_bytes = int(max_bytes)
        self.max_entries = int(max_entries)
        self._entries: OrderedDict[tuple[int, ...], _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.lookups = 0
        self.hits = 0
        self.reused_tokens = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def longest_prefix(self, ids: Sequence[int], limit: int | None = None) -> tuple[KV | None, int]:
        """The stored KV covering the longest prefix of ``ids`` (at most ``limit`` tokens), cropped to it.

        Returns ``(None, 0)`` when nothing shares a prefix. The tensors are views of the stored ones:
        callers must copy before writing.
        """
        a = np.asarray(ids, dtype=np.int64)
        cap = len(a) if limit is None else min(limit, len(a))
        best_key: tuple[int, ...] | None = None
        best = 0
        with self._lock:
            self.lookups += 1
            for key, e in self._entries.items():
                n = min(len(e.ids), cap)
                if n <= best:
                    continue
                neq = np.flatnonzero(e.ids[:n] != a[:n])
                lcp = int(neq[0]) if neq.size else n
                if lcp > best:
                    best, best_key = lcp, key
            if best_key is None or best == 0:
                return None, 0
            entry = self._entries[best_key]
            self._entries.move_to_end(best_key)
            self.hits += 1
            self.reused_tokens += best
        kv = [(k[:, :, :best], v[:, :, :best]) for k, v in entry.kv]
        return kv, best

    def put(self, ids: Sequence[int], kv: KV) -> None:
        """Remember ``kv`` (covering exactly ``ids``); evict least recently used entries over the bounds."""
        key = tuple(int(t) for t in ids)
        if not key:
            return
        size = kv_nbytes(kv)
        if size > self.max_bytes:
            return
        a = np.asarray(key, dtype=np.int64)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            for k2 in [k2 for k2, e in self._entries.items() if len(e.ids) < len(a) and _is_prefix(e.ids, a)]:
                self._bytes -= self._entries.pop(k2).nbytes
            self._entries[key] = _Entry(a, kv, size)
            self._bytes += size
            while self._entries and (self._bytes > self.max_bytes or len(self._entries) > self.max_entries):
                _, e = self._entries.popitem(last=False)
                self._bytes -= e.nbytes


def _is_prefix(short: np.ndarray, long: np.ndarray) -> bool:
    return bool(np.array_equal(short, long[: len(short)]))


def _buffer_layer_class() -> type:
    """Defined lazily so that importing this module does not import transformers."""
    global _BUFFER_LAYER
    if _BUFFER_LAYER is not None:
        return _BUFFER_LAYER
    import torch
    from transformers.cache_utils import DynamicLayer

    class BufferLayer(DynamicLayer):  # type: ignore[misc, valid-type, no-untyped-call, unused-ignore]
        """A full-attention cache layer whose tensors are views of a preallocated, growable buffer."""

        def __init__(self, keys: torch.Tensor, values: torch.Tensor, capacity: int) -> None:
            super().__init__()  # type: ignore[no-untyped-call, unused-ignore]
            b, h, n, d = keys.shape
            cap = max(capacity, n, 1)
            self._k = keys.new_zeros((b, h, cap, d))
            self._v = values.new_zeros((b, values.shape[1], cap, values.shape[-1]))
            self._k[:, :, :n].copy_(keys)
            self._v[:, :, :n].copy_(values)
            self._n = n
            self.dtype, self.device = keys.dtype, keys.device
            self.is_initialized = True
            self._views()

        def _views(self) -> None:
            self.keys = self._k[:, :, : self._n]
            self.values = self._v[:, :, : self._n]

        def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
            return None

        def update(
            self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
        ) -> tuple[torch.Tensor, torch.Tensor]:
            m = key_states.shape[-2]
            need = self._n + m
            if need > self._k.shape[2]:
                cap = max(need, 2 * self._k.shape[2])
                k2 = self._k.new_zeros((*self._k.shape[:2], cap, self._k.shape[3]))
                v2 = self._v.new_zeros((*self._v.shape[:2], cap, self._v.shape[3]))
                k2[:, :, : self._n].copy_(self._k[:, :, : self._n])
                v2[:, :, : self._n].copy_(self._v[:, :, : self._n])
                self._k, self._v = k2, v2
            self._k[:, :, self._n : need].copy_(key_states)
            self._v[:, :, self._n : need].copy_(value_states)
            self._n = need
            self._views()
            return self._k[:, :, : self._n], self._v[:, :, : self._n]

        def get_seq_length(self) -> int:
            return self._n

        def crop(self, tokens_to_remove: int) -> None:
            if tokens_to_remove < 0:
                self._n = max(0, self._n + tokens_to_remove)
                self._views()

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            self._k = self._k.index_select(0, indices)
            self._v = self._v.index_select(0, indices)
            self._views()

        def drop_left(self, n: int) -> None:
            """Remove ``n`` leading (padding) positions from every row."""
            if n > 0:
                self._k = self._k[:, :, n:]
                self._v = self._v[:, :, n:]
                self._n -= n
                self._views()

    _BUFFER_LAYER = BufferLayer
    return BufferLayer


_BUFFER_LAYER: type | None = None


def working_cache(rows: Sequence[KV | None], pads: Sequence[int], n_layers: int, capacity: int, like: Any) -> Any:
    """A batch cache: row ``i`` holds ``rows[i]`` (or nothing) after ``pads[i]`` zero positions on the left.

    All rows then have length ``pads[i] + len(rows[i])``, which must be equal. ``capacity`` preallocates
    room for that many positions in all; ``like`` is a ``(heads, head_dim, dtype, device)`` tuple used
    for shapes when no row holds tensors.
    """
    import torch
    from transformers.cache_utils import DynamicCache

    layer_cls = _buffer_layer_class()
    heads, head_dim, dtype, device = like
    b = len(rows)
    lengths = {pads[i] + (kv[0][0].shape[2] if kv else 0) for i, kv in enumerate(rows)}
    if len(lengths) != 1:
        raise ValueError("working_cache rows must have equal padded lengths")
    total = lengths.pop()
    layers = []
    for li in range(n_layers):
        k = torch.zeros((b, heads, total, head_dim), dtype=dtype, device=device)
        v = torch.zeros((b, heads, total, head_dim), dtype=dtype, device=device)
        for i, kv in enumerate(rows):
            if kv:
                k[i, :, pads[i] :].copy_(kv[li][0][0])
                v[i, :, pads[i] :].copy_(kv[li][1][0])
        layers.append(layer_cls(k, v, capacity))
    cache = DynamicCache()
    cache.layers = layers
    return cache


def row_kv(cache: Any, row: int, pad: int, length: int, *, copy: bool) -> KV:
    """Row ``row``'s tensors (after its ``pad`` positions, ``length`` of them) as a batch-1 :data:`KV`."""
    out: KV = []
    for layer in cache.layers:
        k = layer.keys[row : row + 1, :, pad : pad + length]
        v = layer.values[row : row + 1, :, pad : pad + length]
        out.append((k.clone(), v.clone()) if copy else (k, v))
    return out


def select_rows(cache: Any, keep: Sequence[int], drop_left: int) -> None:
    """Keep only batch rows ``keep`` and remove ``drop_left`` shared leading padding positions, in place."""
    import torch

    idx = torch.tensor(list(keep), dtype=torch.long, device=cache.layers[0].keys.device)
    for layer in cache.layers:
        layer.batch_select_indices(idx)
        layer.drop_left(drop_left)

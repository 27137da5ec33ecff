"""Copy-on-write KV sharing between batch rows that start from the same stored prefix.

After SMC resamples, several particles are copies of one ancestor: their prefixes are the same token ids
and the :class:`~genesis_ps.providers.local.cache.PrefixKVCache` hands each of them the same stored
tensors. The plain working cache copies those tensors once per row. :class:`SharedKV` keeps them once
per *group* of rows (the shared, read-only part) and gives each row its own *tail* buffer, where
everything the row feeds from then on is written — copy on write: the shared part is never written.

Attention over the two parts is exact (the lean forward, :mod:`~genesis_ps.providers.local.fast`, calls
:meth:`SharedKV.attend`): the rows of a group attend to their group's prefix in one batched product, every
row attends causally to its own tail, and the two softmaxes are merged by their log-sum-exps,

    o = (e^{ℓ_p}·o_p + e^{ℓ_t}·o_t) / (e^{ℓ_p} + e^{ℓ_t}),

which is the softmax over the concatenated keys. Only the order of fp32 sums differs from one softmax.
A decode step (one query per row, fp32 on CPU) runs instead in one call of the C kernel ``cowattn.c``
(built with the block kernels, :mod:`~genesis_ps.providers.local.blockmm`), which takes the softmax over
prefix and tail at once: the ~20 small tensor ops of the batched path cost more than the products
themselves. Without the kernels the batched path serves every step. Imports torch lazily, like the rest of
the local wing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from genesis_ps.providers.local.blockmm import library
from genesis_ps.providers.local.cache import KV

__all__ = ["SharedKV", "group_rows"]


def group_rows(kvs: Sequence[KV | None]) -> tuple[list[int], list[KV | None]]:
    """Row -> group index, and one prefix per group: rows whose prefixes are views of the same stored
    tensors with the same length share a group (rows without a prefix share the empty group)."""
    keys: dict[tuple[int, int], int] = {}
    group_of: list[int] = []
    prefixes: list[KV | None] = []
    for kv in kvs:
        key = (int(kv[0][0].data_ptr()), int(kv[0][0].shape[2])) if kv else (0, 0)
        if key not in keys:
            keys[key] = len(prefixes)
            prefixes.append(kv)
        group_of.append(keys[key])
    return group_of, prefixes


class SharedKV:
    """Per layer: group prefixes ``(G, heads, P, d)`` (left-padded, masked) and row tails ``(b, heads, cap, d)``."""

    def __init__(self, group_of: Sequence[int], prefixes: Sequence[KV | None], n_layers: int, capacity: int,
                 like: Any) -> None:  # fmt: skip
        import torch

        heads, head_dim, dtype, device = like
        self.torch = torch
        g = len(prefixes)
        lens = [kv[0][0].shape[2] if kv else 0 for kv in prefixes]
        p = max([*lens, 1])
        self.prefix_k = [torch.zeros((g, heads, p, head_dim), dtype=dtype, device=device) for _ in range(n_layers)]
        self.prefix_v = [torch.zeros((g, heads, p, head_dim), dtype=dtype, device=device) for _ in range(n_layers)]
        for gi, kv in enumerate(prefixes):
            if kv:
                n = lens[gi]
                for li in range(n_layers):
                    self.prefix_k[li][gi, :, p - n :].copy_(kv[li][0][0])
                    self.prefix_v[li][gi, :, p - n :].copy_(kv[li][1][0])
        pos = torch.arange(p, device=device)
        self.prefix_valid = pos[None, :] >= (p - torch.tensor(lens, device=device))[:, None]  # (G, P)
        self.prefix_len = lens
        self.group_of = list(group_of)
        b = len(self.group_of)
        self.tail_k = [torch.zeros((b, heads, capacity, head_dim), dtype=dtype, device=device)
                       for _ in range(n_layers)]  # fmt: skip
        self.tail_v = [torch.zeros_like(t) for t in self.tail_k]
        self.n = 0
        self.kernel = library() if dtype == torch.float32 and torch.device(device).type == "cpu" else None
        """The C kernels when decode steps use ``cow_attend`` (None: the batched torch path)."""
        self._pack()

    def _pack(self) -> None:
        """Index tensors placing each row in its group's slot (groups padded to the largest)."""
        torch = self.torch
        members: dict[int, list[int]] = {}
        for row, gi in enumerate(self.group_of):
            members.setdefault(gi, []).append(row)
        self.groups = sorted(members)
        m = max(len(v) for v in members.values())
        slots = torch.zeros((len(self.groups), m), dtype=torch.long)
        inv = torch.zeros(len(self.group_of), dtype=torch.long)
        for gi_pos, gi in enumerate(self.groups):
            for j, row in enumerate(members[gi]):
                slots[gi_pos, j] = row
                inv[row] = gi_pos * m + j
        dev = self.prefix_k[0].device
        self.slots, self.inv, self.m = slots.to(dev), inv.to(dev), m
        self.gsel = torch.tensor(self.groups, dtype=torch.long, device=dev)
        self.all_groups = self.groups == list(range(len(self.prefix_len)))
        self.group_t = torch.tensor(self.group_of, dtype=torch.int64)
        self.plen_t = torch.tensor(self.prefix_len, dtype=torch.int64)

    @property
    def nbytes(self) -> int:
        return sum(int(t.numel() * t.element_size()) for t in (*self.prefix_k, *self.prefix_v, *self.tail_k,
                                                                *self.tail_v))  # fmt: skip

    def get_seq_length(self) -> int:
        return self.n

    def attend(self, li: int, q: Any, k: Any, v: Any, scale: float, threads: int = 1) -> Any:
        """Append ``k``/``v`` (``(b, kv_heads, s, d)``) to the tails of layer ``li`` and return the
        attention output ``(b, heads, s, d)`` of queries ``q`` over prefix + tail (causal in the tail);
        ``threads``: the C kernel's, for a decode step."""
        torch = self.torch
        b, h, s, d = q.shape
        kvh = k.shape[1]
        rep = h // kvh
        start, lt = self.n, self.n + s
        if lt > self.tail_k[li].shape[2]:
            self._grow(lt)
        self.tail_k[li][:, :, start:lt].copy_(k)
        self.tail_v[li][:, :, start:lt].copy_(v)
        if li == len(self.tail_k) - 1:
            self.n = lt
        if s == 1 and self.kernel is not None:
            out = self._attend_kernel(li, q, lt, scale, threads)
            if out is not None:
                return out
        qr = q.reshape(b, kvh, rep, s, d)
        # prefix part: each group's rows in one product against the group's prefix
        g, m = self.slots.shape
        qg = qr[self.slots.view(-1)].view(g, m, kvh, rep, s, d).permute(0, 2, 1, 3, 4, 5)
        qg = qg.reshape(g, kvh, m * rep * s, d)
        if self.all_groups:
            kp, vp, valid = self.prefix_k[li], self.prefix_v[li], self.prefix_valid
        else:
            kp, vp, valid = self.prefix_k[li][self.gsel], self.prefix_v[li][self.gsel], self.prefix_valid[self.gsel]
        sp = torch.matmul(qg, kp.transpose(-1, -2)) * scale
        sp = sp.masked_fill(~valid[:, None, None, :], -math.inf)
        lse_p = torch.logsumexp(sp, dim=-1, keepdim=True)
        op = torch.matmul(torch.exp(sp - lse_p.clamp(min=-1e30)), vp)
        op = op.view(g, kvh, m, rep, s, d).permute(0, 2, 1, 3, 4, 5).reshape(g * m, kvh, rep, s, d)[self.inv]
        lse_p = lse_p.view(g, kvh, m, rep, s, 1).permute(0, 2, 1, 3, 4, 5).reshape(g * m, kvh, rep, s, 1)[self.inv]
        # tail part: causal over the row's own tokens
        kt, vt = self.tail_k[li][:, :, :lt], self.tail_v[li][:, :, :lt]
        st = torch.matmul(qr.reshape(b, kvh, rep * s, d), kt.transpose(-1, -2)).view(b, kvh, rep, s, lt) * scale
        if s > 1:
            causal = torch.ones((s, lt), dtype=torch.bool, device=q.device).tril(diagonal=lt - s)
            st = st.masked_fill(~causal, -math.inf)
        lse_t = torch.logsumexp(st, dim=-1, keepdim=True)
        ot = torch.matmul(torch.exp(st - lse_t).view(b, kvh, rep * s, lt), vt).view(b, kvh, rep, s, d)
        lse = torch.logaddexp(lse_p, lse_t)
        o = op * torch.exp(lse_p - lse) + ot * torch.exp(lse_t - lse)
        return o.view(b, h, s, d)

    def _attend_kernel(self, li: int, q: Any, lt: int, scale: float, threads: int) -> Any:
        """One decode step of layer ``li`` by ``cow_attend`` (see ``cowattn.c``); None when the kernel
        refuses (its scratch memory could not be allocated): the batched path then computes the step."""
        b, h, _, d = q.shape
        q = q.contiguous()
        out = self.torch.empty_like(q)
        assert self.kernel is not None
        pk, pv, tk, tv = self.prefix_k[li], self.prefix_v[li], self.tail_k[li], self.tail_v[li]
        rc = self.kernel.cow_attend(
            q.data_ptr(), b, h, tk.shape[1], d, pk.data_ptr(), pv.data_ptr(), pk.shape[0], pk.shape[2],
            self.plen_t.data_ptr(), self.group_t.data_ptr(), tk.data_ptr(), tv.data_ptr(), tk.shape[2], lt, scale,
            out.data_ptr(), threads,
        )
        return out if rc == 0 else None

    def _grow(self, need: int) -> None:
        for li in range(len(self.tail_k)):
            for buf in (self.tail_k, self.tail_v):
                old = buf[li]
                new = old.new_zeros((*old.shape[:2], max(need, 2 * old.shape[2]), old.shape[3]))
                new[:, :, : old.shape[2]].copy_(old)
                buf[li] = new

    def select_rows(self, keep: Sequence[int]) -> None:
        """Keep only batch rows ``keep`` (their tails and group membership)."""
        torch = self.torch
        idx = torch.tensor(list(keep), dtype=torch.long, device=self.tail_k[0].device)
        self.tail_k = [t.index_select(0, idx) for t in self.tail_k]
        self.tail_v = [t.index_select(0, idx) for t in self.tail_v]
        self.group_of = [self.group_of[i] for i in keep]
        self._pack()

    def row_kv(self, row: int, length: int) -> KV:
        """Row ``row``'s first ``length`` positions (prefix, then tail) as a batch-1 copy."""
        torch = self.torch
        gi = self.group_of[row]
        n = self.prefix_len[gi]
        p = self.prefix_k[0].shape[2]
        tail = length - n
        out: KV = []
        for li in range(len(self.tail_k)):
            k = torch.cat([self.prefix_k[li][gi : gi + 1, :, p - n :], self.tail_k[li][row : row + 1, :, :tail]], 2)
            v = torch.cat([self.prefix_v[li][gi : gi + 1, :, p - n :], self.tail_v[li][row : row + 1, :, :tail]], 2)
            out.append((k, v))
        return out

"""The decode loop behind :class:`genesis_ps.providers.local.LocalModel` (torch; imported lazily).

One :meth:`Engine.run` call samples a continuation for each of several token sequences (prompt ids +
prefix) in lockstep: one batched forward per step, rows left-padded with an attention mask and their own
position ids. Before decoding, each row's KV comes from the :class:`PrefixKVCache` (longest stored
common prefix) and only the missing tokens are prefilled; after, every row's KV is stored again.

Per step, from the *same* logits: ``logp = log_softmax(logits)`` (base model, temperature 1) and
``logq = log_softmax(truncate(logits / T))`` — the distribution actually sampled from, where the optional
top-k / top-p truncation is the user's explicit choice (without it, nothing is truncated). Both in fp32.
The base distribution's entropy at every step comes from the same ``logp``. A row with ``stop_entropy``
stops *before* sampling at a step whose entropy reaches it, and keeps that step's ``top_n`` likeliest
tokens (``next_top``): a decision point, for token-level power sampling.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from genesis_ps.errors import ProviderError
from genesis_ps.providers.local.cache import KV, PrefixKVCache, row_kv, select_rows, working_cache
from genesis_ps.providers.local.compat import cache_keyword
from genesis_ps.providers.local.cow import SharedKV, group_rows
from genesis_ps.providers.local.fast import fast_forward_for

__all__ = ["Engine", "Row", "dists", "sample"]


@dataclass
class Row:
    """One sequence being extended."""

    seq: list[int]
    max_new: int
    tokens: list[int] = field(default_factory=list)
    logp: list[float] = field(default_factory=list)
    logq: list[float] = field(default_factory=list)
    eos: bool = False
    entropy: list[float] = field(default_factory=list)
    stop_entropy: float | None = None
    top_n: int = 0
    next_top: list[tuple[int, float]] = field(default_factory=list)
    next_entropy: float | None = None
    exclude: int | None = None
    """A token id the row's first sampled token must not be (drawn without it; log q reported unrestricted)."""


def dists(logits: Any, temperature: float, top_k: int | None, top_p: float | None) -> tuple[Any, Any]:
    """``(logp, logq)`` over the vocabulary for fp32 ``logits`` of shape ``(batch, vocab)``."""
    import torch

    logp = torch.log_softmax(logits, dim=-1)
    if temperature == 1.0 and top_k is None and top_p is None:
        return logp, logp
    # Subtract the maximum first: (logits - max) <= 0, so dividing by a tiny temperature gives -inf, never
    # +inf, and the softmax stays defined (logits / 1e-38 overflowed fp32 and the sampler returned vocab_size).
    z = (logits - logits.amax(dim=-1, keepdim=True)) / temperature if temperature != 1.0 else logits
    if top_k is not None and top_k < z.shape[-1]:
        kth = torch.topk(z, top_k, dim=-1).values[..., -1:]
        z = z.masked_fill(z < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sz, si = torch.sort(z, dim=-1, descending=True)
        sp = torch.softmax(sz, dim=-1)
        before = torch.cumsum(sp, dim=-1) - sp
        drop = before >= top_p
        drop[..., 0] = False
        z = z.masked_fill(torch.zeros_like(drop).scatter(-1, si, drop), float("-inf"))
    return logp, torch.log_softmax(z, dim=-1)


def sample(logq: Any, gen: Any) -> Any:
    """One token per row from ``exp(logq)`` (shape ``(batch, vocab)``), by inverting the CDF in float64.

    Same distribution as ``torch.multinomial(logq.exp(), 1)``, without its cost on CPU: at low
    temperature most of ``exp(logq)`` underflows to fp32 denormals, which made exp + multinomial ~20 ms
    for 8 rows of a 49k vocabulary; in float64 nothing underflows and this takes ~1.5 ms. Tokens of zero
    probability (truncated by top-k / top-p) are never drawn.
    """
    import torch

    cdf = logq.double().exp_().cumsum_(dim=-1)
    total = cdf[:, -1:]
    if not bool(torch.isfinite(total).all() and (total > 0).all()):
        raise ProviderError("local: the proposal holds NaN or no probability mass (non-finite logits?); "
                            "no token can be sampled", provider="local", retryable=False)  # fmt: skip
    # u < cdf[-1], so the first index with cdf > u exists and carries positive mass (cdf rose there)
    u = torch.rand((logq.shape[0], 1), generator=gen, dtype=torch.float64, device=logq.device) * total
    return torch.searchsorted(cdf, u, right=True)


def _without_first(lq: Any, rows: list[Row], active: list[int]) -> Any:
    """``lq`` with each row's excluded first token (if it is still at its first token) masked out; ``sample``
    renormalises, so the draw is the proposal without that token."""
    hit = [(b, rows[i].exclude) for b, i in enumerate(active) if rows[i].exclude is not None and not rows[i].tokens]
    if not hit:
        return lq
    out = lq.clone()
    for b, e in hit:
        out[b, e] = float("-inf")
    return out


class Engine:
    """Runs forwards of a transformers causal LM with KV reuse. Not thread-safe: callers serialise."""

    def __init__(
        self,
        model: Any,
        *,
        eos_ids: Sequence[int],
        top_k: int | None = None,
        top_p: float | None = None,
        cache: PrefixKVCache | None = None,
        fast: bool = True,
        blocks: dict[str, Any] | None = None,
        share_kv: bool = True,
    ) -> None:
        import torch

        self.model = model
        self.eos_ids = {int(e) for e in eos_ids}
        self.top_k, self.top_p = top_k, top_p
        self.cache = cache
        cfg = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") else model.config
        self.n_layers = int(cfg.num_hidden_layers)
        heads = int(getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads)
        head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)
        p = next(model.parameters())
        self.device = p.device
        self.like = (heads, head_dim, p.dtype, p.device)
        params = inspect.signature(model.forward).parameters
        self._keep_kw = "logits_to_keep" if "logits_to_keep" in params else None
        self._cache_kw = cache_keyword(model)
        self.fast = None
        if fast:
            self.fast = fast_forward_for(
                model, lambda n: working_cache([None], [0], self.n_layers, n, self.like), blocks
            )
        self.tokens_forwarded = 0
        """Tokens run through the model (prefill + decode), for measuring reuse."""
        self.share_kv = share_kv
        """Rows starting from the same stored prefix share its KV, copy on write (lean forward only)."""
        self.kv_bytes_peak = 0
        """The most bytes of KV held at once: working batch caches plus the reuse cache (for measuring)."""
        self._working_bytes = 0
        self.shared_batches = 0
        """Batches that ran with a shared (copy-on-write) cache."""
        self._torch = torch

    # -- forwards -------------------------------------------------------------------------------
    def _forward(self, ids: Any, pos: Any, mask: Any, cache: Any) -> Any:
        if self.fast is not None:
            self.tokens_forwarded += int(ids.numel())
            return self.fast(ids, pos, mask, cache)
        kw: dict[str, Any] = {self._cache_kw: cache}
        if self._keep_kw:
            kw[self._keep_kw] = 1
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, **kw)
        self.tokens_forwarded += int(ids.numel())
        return out.logits[:, -1, :].float()

    def full_logits(self, ids: Sequence[int]) -> Any:
        """Fresh forward of ``ids`` with no cache: fp32 logits at every position, shape ``(len, vocab)``."""
        torch = self._torch
        with torch.inference_mode():
            t = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
            return self.model(input_ids=t, use_cache=False).logits[0].float()

    def _lookup(self, seq: list[int]) -> tuple[KV | None, int]:
        if self.cache is None or len(seq) < 2:
            return None, 0
        return self.cache.longest_prefix(seq, limit=len(seq) - 1)

    def warm(self, prompt_ids: list[int]) -> None:
        """Encode the prompt once and store its KV (no-op when a stored sequence already covers it)."""
        if self.cache is None or len(prompt_ids) < 2:
            return
        _, c = self.cache.longest_prefix(prompt_ids)
        if c >= len(prompt_ids):
            return
        torch = self._torch
        with torch.inference_mode(), self._kernel_threads():
            rows = [Row(seq=list(prompt_ids), max_new=0)]
            cache, pads, _, _ = self._prefill(rows, [self._lookup(prompt_ids)])
            self.cache.put(prompt_ids, row_kv(cache, 0, pads[0], len(prompt_ids), copy=False))

    def _prefill(
        self, rows: list[Row], found: list[tuple[KV | None, int]]
    ) -> tuple[Any, list[int], Any, Any]:
        """Build the batch cache for ``rows`` and run their missing tokens: (cache, pads, logits, mask)."""
        torch = self._torch
        capacity_extra = max(r.max_new for r in rows)
        missing = [len(r.seq) - c for r, (_, c) in zip(rows, found, strict=True)]
        m = max(missing)
        # A row with fewer missing tokens re-feeds a few cached ones so that every row feeds exactly m.
        kvs: list[KV | None] = []
        starts: list[int] = []
        for r, (kv, c), mi in zip(rows, found, missing, strict=True):
            c2 = len(r.seq) - m if mi < m else c
            c2 = max(c2, 0)
            if kv is not None and c2 < c:
                kv = [(k[:, :, :c2], v[:, :, :c2]) for k, v in kv] if c2 > 0 else None
            starts.append(c2)
            kvs.append(kv)
        # Rows shorter than m cannot feed m real tokens: split them off (rare; mixed prompts only).
        if any(len(r.seq) < m for r in rows):
            raise _NeedsSplit
        ids = torch.tensor([r.seq[s:] for r, s in zip(rows, starts, strict=True)], dtype=torch.long, device=self.device)
        pos = torch.tensor([list(range(s, s + m)) for s in starts], dtype=torch.long, device=self.device)
        if self.share_kv and self.fast is not None and len(rows) > 1:
            group_of, prefixes = group_rows(kvs)
            if len(prefixes) < len(rows):
                shared = SharedKV(group_of, prefixes, self.n_layers, m + capacity_extra, self.like)
                self.shared_batches += 1
                self._note_bytes(shared.nbytes)
                return shared, [0] * len(rows), self._forward(ids, pos, None, shared), None
        width = max(starts)
        pads = [width - s for s in starts]
        cache = working_cache(kvs, pads, self.n_layers, width + m + capacity_extra, self.like)
        self._note_bytes(sum(int(lay._k.numel() * lay._k.element_size() * 2) for lay in cache.layers))
        mask = None
        if any(pads):
            mask = torch.ones((len(rows), width + m), dtype=torch.long, device=self.device)
            for i, pd in enumerate(pads):
                mask[i, :pd] = 0
        logits = self._forward(ids, pos, mask, cache)
        return cache, pads, logits, mask

    def _note_bytes(self, working: int) -> None:
        self._working_bytes = working
        held = working + (self.cache.nbytes if self.cache is not None else 0)
        self.kv_bytes_peak = max(self.kv_bytes_peak, held)

    # -- the loop -------------------------------------------------------------------------------
    def run(self, rows: list[Row], temperature: float, seed: int | None) -> list[Row]:
        """Extend every row in place (``temperature`` 0 = greedy, log q = 0 for the chosen token)."""
        torch = self._torch
        todo = [r for r in rows if r.max_new > 0]
        if not todo:
            return rows
        gen = torch.Generator(device=self.device)
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(int(seed) % 2**64)
        with self._kernel_threads():
            self._run(todo, temperature, gen)
        return rows

    @contextlib.contextmanager
    def _kernel_threads(self) -> Iterator[None]:
        """With block kernels, torch runs on one thread and the kernel's own pool on torch's thread count:
        torch's OpenMP workers and the kernel's would otherwise compete for the same cores."""
        torch = self._torch
        if self.fast is None or not self.fast.blocks_used:
            yield
            return
        threads = torch.get_num_threads()
        self.fast.threads = threads
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)

    def _run(self, todo: list[Row], temperature: float, gen: Any) -> None:
        torch = self._torch
        with torch.inference_mode():
            # Rows too short to share one prefill shape (mixed lengths, cold cache) run one by one.
            found = [self._lookup(r.seq) for r in todo]
            try:
                cache, pads, logits, mask = self._prefill(todo, found)
            except _NeedsSplit:
                for r, f in zip(todo, found, strict=True):
                    cache, pads, logits, mask = self._prefill([r], [f])
                    self._decode([r], cache, pads, logits, mask, temperature, gen)
                return
            self._decode(todo, cache, pads, logits, mask, temperature, gen)

    def _decode(
        self, rows: list[Row], cache: Any, pads: list[int], logits: Any, mask: Any, temperature: float, gen: Any
    ) -> None:
        torch = self._torch
        active = list(range(len(rows)))
        pads = list(pads)
        while True:
            if temperature == 0:
                lp = torch.log_softmax(logits, dim=-1)
                tok = lp.argmax(dim=-1, keepdim=True)
                tok_lp = lp.gather(-1, tok)
                tok_lq = torch.zeros_like(tok_lp)
            else:
                lp, lq = dists(logits, temperature, self.top_k, self.top_p)
                tok = sample(_without_first(lq, rows, active), gen)
                tok_lp, tok_lq = lp.gather(-1, tok), lq.gather(-1, tok)
            ents = (lp.exp() * lp).sum(dim=-1).neg_().clamp_(min=0.0).tolist()
            toks = tok.view(-1).tolist()
            lps, lqs = tok_lp.view(-1).tolist(), tok_lq.view(-1).tolist()
            keep: list[int] = []
            for b, i in enumerate(active):
                r = rows[i]
                if r.stop_entropy is not None and ents[b] >= r.stop_entropy:
                    vals, idx = lp[b].topk(min(max(r.top_n, 1), lp.shape[-1]))
                    r.next_top = list(zip(idx.tolist(), vals.tolist(), strict=True))
                    r.next_entropy = ents[b]
                    self._store(cache, b, pads[b], r, copy=len(active) > 1, fed=True)
                    continue
                r.tokens.append(toks[b])
                r.logp.append(lps[b])
                r.logq.append(lqs[b])
                r.entropy.append(ents[b])
                if toks[b] in self.eos_ids:
                    r.eos = True
                if r.eos or len(r.tokens) >= r.max_new:
                    self._store(cache, b, pads[b], r, copy=len(active) > 1)
                else:
                    keep.append(b)
            if not keep:
                return
            if len(keep) < len(active) and isinstance(cache, SharedKV):
                cache.select_rows(keep)
                active = [active[b] for b in keep]
                pads = [0] * len(keep)
                tok = tok[keep]
            elif len(keep) < len(active):
                new_pads = [pads[b] for b in keep]
                drop = min(new_pads)
                select_rows(cache, keep, drop)
                if mask is not None:
                    mask = mask[keep][:, drop:]
                    if not any(p - drop for p in new_pads):
                        mask = None
                active = [active[b] for b in keep]
                pads = [p - drop for p in new_pads]
                tok = tok[keep]
            pos = torch.tensor(
                [[len(rows[i].seq) + len(rows[i].tokens) - 1] for i in active], dtype=torch.long, device=self.device
            )
            if mask is not None:
                mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            logits = self._forward(tok, pos, mask, cache)

    def _store(self, cache: Any, b: int, pad: int, r: Row, *, copy: bool, fed: bool = False) -> None:
        """Keep row ``b``'s KV for reuse: it covers the sequence up to the last token fed (``fed``: all of
        them; else all but the token sampled last)."""
        if self.cache is None:
            return
        ids = r.seq + (r.tokens if fed else r.tokens[:-1])
        kv = cache.row_kv(b, len(ids)) if isinstance(cache, SharedKV) else row_kv(cache, b, pad, len(ids), copy=copy)
        self.cache.put(ids, kv)
        self._note_bytes(self._working_bytes)


class _NeedsSplit(Exception):
    pass

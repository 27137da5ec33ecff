"""A lean forward pass for Llama-architecture models (SmolLM2 and kin), used by the local decode loop.

Same mathematics as transformers' ``LlamaForCausalLM`` forward — RMSNorm, rotary embeddings (the model's
own rotary module, so RoPE scaling is honoured), grouped-query SDPA attention, SiLU-gated MLP — with far
fewer operations per layer: q/k/v and gate/up projections fused into one matrix each (small models
only; they are copies), ``F.rms_norm``, no per-call mask or output bookkeeping, KV written in place into
the preallocated cache, and the LM head applied to the last position only. A
:class:`~genesis_ps.providers.local.cow.SharedKV` cache (rows sharing a stored prefix, copy on write) is
attended through its own two-part attention. On a small model on CPU the
framework's per-operation overhead is a large share of each decode step; this removes most of it.

:func:`fast_forward_for` returns ``None`` when the model is not a plain Llama (biases, other activations,
tensor parallel, …), and checks itself against the model's own forward once before it is used: any
disagreement beyond float noise disables it. The log-probabilities therefore stay those of the model.
"""

from __future__ import annotations

from typing import Any

from genesis_ps.providers.local.blockmm import BlockMatrix
from genesis_ps.providers.local.cow import SharedKV

__all__ = ["FastLlama", "fast_forward_for"]

_FUSE_MAX_PARAMS = 1_000_000_000


class FastLlama:
    """Callable ``(ids, pos, mask2d, cache) -> last-position logits (fp32)`` over the model's weights."""

    def __init__(self, model: Any, blocks: dict[str, Any] | None = None, max_block_rows: int = 256) -> None:
        import torch

        self.torch = torch
        self.F = torch.nn.functional
        cfg = model.config
        self.base = model.model
        self.lm_head = model.lm_head
        self.n_heads = int(cfg.num_attention_heads)
        self.n_kv = int(cfg.num_key_value_heads or cfg.num_attention_heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)
        self.scale = self.head_dim**-0.5
        self.eps = float(cfg.rms_norm_eps)
        n_params = sum(p.numel() for p in model.parameters())
        fuse = n_params <= _FUSE_MAX_PARAMS
        self.layers = []
        self.max_block_rows = max_block_rows
        self.threads: int | None = None
        """Threads for the block kernel (its own pool; the engine runs torch on one thread meanwhile)."""
        self.blocks_used = 0
        """Weight matrices multiplied from their GGUF blocks (see :mod:`~genesis_ps.providers.local.blockmm`)."""
        blk = self._block_matrices(blocks or {})
        for li, layer in enumerate(self.base.layers):
            a, m = layer.self_attn, layer.mlp
            qkv: tuple[Any, ...]
            gu: tuple[Any, ...]
            if fuse:
                # Stored transposed, (in, out) contiguous: on CPU, x @ W is markedly faster than
                # F.linear(x, W) for the one-row products of decoding (measured 10.7 vs 18.1 ms for the
                # 30 gate/up matrices of SmolLM2 on this project's 2-core AVX2 machine).
                qkv = (torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight], 0).t().contiguous(),)
                gu = (torch.cat([m.gate_proj.weight, m.up_proj.weight], 0).t().contiguous(),)
                o_w, down_w = a.o_proj.weight.t().contiguous(), m.down_proj.weight.t().contiguous()
            else:
                qkv = (a.q_proj.weight.t(), a.k_proj.weight.t(), a.v_proj.weight.t())
                gu = (m.gate_proj.weight.t(), m.up_proj.weight.t())
                o_w, down_w = a.o_proj.weight.t(), m.down_proj.weight.t()
            norms = (layer.input_layernorm.weight, layer.post_attention_layernorm.weight)
            self.layers.append((norms[0], (qkv, blk[li][0]), ((o_w,), blk[li][1]), norms[1], (gu, blk[li][2]),
                                ((down_w,), blk[li][3])))
        self.lm_head_blk = (blocks or {}).get("lm_head")
        self.blocks_used += self.lm_head_blk is not None
        self.lm_head_t = model.lm_head.weight.t().contiguous() if fuse else model.lm_head.weight.t()
        self.norm_w = self.base.norm.weight
        self.q_dim, self.kv_dim = self.n_heads * self.head_dim, self.n_kv * self.head_dim
        self.inter = int(cfg.intermediate_size)

    def _block_matrices(self, blocks: dict[str, Any]) -> list[tuple[Any, Any, Any, Any]]:
        """Per layer: the (qkv, o, gate/up, down) block matrices, None where any part is missing."""
        out = []
        for li in range(len(self.base.layers)):
            a, m = f"model.layers.{li}.self_attn.", f"model.layers.{li}.mlp."

            def get(*names: str) -> Any:
                if any(n not in blocks for n in names):
                    return None
                mats: list[BlockMatrix] = [blocks[n] for n in names]
                self.blocks_used += len(mats)
                return mats[0] if len(mats) == 1 else BlockMatrix.stack(mats)

            out.append((get(a + "q_proj", a + "k_proj", a + "v_proj"), get(a + "o_proj"),
                        get(m + "gate_proj", m + "up_proj"), get(m + "down_proj")))
        return out

    def _lin(self, x: Any, wb: tuple[tuple[Any, ...], Any]) -> Any:
        """``x @ W`` for weights stored (in, out), from the GGUF blocks when there are few rows."""
        ws, blk = wb
        if blk is not None and x.numel() <= self.max_block_rows * x.shape[-1]:
            return blk(x, self.threads)
        if len(ws) == 1:
            return self.torch.matmul(x, ws[0])
        return self.torch.cat([self.torch.matmul(x, w) for w in ws], dim=-1)

    def __call__(self, ids: Any, pos: Any, mask2d: Any, cache: Any) -> Any:
        torch, F = self.torch, self.F
        b, s = ids.shape
        h = self.base.embed_tokens(ids)
        cos, sin = self.base.rotary_emb(h, pos)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        shared = isinstance(cache, SharedKV)
        past = cache.get_seq_length() if shared else cache.layers[0].get_seq_length()
        attn_mask = None
        causal = False
        if shared:
            pass
        elif mask2d is not None:
            keys = mask2d.bool()[:, None, None, :]  # (b, 1, 1, past + s)
            if s > 1:
                tri = torch.ones((s, past + s), dtype=torch.bool, device=ids.device).tril(diagonal=past)
                keys = keys & tri
            attn_mask = keys
        elif s > 1:
            if past == 0:
                causal = True
            else:
                attn_mask = torch.ones((s, past + s), dtype=torch.bool, device=ids.device).tril(diagonal=past)
        hd, half = self.head_dim, self.head_dim // 2
        for li, (w_in, qkv_w, o_w, w_post, gu_w, down_w) in enumerate(self.layers):
            x = F.rms_norm(h, (h.shape[-1],), w_in, self.eps)
            qkv = self._lin(x, qkv_w)
            q = qkv[..., : self.q_dim].view(b, s, self.n_heads, hd).transpose(1, 2)
            k = qkv[..., self.q_dim : self.q_dim + self.kv_dim].view(b, s, self.n_kv, hd).transpose(1, 2)
            v = qkv[..., self.q_dim + self.kv_dim :].view(b, s, self.n_kv, hd).transpose(1, 2)
            q = q * cos + torch.cat((-q[..., half:], q[..., :half]), dim=-1) * sin
            k = k * cos + torch.cat((-k[..., half:], k[..., :half]), dim=-1) * sin
            if shared:
                o = cache.attend(li, q, k, v, self.scale, self.threads or 1)
            else:
                k, v = cache.layers[li].update(k, v)
                o = F.scaled_dot_product_attention(
                    q, k, v, attn_mask=attn_mask, is_causal=causal, scale=self.scale,
                    enable_gqa=self.n_kv != self.n_heads,
                )
            h = h + self._lin(o.transpose(1, 2).reshape(b, s, self.q_dim), o_w)
            x = F.rms_norm(h, (h.shape[-1],), w_post, self.eps)
            gu = self._lin(x, gu_w)
            h = h + self._lin(F.silu(gu[..., : self.inter]) * gu[..., self.inter :], down_w)
        last = F.rms_norm(h[:, -1, :], (h.shape[-1],), self.norm_w, self.eps)
        return self._lin(last, ((self.lm_head_t,), self.lm_head_blk)).float()


def _plain_llama(model: Any) -> bool:
    cfg = model.config
    if getattr(cfg, "model_type", None) != "llama" or type(model).__name__ != "LlamaForCausalLM":
        return False
    if getattr(cfg, "attention_bias", False) or getattr(cfg, "mlp_bias", False):
        return False
    if getattr(cfg, "hidden_act", "silu") != "silu" or getattr(cfg, "pretraining_tp", 1) not in (1, None):
        return False
    return hasattr(model, "model") and hasattr(model.model, "rotary_emb") and hasattr(model, "lm_head")


def fast_forward_for(model: Any, make_cache: Any, blocks: dict[str, Any] | None = None) -> FastLlama | None:
    """A checked :class:`FastLlama` for ``model``, or None when it does not apply or disagrees.

    ``make_cache(n)`` must return an empty batch-1 working cache with room for ``n`` positions; ``blocks``
    are GGUF block matrices proven equal to the model's weights
    (:func:`~genesis_ps.providers.local.blockmm.match_gguf`).
    """
    import torch

    if not _plain_llama(model) or not hasattr(torch.nn.functional, "rms_norm"):
        return None
    try:
        fast = FastLlama(model, blocks)
        # A prefill on the fp32 weights, then one decode step on the blocks (when given).
        n, rows = 6, fast.max_block_rows
        vocab = int(model.config.vocab_size)  # ordinary tokens: special ones give atypically large activations
        ids = (torch.arange(1, n + 2, device=next(model.parameters()).device).view(1, -1) * 997 + vocab // 3) % vocab
        with torch.inference_mode():
            ref = model(input_ids=ids, use_cache=False).logits[0].float()
            cache = make_cache(n + 2)
            pos = torch.arange(n, device=ids.device).view(1, -1)
            fast.max_block_rows = 0
            a = fast(ids[:, :n], pos, None, cache)
            fast.max_block_rows = rows
            b = fast(ids[:, n : n + 1], pos[:, :1] + n, None, cache)
        ok = bool(torch.allclose(a[0], ref[n - 1], atol=1e-3) and torch.allclose(b[0], ref[n], atol=1e-3))
    except Exception:  # any mismatch of shapes or APIs: use the model's own forward
        ok = False
    if not ok and blocks:  # the blocks disagree: keep the lean forward, on the fp32 weights
        return fast_forward_for(model, make_cache, None)
    return fast if ok else None

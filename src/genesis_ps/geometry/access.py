"""Architecture-independent access to a transformers causal LM's residual stream, final norm and unembedding.

The residual stream has ``L + 1`` entries for a model of ``L`` decoder blocks: index 0 is the input of
block 0 (the embeddings, with whatever scaling the model applies, e.g. Gemma's √d), index ``l`` is the
output of block ``l`` (1-based), and index ``L`` is what enters the final norm. They are read with forward
hooks on the blocks themselves, not from ``output_hidden_states`` (whose last entry is already normed in
transformers 5), so the same code serves Llama, Qwen2, Mistral, Gemma (``model.layers`` / ``model.norm``),
GPT-2 (``transformer.h`` / ``transformer.ln_f``), OPT/Falcon-style names and more.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Residuals", "blocks", "cache_keyword", "capture", "eos_ids", "final_norm", "n_blocks", "text_config"]

_BLOCK_PATHS = ("layers", "h", "blocks", "decoder.layers", "encoder.layers", "transformer.h")
_NORM_NAMES = (
    "norm", "ln_f", "final_layernorm", "final_layer_norm", "norm_f", "final_norm", "decoder.final_layer_norm",
)


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _base(model: Any) -> Any:
    """The decoder under the LM head (``model.model``, ``model.transformer``, …)."""
    base = getattr(model, "base_model", None)
    if base is None or base is model:
        for name in ("model", "transformer", "gpt_neox", "decoder"):
            cand = getattr(model, name, None)
            if cand is not None:
                return cand
        return model
    return base


def text_config(model: Any) -> Any:
    """The text (decoder) config of ``model``."""
    cfg = model.config
    return cfg.get_text_config(decoder=True) if hasattr(cfg, "get_text_config") else cfg


def blocks(model: Any) -> Sequence[Any]:
    """The decoder blocks, in order."""
    import torch

    base = _base(model)
    for path in _BLOCK_PATHS:
        found = _get(base, path)
        if isinstance(found, torch.nn.ModuleList) and len(found):
            return list(found)
    raise TypeError(f"cannot find the decoder blocks of {type(model).__name__} (looked for {', '.join(_BLOCK_PATHS)})")


def n_blocks(model: Any) -> int:
    return len(blocks(model))


def final_norm(model: Any) -> Any:
    """The norm applied to the residual stream before the unembedding (``model.norm``, ``transformer.ln_f``…)."""
    base = _base(model)
    for name in _NORM_NAMES:
        found = _get(base, name)
        if found is not None and hasattr(found, "forward"):
            return found
    raise TypeError(f"cannot find the final norm of {type(model).__name__} (looked for {', '.join(_NORM_NAMES)})")


def cache_keyword(model: Any) -> str:
    """The keyword the model's forward takes its KV cache by (``cache`` in transformers 5, else the old one)."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """Every end-of-sequence id the model's generation config, config or tokenizer declares."""
    out: set[int] = set()
    for src in (getattr(model, "generation_config", None), model.config, tokenizer):
        eos = getattr(src, "eos_token_id", None) if src is not None else None
        if eos is None:
            continue
        out.update(int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos]))
    return out


@dataclass
class Residuals:
    """What :func:`capture` recorded on the last forward: ``states[i]`` is residual index ``layers[i]``, a
    tensor of shape ``(batch, seq, hidden)`` (or only the positions asked for)."""

    layers: tuple[int, ...]
    states: dict[int, Any]

    def stacked(self) -> Any:
        """``(batch, seq, len(layers), hidden)``."""
        import torch

        return torch.stack([self.states[layer] for layer in self.layers], dim=2)


@contextlib.contextmanager
def capture(model: Any, layers: Sequence[int], *, last_only: bool = False) -> Iterator[Residuals]:
    """Record residual-stream indices ``layers`` (0..L) on every forward run inside the block.

    ``last_only`` keeps only the last position of each forward (decode loops), bounding memory."""
    bl = blocks(model)
    want = tuple(sorted(set(int(x) for x in layers)))
    bad = [x for x in want if not 0 <= x <= len(bl)]
    if bad:
        raise ValueError(f"residual indices {bad} out of range 0..{len(bl)}")
    rec = Residuals(layers=want, states={})

    def keep(idx: int, h: Any) -> None:
        rec.states[idx] = (h[:, -1:, :] if last_only else h).detach()

    handles = []
    if 0 in want:

        def pre(_mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            keep(0, args[0] if args else kwargs["hidden_states"])

        handles.append(bl[0].register_forward_pre_hook(pre, with_kwargs=True))
    for i, block in enumerate(bl, start=1):
        if i in want:

            def post(_mod: Any, _args: Any, out: Any, i: int = i) -> None:
                keep(i, out[0] if isinstance(out, tuple) else out)

            handles.append(block.register_forward_hook(post))
    try:
        yield rec
    finally:
        for h in handles:
            h.remove()

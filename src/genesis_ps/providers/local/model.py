"""Local transformers backend: any causal LM as a :class:`~genesis_ps.sampling.TokenModel` with *exact*
log p and log q, KV-cache reuse across calls, and batched extension.

``LocalModel.from_pretrained(path)`` loads a model directory (or a GGUF file inside it, ``gguf_file=``);
``LocalModel(model, tokenizer)`` wraps one already loaded. torch and transformers are imported only here,
inside functions, so ``import genesis_ps`` stays light.

How a call runs (see :mod:`~genesis_ps.providers.local.engine`): the prompt is encoded once (chat template
for :class:`~genesis_ps.sampling.Prompt` messages, the raw text as is for ``Prompt.text``) and its KV is
computed once; each prefix then starts from the stored KV sharing its longest common prefix (an LRU of
recently returned sequences, bounded in bytes), prefills only the missing tokens, and all prefixes decode
together, one forward per step. Work runs in a worker thread, one call at a time per model.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections.abc import Sequence
from typing import Any

from genesis_ps.errors import ConfigError, ModelNotAvailableError, PromptTooLongError
from genesis_ps.providers.local.blockmm import match_gguf
from genesis_ps.providers.local.cache import PrefixKVCache
from genesis_ps.providers.local.engine import Engine, Row, dists
from genesis_ps.sampling.protocol import Capabilities, Completion, Prompt, Segment

__all__ = ["LocalModel", "resolve_device"]

_LOCAL_INSTALL = "pip install 'genesis_ps[local]'"


def resolve_device(device: str | None) -> str:
    """``None`` / ``"auto"``: CUDA when available, else CPU."""
    if device in (None, "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def _resolve_dtype(dtype: Any) -> Any:
    if dtype is None or dtype == "auto":
        return None
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if dtype not in names:
        raise ConfigError("dtype", f"unknown dtype {dtype!r}; choose one of {', '.join(names)} or 'auto'")
    return names[dtype]


def _import_torch_transformers() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModelNotAvailableError(f"the local backend needs torch and transformers: {_LOCAL_INSTALL} ({e})") from e
    return torch, transformers


class LocalModel:
    """A transformers causal LM behind the async :class:`~genesis_ps.sampling.TokenModel` protocol.

    ``top_k`` / ``top_p`` truncate the *proposal* (log q then is the truncated, renormalised distribution);
    they are off by default, so nothing is silently truncated. ``cache_bytes`` bounds the KV cache kept
    for reuse (0 disables reuse). ``num_threads`` sets torch's CPU threads for this model's work.
    ``fast`` uses the lean forward of :mod:`~genesis_ps.providers.local.fast` for plain Llama models
    (self-checked against the model's own forward; ``False`` always uses the model's forward).
    ``gguf_weights`` names the GGUF file the model was dequantised from: decode steps then multiply by its
    Q4_1/Q8_0 blocks directly (:mod:`~genesis_ps.providers.local.blockmm`; each matrix is used only when it
    dequantises to exactly the model's fp32 weight, so log-probabilities do not change).
    ``from_pretrained(..., gguf_file=...)`` sets it. ``kv_sharing`` lets batch rows that start from the same
    stored prefix (SMC particles after resampling) share its KV, copy on write
    (:mod:`~genesis_ps.providers.local.cow`; lean forward only).
    """

    provider = "local"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str | None = None,
        provider: str = "local",
        chat_template: bool = True,
        top_k: int | None = None,
        top_p: float | None = None,
        max_batch: int = 64,
        cache_bytes: int = 512 * 2**20,
        context_length: int | None = None,
        num_threads: int | None = None,
        fast: bool = True,
        gguf_weights: str | os.PathLike[str] | None = None,
        kv_sharing: bool = True,
    ) -> None:
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ConfigError("top_k", f"must be an integer >= 1 or None, got {top_k!r}")
        if top_p is not None and not (isinstance(top_p, (int, float)) and 0.0 < top_p <= 1.0):
            raise ConfigError("top_p", f"must be in (0, 1] or None, got {top_p!r}")
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ConfigError("max_batch", f"must be an integer >= 1, got {max_batch!r}")
        if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
            raise ConfigError("num_threads", f"must be an integer >= 1 or None, got {num_threads!r}")
        self.hf_model = model.eval()
        self.tokenizer = tokenizer
        self.provider = provider
        self.model = name or str(getattr(model.config, "name_or_path", "") or type(model).__name__)
        self.chat_template = bool(chat_template) and getattr(tokenizer, "chat_template", None) is not None
        self.num_threads = num_threads
        eos = _eos_ids(model, tokenizer)
        cfg = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") else model.config
        ctx = context_length or getattr(cfg, "max_position_embeddings", None)
        reuse = cache_bytes > 0 and not _has_sliding_layers(cfg)
        self.kv_cache = PrefixKVCache(max_bytes=cache_bytes) if reuse else None
        blocks: dict[str, Any] = {}
        self.block_weights_note: str | None = None
        """Why no GGUF block matrices are used (None when they are, or when none were offered)."""
        if gguf_weights is not None and fast:
            blocks, self.block_weights_note = match_gguf(model, gguf_weights)
        self._engine = Engine(
            model, eos_ids=eos, top_k=top_k, top_p=top_p, cache=self.kv_cache, fast=fast, blocks=blocks,
            share_kv=kv_sharing,
        )
        self.top_k, self.top_p = top_k, top_p
        notes = "log p / log q exact from one fp32 softmax of the logits"
        if top_k is not None or top_p is not None:
            notes += f"; proposal truncated (top_k={top_k}, top_p={top_p}), log q renormalised"
        if self.kv_cache is None:
            notes += "; KV reuse off"
        if self._engine.fast is not None:
            notes += "; lean Llama forward (checked against the model's own)"
            if self._engine.fast.blocks_used:
                notes += f"; decoding multiplies by the GGUF blocks of {self._engine.fast.blocks_used} weight matrices"
                notes += " (each proven equal to the fp32 weight)"
        self.capabilities = Capabilities(
            logprobs="exact",
            prefix_continuation=True,
            max_batch=max_batch,
            eos_token_id=eos[0] if eos else None,
            context_length=int(ctx) if ctx else None,
            notes=notes,
            entropy="exact",
            lookahead=True,
            exclude_first=True,
            call_tokens=8,  # measured on the embedded model: 32 tokens in chunks of 8 cost what one call does
        )
        self._prompts: dict[Prompt, tuple[int, ...]] = {}
        self._lock = threading.Lock()

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        *,
        gguf_file: str | None = None,
        device: str | None = None,
        dtype: Any = None,
        local_files_only: bool = False,
        **kw: Any,
    ) -> LocalModel:
        """Load tokenizer and model from ``path`` (``gguf_file`` names a GGUF file in it) onto ``device``
        (``auto``/None: CUDA if available, else CPU) in ``dtype`` (None: the checkpoint's)."""
        _, transformers = _import_torch_transformers()
        dev = resolve_device(device)
        td = _resolve_dtype(dtype)
        load: dict[str, Any] = {"local_files_only": local_files_only}
        if gguf_file is not None:
            load["gguf_file"] = gguf_file
        tok = transformers.AutoTokenizer.from_pretrained(str(path), **load)
        mkw = dict(load)
        if td is not None:
            mkw["dtype"] = td
        model = transformers.AutoModelForCausalLM.from_pretrained(str(path), **mkw)
        model.to(dev)
        if gguf_file is not None:
            kw.setdefault("gguf_weights", os.path.join(str(path), gguf_file))
        kw.setdefault("name", os.path.basename(os.path.normpath(str(path))) + (f"/{gguf_file}" if gguf_file else ""))
        return cls(model, tok, **kw)

    # -- prompts ---------------------------------------------------------------------------------
    def encode_prompt(self, prompt: Prompt) -> tuple[int, ...]:
        """Token ids of ``prompt`` (chat template with generation prompt for messages; raw text as is)."""
        ids = self._prompts.get(prompt)
        if ids is None:
            if prompt.raw is not None or not self.chat_template:
                text = prompt.raw if prompt.raw is not None else "\n\n".join(c for _, c in prompt.messages)
                ids = tuple(int(t) for t in self.tokenizer(text)["input_ids"])
            else:
                out = self.tokenizer.apply_chat_template(
                    prompt.as_messages(), add_generation_prompt=True, tokenize=True
                )
                if hasattr(out, "keys") and "input_ids" in out:
                    out = out["input_ids"]
                if out and isinstance(out[0], list):
                    out = out[0]
                ids = tuple(int(t) for t in out)
            if len(self._prompts) > 256:
                self._prompts.clear()
            self._prompts[prompt] = ids
        return ids

    def prompt_length(self, prompt: Prompt) -> int | None:
        return len(self.encode_prompt(prompt))

    def decode(self, tokens: Sequence[int]) -> str:
        """Text of ``tokens``; EOS and other special tokens are dropped."""
        return str(self.tokenizer.decode(list(tokens), skip_special_tokens=True))

    # -- sampling ------------------------------------------------------------------------------
    async def extend(
        self,
        prompt: Prompt,
        prefixes: Sequence[Sequence[int]],
        max_new_tokens: int | Sequence[int],
        temperature: float,
        *,
        seed: int | None = None,
        exclude_first: Sequence[int | None] | None = None,
    ) -> list[Segment]:
        """Sample one continuation per prefix at ``temperature`` (> 0); exact log p and log q per token. A
        row's first token is never its ``exclude_first`` entry (``Capabilities.exclude_first``)."""
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            math.isfinite(temperature) and temperature > 0
        ):
            raise ConfigError("temperature", f"must be a finite number > 0 for extend, got {temperature!r}")
        rows = self._rows(prompt, prefixes, max_new_tokens)
        if exclude_first is not None:
            if len(exclude_first) != len(rows):
                raise ConfigError("exclude_first",
                                  f"needs one entry per prefix ({len(rows)}), got {len(exclude_first)}")
            for r, e in zip(rows, exclude_first, strict=True):
                r.exclude = None if e is None else int(e)
        await asyncio.to_thread(self._run, self.encode_prompt(prompt), rows, float(temperature), seed)
        return [_segment(r) for r in rows]

    async def extend_until(
        self,
        prompt: Prompt,
        prefixes: Sequence[Sequence[int]],
        max_new_tokens: int | Sequence[int],
        temperature: float,
        *,
        stop_entropy: float,
        top_n: int,
        seed: int | None = None,
    ) -> list[Segment]:
        """:meth:`extend`, each row stopping before a step whose base entropy is ``>= stop_entropy`` and
        reporting that step's ``top_n`` likeliest tokens (:class:`~genesis_ps.sampling.protocol.LookaheadModel`)."""
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            math.isfinite(temperature) and temperature > 0
        ):
            raise ConfigError("temperature", f"must be a finite number > 0 for extend, got {temperature!r}")
        rows = self._rows(prompt, prefixes, max_new_tokens)
        for r in rows:
            r.stop_entropy, r.top_n = float(stop_entropy), int(top_n)
        await asyncio.to_thread(self._run, self.encode_prompt(prompt), rows, float(temperature), seed)
        return [_segment(r) for r in rows]

    async def generate(
        self, prompt: Prompt, *, max_new_tokens: int, temperature: float = 1.0, seed: int | None = None
    ) -> Completion:
        """Single-shot sample (``temperature`` 0 = greedy); ``logp`` holds each token's base log-prob."""
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            math.isfinite(temperature) and temperature >= 0
        ):
            raise ConfigError("temperature", f"must be a finite number >= 0, got {temperature!r}")
        rows = self._rows(prompt, [()], max_new_tokens)
        p_ids = self.encode_prompt(prompt)
        await asyncio.to_thread(self._run, p_ids, rows, float(temperature), seed)
        r = rows[0]
        return Completion(
            text=self.decode(r.tokens),
            tokens_generated=len(r.tokens),
            logp=tuple(r.logp),
            finish_reason="stop" if r.eos else "length",
            usage={"prompt_tokens": len(p_ids), "completion_tokens": len(r.tokens)},
        )

    def score(self, prompt: Prompt, tokens: Sequence[int], temperature: float | None = None) -> list[float]:
        """Log-probabilities of ``tokens`` after ``prompt`` from one fresh forward pass (no cache).

        ``temperature=None``: the base model's log p. A number: the proposal's log q at that temperature,
        with this model's top-k / top-p truncation — what ``extend`` reports for the same tokens."""
        import torch

        p_ids = list(self.encode_prompt(prompt))
        with self._lock:
            logits = self._engine.full_logits(p_ids + list(tokens))
        at = logits[len(p_ids) - 1 : len(p_ids) - 1 + len(tokens)]
        d = torch.log_softmax(at, dim=-1) if temperature is None else dists(at, temperature, self.top_k, self.top_p)[1]
        idx = torch.tensor(list(tokens), dtype=torch.long, device=at.device).view(-1, 1)
        return [float(x) for x in d.gather(-1, idx).view(-1).tolist()]

    # -- internals -------------------------------------------------------------------------------
    def _rows(self, prompt: Prompt, prefixes: Sequence[Sequence[int]], max_new: int | Sequence[int]) -> list[Any]:
        if not isinstance(prompt, Prompt):
            raise ConfigError("prompt", f"must be a Prompt, got {type(prompt).__name__}")
        n = len(prefixes)
        if isinstance(max_new, int) and not isinstance(max_new, bool):
            limits = [max_new] * n
        else:
            limits = list(max_new)  # type: ignore[arg-type]
            if len(limits) != n:
                raise ConfigError("max_new_tokens", f"got {len(limits)} limits for {n} prefixes")
        if any(isinstance(m, bool) or not isinstance(m, int) or m < 0 for m in limits):
            raise ConfigError("max_new_tokens", f"must be integers >= 0, got {max_new!r}")
        p_ids = list(self.encode_prompt(prompt))
        vocab = int(self.hf_model.get_output_embeddings().weight.shape[0])
        ctx = self.capabilities.context_length
        rows = []
        for pre, m in zip(prefixes, limits, strict=True):
            pre_l = [int(t) for t in pre]
            if any(t < 0 or t >= vocab for t in pre_l):
                raise ConfigError("prefixes", f"token ids must be in [0, {vocab})")
            if ctx is not None and len(p_ids) + len(pre_l) + m > ctx:
                raise PromptTooLongError(
                    "prompt",
                    f"{len(p_ids)} prompt + {len(pre_l)} prefix + {m} new tokens exceed the context of {ctx}",
                )
            rows.append(Row(seq=p_ids + pre_l, max_new=m))
        return rows

    def _run(self, prompt_ids: tuple[int, ...], rows: list[Any], temperature: float, seed: int | None) -> None:
        if not prompt_ids and not any(r.seq for r in rows):
            raise ConfigError("prompt", "encodes to zero tokens: give the model some text to condition on")
        with self._lock:
            if self.num_threads is not None:
                import torch

                torch.set_num_threads(self.num_threads)
            self._engine.warm(list(prompt_ids))
            mb = self.capabilities.max_batch
            for i in range(0, len(rows), mb):
                self._engine.run(rows[i : i + mb], temperature, None if seed is None else seed + i)

    @property
    def tokens_forwarded(self) -> int:
        """Tokens run through the network so far (prefill + decode): how much KV reuse saved shows here."""
        return self._engine.tokens_forwarded


def _segment(r: Any) -> Segment:
    return Segment(
        tokens=tuple(r.tokens), logp=tuple(r.logp), logq=tuple(r.logq), eos=r.eos, entropy=tuple(r.entropy),
        next_top=tuple(r.next_top), next_entropy=r.next_entropy,
    )


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    gc = getattr(model, "generation_config", None)
    eos = getattr(gc, "eos_token_id", None) if gc is not None else None
    if eos is None:
        eos = getattr(model.config, "eos_token_id", None)
    if eos is None:
        eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        return []
    return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]


def _has_sliding_layers(cfg: Any) -> bool:
    """Sliding-window layers keep only a window of KV, so a cropped prefix cannot be reused."""
    types = getattr(cfg, "layer_types", None)
    if types and any("sliding" in str(t) for t in types):
        return True
    return bool(getattr(cfg, "sliding_window", None)) and bool(getattr(cfg, "use_sliding_window", True))

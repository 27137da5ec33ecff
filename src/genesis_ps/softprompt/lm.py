"""The frozen model a run optimises against: a transformers causal LM and its tokenizer.

:func:`open_lm` builds it from a provider name before anything is optimised; a hosted provider is refused
(soft prompts need gradients through the model's layers, which no API exposes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genesis_ps.errors import ConfigError
from genesis_ps.softprompt.config import HOSTED
from genesis_ps.softprompt.loss import freeze

__all__ = ["FrozenLM", "check_provider", "open_lm", "tiny_frozen"]


@dataclass
class FrozenLM:
    """A causal LM with frozen weights, its tokenizer, and where it runs."""

    model: Any
    tokenizer: Any
    name: str
    context: int | None

    def __post_init__(self) -> None:
        freeze(self.model)

    @property
    def embeddings(self) -> Any:
        """The input embedding matrix ``(vocab, d)`` (frozen)."""
        return self.model.get_input_embeddings().weight

    @property
    def device(self) -> Any:
        return self.embeddings.device

    @property
    def eos(self) -> int | None:
        eos = getattr(self.tokenizer, "eos_token_id", None)
        return int(eos) if eos is not None else None

    def encode(self, text: str, *, eos: bool = False) -> tuple[int, ...]:
        """Token ids of ``text`` without special tokens, plus EOS when asked (and the tokenizer has one)."""
        ids = [int(t) for t in self.tokenizer.encode(text, add_special_tokens=False)]
        if eos and self.eos is not None:
            ids.append(self.eos)
        return tuple(ids)

    def decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def token_vector(self, text: str) -> Any:
        """Embedding of the first token of ``text`` (a copy)."""
        ids = self.encode(text)
        if not ids:
            raise ConfigError("--mode", f"{text!r} encodes to no token")
        return self.embeddings[ids[0]].detach().clone()


def check_provider(provider: str, model: str | None) -> None:
    """Refuse, before any loading, what cannot give gradients or is not a model at all."""
    if provider in HOSTED:
        raise ConfigError(
            "--provider",
            f"{provider!r} is a hosted API: soft-prompt optimisation needs gradients through the model's layers, "
            "which only a local model gives; use --provider embedded, or --provider local --model PATH",
        )
    if provider not in ("embedded", "local"):
        raise ConfigError("--provider", f"unknown provider {provider!r}; choose embedded or local")
    if provider == "local" and not model:
        raise ConfigError("--model", "--provider local needs --model PATH (a transformers model directory)")


def open_lm(provider: str = "embedded", *, model: str | None = None, device: str | None = None) -> FrozenLM:
    """Load the model through the provider registry (CUDA when present unless ``device`` says otherwise)."""
    check_provider(provider, model)
    from genesis_ps.providers.registry import build_model

    kw: dict[str, Any] = {"device": device} if device else {}
    local: Any = build_model(provider, model=model, **kw)
    return FrozenLM(local.hf_model, local.tokenizer, name=str(local.model), context=local.capabilities.context_length)


def tiny_frozen(*, seed: int = 0, train_steps: int = 800) -> FrozenLM:
    """The in-memory tiny Llama of :mod:`~genesis_ps.softprompt.tiny` (``--dry-run``)."""
    from genesis_ps.softprompt.tiny import tiny_lm

    model, tok = tiny_lm(seed=seed, train_steps=train_steps)
    name = f"tiny-llama (hidden 64, 2 layers, trained {train_steps} steps)"
    return FrozenLM(model, tok, name=name, context=int(model.config.max_position_embeddings))

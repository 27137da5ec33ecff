"""Hosted providers: factories from environment keys, and helpers the HTTP adapters share.

``build(provider, model=, base_url=)`` is what :func:`genesis_ps.providers.registry.build_model` calls
for ``openai``, ``openai-compatible``, ``gemini`` and ``anthropic``. Each factory builds the official
SDK client with the SDK's own retries off (``max_retries=0``; :class:`~genesis_ps.providers.resilience.
Resilience` is the one retry layer) and a timeout from :class:`~genesis_ps.settings.Settings`.
SDKs are imported here only inside the factory that needs them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from genesis_ps.errors import CapabilityError, ConfigError, LogprobsUnsupportedError, ModelNotAvailableError
from genesis_ps.providers.keys import KEY_ENV, env_key
from genesis_ps.sampling.protocol import Prompt, Segment, TokenModel

__all__ = [
    "DEFAULT_MODELS",
    "Usage",
    "build",
    "check_temperature",
    "derive_seed",
    "per_prefix_limits",
    "without_sdk_retries",
]

log = logging.getLogger(__name__)

DEFAULT_MODELS: dict[str, str] = {
    "openai": "gpt-4.1-mini",
    "gemini": "gemini-2.5-flash",
    "anthropic": "claude-haiku-4-5",
}
"""Models used when none is named (``openai-compatible`` always needs ``--model``)."""

_EXTRAS = {"openai": "openai", "openai-compatible": "openai", "gemini": "gemini", "anthropic": "anthropic"}
_PACKAGE_EXTRA = {"transformers": "local"}


@dataclass
class Usage:
    """What an adapter spent, counted from the provider's answers (not estimated)."""

    requests: int = 0
    """Successful provider responses parsed."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    """Output tokens as the provider reported them (or as counted from log-probs when it reports none)."""


def per_prefix_limits(max_new_tokens: int | Sequence[int], n: int) -> list[int]:
    """One token limit per prefix; raise :class:`ConfigError` naming ``max_new_tokens`` when invalid."""
    limits = [max_new_tokens] * n if isinstance(max_new_tokens, int) else list(max_new_tokens)
    if len(limits) != n:
        raise ConfigError("max_new_tokens", f"got {len(limits)} limits for {n} prefixes")
    for m in limits:
        if isinstance(m, bool) or not isinstance(m, int) or m < 0:
            raise ConfigError("max_new_tokens", f"must be integers >= 0, got {m!r}")
    return [int(m) for m in limits]


def check_temperature(temperature: float, *, allow_zero: bool, upper: float | None = None) -> float:
    """Validate a sampling temperature before any request is made."""
    ok = isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and math.isfinite(temperature)
    low_ok = ok and (temperature >= 0 if allow_zero else temperature > 0)
    if not low_ok or (upper is not None and temperature > upper):
        bound = f" and <= {upper}" if upper is not None else ""
        raise ConfigError("temperature", f"must be {'>= 0' if allow_zero else '> 0'}{bound}, got {temperature!r}")
    return float(temperature)


def derive_seed(seed: int | None, index: int) -> int | None:
    """A distinct, reproducible seed for the ``index``-th of several concurrent requests."""
    return None if seed is None else (seed + 1_000_003 * index) % (2**31 - 1)


async def whole_sequence_extend(
    model: Any,
    prompt: Prompt,
    prefixes: Sequence[Sequence[int]],
    max_new_tokens: int | Sequence[int],
    temperature: float,
    seed: int | None,
    one: Callable[[Prompt, int, int | None], Awaitable[Segment]],
) -> list[Segment]:
    """``extend`` of the adapters that sample whole sequences at temperature 1 (chat, Gemini): one
    proposal per (empty) prefix, requested concurrently, each with its own seed derived from ``seed``.
    ``model`` supplies ``provider``, ``model``, ``temperature_mode`` and ``logprobs_refused``."""
    check_temperature(temperature, allow_zero=False)
    limits = per_prefix_limits(max_new_tokens, len(prefixes))
    name = f"{model.provider}/{model.model}"
    if any(len(p) for p in prefixes):
        raise CapabilityError(f"{name} cannot continue a token prefix (whole sequences only)")
    if model.temperature_mode == "strict" and temperature != 1.0:
        raise CapabilityError(f"{name} samples proposals at temperature 1 only (temperature_mode='strict')")
    if model.logprobs_refused:
        raise LogprobsUnsupportedError(f"{name} rejected log-probs earlier")
    return list(await asyncio.gather(*(one(prompt, m, derive_seed(seed, i)) for i, m in enumerate(limits))))


def without_sdk_retries(client: Any) -> Any:
    """The client with the SDK's own retries off (openai/anthropic ``with_options(max_retries=0)``)."""
    retries = getattr(client, "max_retries", 0)
    if isinstance(retries, int) and retries > 0 and hasattr(client, "with_options"):
        log.info("turning off the SDK client's own retries (max_retries=%d → 0); genesis_ps retries once", retries)
        return client.with_options(max_retries=0)
    return client


def _require(module: str, provider: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelNotAvailableError(
            f"provider {provider!r} needs the {module.split('.')[0]} package: "
            f"pip install 'genesis_ps[{_PACKAGE_EXTRA.get(module, _EXTRAS[provider])}]'"
        ) from exc


def build(
    provider: str,
    *,
    model: str | None = None,
    base_url: str | None = None,
    environ: Mapping[str, str] | None = None,
    **kw: Any,
) -> TokenModel:
    """Build the adapter for ``provider`` from environment keys (see docs/providers.md).

    Extra keyword arguments go to the adapter (``top_logprobs``, ``tokenizer``, ``resilience`` …).
    """
    from genesis_ps.providers.resilience import Resilience
    from genesis_ps.settings import Settings

    env = os.environ if environ is None else environ
    settings = Settings.from_env(env)
    if provider not in _EXTRAS:
        raise ConfigError("provider", f"unknown hosted provider {provider!r}; choose one of {', '.join(_EXTRAS)}")
    name = model or settings.model or DEFAULT_MODELS.get(provider)
    if not name:
        raise ConfigError("model", f"provider {provider!r} needs --model (the name the server serves)")
    key = env_key(KEY_ENV[provider], env)
    if key is None and provider != "openai-compatible":
        raise ConfigError(KEY_ENV[provider][0], f"provider {provider!r} needs an API key in ${KEY_ENV[provider][0]}")
    kw.setdefault("resilience", Resilience.from_settings(settings, provider, name))
    timeout = settings.timeout_s
    if provider in ("openai", "openai-compatible"):
        openai = _require("openai", provider)
        url = base_url or env.get("OPENAI_BASE_URL") or None
        if provider == "openai-compatible" and not url:
            raise ConfigError("base_url", "provider 'openai-compatible' needs --base-url (or $OPENAI_BASE_URL)")
        secret = key.get_secret_value() if key is not None else "EMPTY"
        client = openai.AsyncOpenAI(api_key=secret, base_url=url, max_retries=0, timeout=timeout)
        if provider == "openai":
            from genesis_ps.providers.openai_chat import OpenAIChatModel

            return OpenAIChatModel(client, name, **kw)
        from genesis_ps.providers.openai_completions import OpenAICompletionsModel

        if isinstance(kw.get("tokenizer"), str):  # a local tokenizer directory of the served model
            transformers = _require("transformers", provider)
            kw["tokenizer"] = transformers.AutoTokenizer.from_pretrained(kw["tokenizer"], local_files_only=True)
        return OpenAICompletionsModel(client, name, **kw)
    if provider == "gemini":
        genai = _require("google.genai", provider)
        types = _require("google.genai.types", provider)
        assert key is not None
        opts = types.HttpOptions(timeout=int(timeout * 1000), base_url=base_url) if base_url else types.HttpOptions(
            timeout=int(timeout * 1000)
        )
        client = genai.Client(api_key=key.get_secret_value(), http_options=opts)
        from genesis_ps.providers.gemini import GeminiModel

        return GeminiModel(client, name, **kw)
    anthropic = _require("anthropic", provider)
    assert key is not None
    client = anthropic.AsyncAnthropic(api_key=key.get_secret_value(), base_url=base_url, max_retries=0, timeout=timeout)
    from genesis_ps.providers.anthropic_adapter import AnthropicModel

    return AnthropicModel(client, name, **kw)

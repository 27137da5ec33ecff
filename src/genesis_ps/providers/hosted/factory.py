"""Build a hosted adapter from environment keys.

``build(provider, model=, base_url=)`` is what :func:`genesis_ps.providers.registry.build_model` calls
for ``openai``, ``openai-compatible``, ``gemini`` and ``anthropic``. It builds the official SDK client
with the SDK's own retries off (``max_retries=0``; :class:`~genesis_ps.providers.resilience.Resilience`
is the one retry layer) and a timeout from :class:`~genesis_ps.settings.Settings`. SDKs are imported
only inside the branch that needs them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

from genesis_ps.errors import ConfigError, ModelNotAvailableError
from genesis_ps.providers.hosted.anthropic_messages import AnthropicModel
from genesis_ps.providers.hosted.common import check_base_url
from genesis_ps.providers.hosted.gemini import GeminiModel
from genesis_ps.providers.hosted.openai_chat import OpenAIChatModel
from genesis_ps.providers.hosted.openai_completions import OpenAICompletionsModel
from genesis_ps.providers.keys import KEY_ENV, env_key
from genesis_ps.providers.resilience import Resilience
from genesis_ps.sampling.protocol import TokenModel
from genesis_ps.settings import Settings

__all__ = ["DEFAULT_MODELS", "build"]

DEFAULT_MODELS: dict[str, str] = {
    "openai": "gpt-4.1-mini",
    "gemini": "gemini-2.5-flash",
    "anthropic": "claude-haiku-4-5",
}
"""Models used when none is named (``openai-compatible`` always needs ``--model``)."""

_EXTRAS = {"openai": "openai", "openai-compatible": "openai", "gemini": "gemini", "anthropic": "anthropic"}
_PACKAGE_EXTRA = {"transformers": "local"}


def _require(module: str, provider: str) -> Any:
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
    env = os.environ if environ is None else environ
    settings = Settings.from_env(env)
    if provider not in _EXTRAS:
        raise ConfigError("provider", f"unknown hosted provider {provider!r}; choose one of {', '.join(_EXTRAS)}")
    name = model or settings.model or DEFAULT_MODELS.get(provider)
    if not name:
        raise ConfigError("model", f"provider {provider!r} needs --model (the name the server serves)")
    if base_url is not None:
        check_base_url(base_url)
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
        if url is not None and base_url is None:
            check_base_url(url, "OPENAI_BASE_URL")
        secret = key.get_secret_value() if key is not None else "EMPTY"
        client = openai.AsyncOpenAI(api_key=secret, base_url=url, max_retries=0, timeout=timeout)
        if provider == "openai":
            return OpenAIChatModel(client, name, **kw)
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
        return GeminiModel(client, name, **kw)
    anthropic = _require("anthropic", provider)
    assert key is not None
    client = anthropic.AsyncAnthropic(api_key=key.get_secret_value(), base_url=base_url, max_retries=0, timeout=timeout)
    return AnthropicModel(client, name, **kw)

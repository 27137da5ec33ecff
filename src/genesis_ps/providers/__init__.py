"""Token-model adapters in two wings over a shared boundary.

- :mod:`~genesis_ps.providers.local` — a transformers model (and the embedded default);
- :mod:`~genesis_ps.providers.hosted` — one adapter per SDK (OpenAI chat, OpenAI-compatible completions,
  Gemini, Anthropic) over a client the user builds;
- the boundary both use: :mod:`~.registry` (:func:`build_model` by provider name), :mod:`~.normalize`
  (SDK errors to ours), :mod:`~.resilience` (retries, breakers, timeouts), :mod:`~.keys`, :mod:`~.topk`.

Importing this package imports no SDK, no torch and no transformers.
"""

from genesis_ps.providers.hosted import AnthropicModel, GeminiModel, OpenAIChatModel, OpenAICompletionsModel
from genesis_ps.providers.local import LocalModel, load_embedded
from genesis_ps.providers.registry import PROVIDERS, build_model
from genesis_ps.providers.resilience import (
    BreakerPolicy,
    ProviderRetryPolicy,
    ProviderTimeoutPolicy,
    Resilience,
)

__all__ = [
    "PROVIDERS",
    "AnthropicModel",
    "BreakerPolicy",
    "GeminiModel",
    "LocalModel",
    "OpenAIChatModel",
    "OpenAICompletionsModel",
    "ProviderRetryPolicy",
    "ProviderTimeoutPolicy",
    "Resilience",
    "build_model",
    "load_embedded",
]

"""The hosted wing: one adapter per SDK over the official client a user builds, and :func:`build`,
which makes the client from environment keys. Importing this package imports no SDK."""

from genesis_ps.providers.hosted.anthropic_messages import AnthropicModel
from genesis_ps.providers.hosted.factory import DEFAULT_MODELS, build
from genesis_ps.providers.hosted.gemini import GeminiModel
from genesis_ps.providers.hosted.openai_chat import OpenAIChatModel
from genesis_ps.providers.hosted.openai_completions import OpenAICompletionsModel

__all__ = [
    "DEFAULT_MODELS",
    "AnthropicModel",
    "GeminiModel",
    "OpenAIChatModel",
    "OpenAICompletionsModel",
    "build",
]

"""Use an application's LangChain chat model for single-shot generation.

:class:`ChatModelAdapter` wraps any ``langchain_core`` ``BaseChatModel`` as a
:class:`~genesis_ps.sampling.TokenModel` with ``logprobs="none"``: it generates single-shot, never
power-samples (the graph's fallback edge records ``no_logprobs`` if asked to). Each call passes the
graph's ``temperature`` and token limit (``max_tokens``) to the chat model, and runs through the same
boundary as our own adapters (:class:`~genesis_ps.providers.resilience.Resilience`): SDK errors become
genesis_ps errors (429 and 5xx retryable, ``Retry-After`` honoured), retried, behind a circuit breaker
and a timeout. Token counts come from the chat model's ``usage_metadata`` when it reports them;
otherwise whitespace words are counted and ``Completion.usage["counted_words"]`` is 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from genesis_ps.providers.resilience import Resilience
from genesis_ps.sampling.protocol import Capabilities, Completion, Prompt, Segment
from genesis_ps.settings import Settings

__all__ = ["ChatModelAdapter"]


class ChatModelAdapter:
    """A LangChain chat model as a single-shot-only TokenModel."""

    provider = "langchain"

    def __init__(
        self,
        chat_model: Any,
        *,
        model: str | None = None,
        settings: Settings | None = None,
        resilience: Resilience | None = None,
        pass_params: bool = True,
    ) -> None:
        """``pass_params=False`` leaves temperature and token limit to the chat model's own settings (for
        chat models that reject per-call keyword arguments)."""
        self.chat_model = chat_model
        self.model = model or str(
            getattr(chat_model, "model_name", None) or getattr(chat_model, "model", None) or type(chat_model).__name__
        )
        self.capabilities = Capabilities(
            logprobs="none", prefix_continuation=False, notes="LangChain chat model: single-shot only"
        )
        self.resilience = resilience or Resilience.from_settings(settings or Settings(), self.provider, self.model)
        self.pass_params = pass_params

    async def extend(
        self,
        prompt: Prompt,
        prefixes: Sequence[Sequence[int]],
        max_new_tokens: int | Sequence[int],
        temperature: float,
        *,
        seed: int | None = None,
    ) -> list[Segment]:
        from genesis_ps.errors import LogprobsUnsupportedError

        raise LogprobsUnsupportedError(f"{self.provider}/{self.model} returns no log-probabilities")

    async def generate(
        self, prompt: Prompt, *, max_new_tokens: int, temperature: float = 1.0, seed: int | None = None
    ) -> Completion:
        msgs = [(_ROLE.get(m["role"], m["role"]), m["content"]) for m in prompt.as_messages()]
        kw: dict[str, Any] = {"temperature": temperature, "max_tokens": max_new_tokens} if self.pass_params else {}

        async def call() -> Any:
            return await self.chat_model.ainvoke(msgs, **kw)

        msg = await self.resilience.call(call)
        content = msg.content if isinstance(msg.content, str) else _join(msg.content)
        usage = getattr(msg, "usage_metadata", None) or {}
        if usage.get("output_tokens"):
            n, how = int(usage["output_tokens"]), "provider"
        else:
            n, how = max(1, len(content.split())), "words"
        finish = (getattr(msg, "response_metadata", None) or {}).get("finish_reason") or "stop"
        return Completion(
            text=content,
            tokens_generated=n,
            finish_reason=str(finish).lower(),
            usage={"output_tokens": n, "counted_words": int(how == "words")},
        )

    def decode(self, tokens: Sequence[int]) -> str:
        return ""

    def prompt_length(self, prompt: Prompt) -> int | None:
        return None


_ROLE = {"user": "human", "assistant": "ai"}


def _join(parts: Any) -> str:
    out = []
    for p in parts:
        out.append(p if isinstance(p, str) else str(p.get("text", "")) if isinstance(p, dict) else "")
    return "".join(out)

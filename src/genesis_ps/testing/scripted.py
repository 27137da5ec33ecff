"""Offline fakes that ship with the package, so applications can test their own graphs without keys.

:class:`ScriptedModel` returns queued texts. It is a *deterministic* model: each call's text has
probability 1, so its honest log-probability is 0 for every token — that is what it reports.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence

from genesis_ps.sampling.protocol import Capabilities, Completion, LogprobKind, Prompt, Segment

__all__ = ["ScriptedModel"]


class ScriptedModel:
    """A :class:`~genesis_ps.sampling.TokenModel` whose outputs are scripted.

    ``responses`` is a list of texts served in order (the last one repeats when the queue runs dry), or a
    function of the prompt. ``logprobs="none"`` makes it behave like a provider without log-probs.
    ``fail_with`` raises that exception on every call (to exercise fallbacks). ``calls`` records prompts.
    """

    provider = "scripted"

    def __init__(
        self,
        responses: Iterable[str] | Callable[[Prompt], str] = ("ok",),
        *,
        model: str = "scripted",
        logprobs: LogprobKind = "exact",
        fail_with: BaseException | None = None,
    ) -> None:
        self.model = model
        self._fn = responses if callable(responses) else None
        self._queue: deque[str] = deque([] if callable(responses) else list(responses))
        self._last = "ok"
        self.fail_with = fail_with
        self.calls: list[Prompt] = []
        self.capabilities = Capabilities(logprobs=logprobs, prefix_continuation=False, max_batch=64)

    def enqueue(self, *texts: str) -> None:
        self._queue.extend(texts)

    def _next(self, prompt: Prompt) -> str:
        self.calls.append(prompt)
        if self.fail_with is not None:
            raise self.fail_with
        if self._fn is not None:
            return self._fn(prompt)
        if self._queue:
            self._last = self._queue.popleft()
        return self._last

    async def extend(
        self,
        prompt: Prompt,
        prefixes: Sequence[Sequence[int]],
        max_new_tokens: int | Sequence[int],
        temperature: float,
        *,
        seed: int | None = None,
    ) -> list[Segment]:
        if any(len(p) for p in prefixes):
            raise ValueError("ScriptedModel cannot continue a token prefix")
        out = []
        for _ in prefixes:
            text = self._next(prompt)
            n = max(1, len(text.split()))
            out.append(Segment(tokens=(), logp=(0.0,) * n, logq=(0.0,) * n, eos=True, text=text))
        return out

    async def generate(
        self, prompt: Prompt, *, max_new_tokens: int, temperature: float = 1.0, seed: int | None = None
    ) -> Completion:
        text = self._next(prompt)
        n = max(1, len(text.split()))
        return Completion(text=text, tokens_generated=n, logp=(0.0,) * n, finish_reason="stop")

    def decode(self, tokens: Sequence[int]) -> str:
        return ""

    def prompt_length(self, prompt: Prompt) -> int | None:
        return None

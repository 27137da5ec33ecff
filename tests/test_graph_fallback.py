"""Fallbacks that answer: with the primary provider's breaker open, the single-shot fallback runs on a
different model (the app's chat model, or POWER_SAMPLING_FALLBACK_PROVIDER/_MODEL) and says which; with
no distinct fallback the result says so instead of raising. Chat-model errors go through our error
boundary (429/5xx retryable, Retry-After honoured), and the chat model gets the temperature and limit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx2
import openai
import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from genesis_ps import build_graph, generate
from genesis_ps.errors import BadRequestError, ProviderServerError
from genesis_ps.graph import ChatModelAdapter
from genesis_ps.graph.routes import RouteRegistry
from genesis_ps.providers.resilience import BreakerPolicy, BreakerRegistry, ProviderRetryPolicy, Resilience
from genesis_ps.sampling import Prompt, SamplerParams, Segment
from genesis_ps.sampling.protocol import Completion
from genesis_ps.settings import Settings
from genesis_ps.testing import ScriptedModel

ON = {"POWER_SAMPLING_ENABLED": "1", "POWER_SAMPLING_HTDAG_ENABLED": "1", "POWER_SAMPLING_HTDAG_METHOD": "imh",
      "POWER_SAMPLING_HTDAG_N_MCMC": "2"}  # fmt: skip
PLAN = json.dumps({"tasks": [{"id": "1", "description": "Paint the fence", "type": "general", "depends_on": []}]})


class BreakerModel(ScriptedModel):
    """A scripted model behind a real circuit breaker, opened by failures before the test starts."""

    def __init__(self) -> None:
        super().__init__([PLAN], model="primary")
        self.res = Resilience("flaky", "primary", retry=ProviderRetryPolicy(max_retries=0),
                              breaker=BreakerPolicy(fail_max=2, reset_timeout_s=600),
                              breakers=BreakerRegistry())  # fmt: skip

    async def trip(self) -> None:
        async def down() -> None:
            raise ProviderServerError("HTTP 503", provider="flaky", status_code=503)

        for _ in range(2):
            with pytest.raises(ProviderServerError):
                await self.res.call(down)
        assert self.res.breaker.state == "open"

    async def extend(self, prompt: Prompt, prefixes: Sequence[Sequence[int]], max_new_tokens: int | Sequence[int],
                     temperature: float, *, seed: int | None = None) -> list[Segment]:  # fmt: skip
        async def call() -> list[Segment]:
            return await ScriptedModel.extend(self, prompt, prefixes, max_new_tokens, temperature, seed=seed)

        return await self.res.call(call)

    async def generate(self, prompt: Prompt, *, max_new_tokens: int, temperature: float = 1.0,
                       seed: int | None = None) -> Completion:  # fmt: skip
        async def call() -> Completion:
            return await ScriptedModel.generate(self, prompt, max_new_tokens=max_new_tokens, temperature=temperature,
                                                seed=seed)  # fmt: skip

        return await self.res.call(call)


class Recording(BaseChatModel):
    """A chat model that records the keyword arguments of each call and answers from a list."""

    answers: list[str]
    seen: list[dict[str, Any]]

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:  # fmt: skip
        self.seen.append(dict(kwargs))
        text = self.answers[min(len(self.seen) - 1, len(self.answers) - 1)]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


async def test_open_breaker_falls_back_to_the_apps_chat_model_and_says_which() -> None:
    primary = await _tripped()
    chat = FakeListChatModel(responses=[PLAN, "painted"])
    out = await build_graph(primary, chat_model=chat, settings=Settings.from_env(ON),
                            routes=RouteRegistry(builtin={})).ainvoke({"request": "Paint the fence"})  # fmt: skip
    assert out["answer"] == "painted" and out["summary"]["done"] == 1
    assert {"where": "plan", "reason": "circuit_open"} in out["summary"]["fallbacks"]
    assert out["summary"]["fallback_model"] == "langchain/FakeListChatModel"
    plan_gen = out["summary"]["plan"]["generations"][0]
    assert plan_gen["provider"] == "langchain" and plan_gen["extra"]["fallback_model"] == "langchain/FakeListChatModel"
    assert "CircuitOpenError" in plan_gen["extra"]["fallback_error"]
    assert out["tasks"][0]["fallback_models"] == ["langchain/FakeListChatModel"]
    assert primary.calls == []  # the open breaker refused every call to the primary


async def test_fallback_provider_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import genesis_ps.providers.registry as registry

    built: list[tuple[str, str | None]] = []

    def fake_build(provider: str, *, model: str | None = None, **kw: Any) -> ScriptedModel:
        built.append((provider, model))
        return ScriptedModel([PLAN, "painted by the fallback"], model=str(model))

    monkeypatch.setattr(registry, "build_model", fake_build)
    env = {**ON, "POWER_SAMPLING_FALLBACK_PROVIDER": "openai-compatible", "POWER_SAMPLING_FALLBACK_MODEL": "small"}
    out = await build_graph(await _tripped(), settings=Settings.from_env(env),
                            routes=RouteRegistry(builtin={})).ainvoke({"request": "Paint the fence"})  # fmt: skip
    assert built == [("openai-compatible", "small")]
    assert out["answer"] == "painted by the fallback" and out["summary"]["fallback_model"] == "scripted/small"


async def test_no_distinct_fallback_says_so_instead_of_raising() -> None:
    out = await build_graph(await _tripped(), settings=Settings.from_env(ON),
                            routes=RouteRegistry(builtin={})).ainvoke({"request": "Paint the fence"})  # fmt: skip
    s = out["summary"]
    assert s["plan_fallback"] == "heuristic:generation_failed:unanswered"  # every attempt said why it had no answer
    assert s["done"] == 0 and all(t["status"] == "failed" for t in out["tasks"] if t["status"] != "skipped")
    error = next(t["error"] for t in out["tasks"] if t["status"] == "failed")
    assert "CircuitOpenError" in error and "no distinct fallback model is configured" in error
    # outside the graph, generate() answers the same way
    r = await generate(await _tripped(), "q", SamplerParams(method="imh", n_mcmc=2, max_new_tokens=8), power=True)
    assert r.text == "" and r.fallback == "circuit_open" and r.extra["unanswered"] is True
    r = await generate(await _tripped(), "q", SamplerParams(method="imh", n_mcmc=2, max_new_tokens=8), power=True,
                       fallback_model=ScriptedModel(["from the fallback"], model="other"))  # fmt: skip
    assert r.text == "from the fallback" and r.extra["fallback_model"] == "scripted/other"


async def _tripped() -> BreakerModel:
    m = BreakerModel()
    await m.trip()
    return m


def _openai_error(cls: type[openai.APIStatusError], status: int, headers: dict[str, str]) -> openai.APIStatusError:
    request = httpx2.Request("POST", "https://api.example/v1/chat/completions")
    return cls("boom", response=httpx2.Response(status, headers=headers, request=request), body=None)


class Failing(Recording):
    errors: list[Exception]

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:  # fmt: skip
        if self.errors:
            raise self.errors.pop(0)
        return super()._generate(messages, stop, run_manager, **kwargs)


async def test_chat_model_errors_are_normalised_retried_and_honour_retry_after() -> None:
    sleeps: list[float] = []

    async def sleep(s: float) -> None:
        sleeps.append(s)

    def adapter(chat: BaseChatModel) -> ChatModelAdapter:
        res = Resilience("langchain", "failing", sleep=sleep, breakers=BreakerRegistry(),
                         retry=ProviderRetryPolicy(max_retries=2, jitter_s=0.0))  # fmt: skip
        return ChatModelAdapter(chat, resilience=res)

    chat = Failing(answers=["ok"], seen=[], errors=[_openai_error(openai.RateLimitError, 429, {"retry-after": "2"}),
                                                     _openai_error(openai.InternalServerError, 503, {})])  # fmt: skip
    c = await adapter(chat).generate(Prompt.user("hi"), max_new_tokens=7, temperature=0.3)
    assert c.text == "ok" and sleeps == [2.0, 1.0]  # the Retry-After wait, then the backoff (0.5 × 2)
    bad = Failing(answers=["never"], seen=[], errors=[_openai_error(openai.BadRequestError, 400, {})])
    with pytest.raises(BadRequestError):  # not retryable: raised at once
        await adapter(bad).generate(Prompt.user("hi"), max_new_tokens=7)
    assert sleeps == [2.0, 1.0]


async def test_chat_model_receives_the_temperature_and_token_limit() -> None:
    chat = Recording(answers=[PLAN, "painted"], seen=[])
    g = build_graph(chat_model=chat, settings=Settings(), temperature=0.2, plan_max_new_tokens=50,
                    task_max_new_tokens=20, routes=RouteRegistry(builtin={}))  # fmt: skip
    out = await g.ainvoke({"request": "Paint it"})
    assert out["answer"] == "painted"
    assert chat.seen == [{"temperature": 0.2, "max_tokens": 50}, {"temperature": 0.2, "max_tokens": 20}]

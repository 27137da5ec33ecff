"""Errors that say what happened: SDK and shape errors become ours at the boundary, keys appear in no
message or chained exception, and an open breaker names the failure that opened it."""

from __future__ import annotations

import socket
import traceback
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from provider_fakes import TEST_KEYS, FakeServer, Recorder, adapter, error, resilience

from genesis_ps.errors import CircuitOpenError, ConfigError, GenesisError, MalformedResponseError, ProviderError
from genesis_ps.providers.hosted.common import check_base_url
from genesis_ps.providers.resilience import BreakerPolicy, ProviderRetryPolicy
from genesis_ps.sampling import Prompt

KINDS = ["chat", "completions", "gemini", "anthropic"]
PROVIDER = {"chat": "openai", "completions": "openai-compatible", "gemini": "gemini", "anthropic": "anthropic"}
ERR_KIND = {"chat": "openai", "completions": "openai", "gemini": "gemini", "anthropic": "anthropic"}
PROMPT = Prompt.user("hello")


def chain(exc: BaseException) -> Iterator[BaseException]:
    stack: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        stack += [e.__cause__, e.__context__]


def everything_said(exc: BaseException) -> str:
    parts = ["".join(traceback.format_exception(exc))]
    for e in chain(exc):
        parts += [str(e), repr(e), repr(e.args)]
        for attr in ("message", "body", "doc", "response", "request"):
            try:
                parts.append(repr(getattr(e, attr, "")))
            except RuntimeError:  # httpx: "the .request property has not been set" (scrubbed)
                pass
    return "\n".join(parts)


async def call(model: Any, kind: str) -> Any:
    if kind == "anthropic":
        return await model.generate(PROMPT, max_new_tokens=5)
    return await model.extend(PROMPT, [()], 5, 1.0, seed=1)


@pytest.mark.parametrize("status", [400, 401, 500])
@pytest.mark.parametrize("kind", KINDS)
async def test_an_echoed_key_is_in_no_message_or_chained_exception(kind: str, status: int) -> None:
    server = FakeServer({"chat": "openai_chat", "completions": "openai_completions"}.get(kind, kind))
    res = resilience(PROVIDER[kind], f"echo-{kind}-{status}", retry=ProviderRetryPolicy(max_retries=0))
    model = adapter(kind, server, res=res)
    key = TEST_KEYS[ERR_KIND[kind]]
    server.script.append(error(status, f"key {key} rejected (Authorization: Bearer {key})", kind=ERR_KIND[kind]))
    with pytest.raises(ProviderError) as info:
        await call(model, kind)
    said = everything_said(info.value)
    assert key not in said and key[8:] not in said
    assert f"HTTP {status}" in str(info.value)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


async def test_an_open_breaker_names_the_connection_failure_that_opened_it() -> None:
    import openai

    from genesis_ps.providers.hosted.openai_completions import OpenAICompletionsModel

    port = _closed_port()
    client = openai.AsyncOpenAI(api_key="sk-test-abcdefghijklmnop", base_url=f"http://127.0.0.1:{port}/v1",
                                max_retries=0)  # fmt: skip
    res = resilience("openai-compatible", "closed", retry=ProviderRetryPolicy(max_retries=0),
                     breaker=BreakerPolicy(fail_max=2))  # fmt: skip
    model = OpenAICompletionsModel(client, "closed", resilience=res)
    for _ in range(2):
        with pytest.raises(ProviderError, match=f"connection refused to 127.0.0.1:{port}"):
            await model.extend(PROMPT, [()], 3, 1.0)
    with pytest.raises(CircuitOpenError) as info:
        await model.extend(PROMPT, [()], 3, 1.0)
    assert f"last failure: openai-compatible: connection refused to 127.0.0.1:{port}" in str(info.value)
    assert info.value.last_error and "connection refused" in info.value.last_error


async def test_an_open_breaker_names_the_http_status() -> None:
    server = FakeServer("openai_chat")
    rec = Recorder()
    model = adapter("chat", server, res=resilience("openai", "down", rec, retry=ProviderRetryPolicy(max_retries=5),
                                                   breaker=BreakerPolicy(fail_max=3)))  # fmt: skip
    for _ in range(6):
        server.script.append(error(503, "overloaded"))
    with pytest.raises(CircuitOpenError, match="last failure: openai: HTTP 503: overloaded"):
        await model.extend(PROMPT, [()], 5, 1.0)


SHAPES = {
    "numbers_in_top_logprobs": lambda p: p["choices"][0]["logprobs"]["content"][0].update(top_logprobs=[1.0, 2.0]),
    "strings_as_values": lambda p: p["choices"][0]["logprobs"]["content"][0].update(logprob="-0.5x"),
    "choices_as_an_object": lambda p: p.update(choices={"0": p["choices"][0]}),
    "minus_infinity": lambda p: p["choices"][0]["logprobs"]["content"][0].update(logprob=float("-inf")),
    "a_third_of_the_text": lambda p: p["choices"][0]["logprobs"].update(
        content=p["choices"][0]["logprobs"]["content"][: len(p["choices"][0]["logprobs"]["content"]) // 3]),
    "usage_disagrees": lambda p: p["usage"].update(completion_tokens=99),
}  # fmt: skip


@pytest.mark.parametrize("shape", sorted(SHAPES))
async def test_malformed_shapes_are_malformed_response_errors(shape: str) -> None:
    server = FakeServer("openai_chat")

    def bad(request: httpx2.Request) -> httpx2.Response:
        import json

        body = json.loads(request.content)
        body["max_completion_tokens"] = 4
        payload = server._openai_chat({**body, "top_logprobs": 2}, request)
        SHAPES[shape](payload)
        return httpx2.Response(200, content=json.dumps(payload).encode(), headers={"content-type": "application/json"})

    res = resilience("openai", f"shape-{shape}", retry=ProviderRetryPolicy(max_retries=0))
    model = adapter("chat", server, res=res, top_logprobs=2)
    server.script.append(bad)
    with pytest.raises(MalformedResponseError) as info:
        await model.extend(PROMPT, [()], 4, 1.0)
    assert info.value.retryable and str(info.value).startswith("openai: ")
    server.script.append(bad)  # single-shot refuses it too: no logp_sum of -inf, no raw TypeError
    with pytest.raises(MalformedResponseError):
        await model.generate(PROMPT, max_new_tokens=4)


def test_base_urls_must_be_http_urls() -> None:
    for bad in ("notaurl", "ftp://x/v1", "http://", "http://host:99999/v1"):
        with pytest.raises(ConfigError, match="base_url"):
            check_base_url(bad)
    assert check_base_url("http://127.0.0.1:8000/v1")
    from genesis_ps.providers.hosted import build

    with pytest.raises(ConfigError, match="base_url"):
        build("openai-compatible", model="m", base_url="notaurl", environ={})
    with pytest.raises(GenesisError):
        build("openai-compatible", model="m", environ={"OPENAI_BASE_URL": "also-not-a-url"})

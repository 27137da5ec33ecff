"""Fault injection at the SDK transport: every adapter, every failure, exact retry sleeps."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from provider_fakes import TEST_KEYS, FakeServer, Recorder, adapter, error, malformed, resilience

from genesis_ps.errors import (
    AuthenticationError,
    BadRequestError,
    LogprobsUnsupportedError,
    MalformedResponseError,
    ProviderConnectionError,
    ProviderServerError,
    ProviderTimeoutError,
    RateLimitError,
)
from genesis_ps.providers.resilience import ProviderRetryPolicy, ProviderTimeoutPolicy
from genesis_ps.sampling import Prompt

KINDS = ["chat", "completions", "gemini", "anthropic"]
LOGPROB_KINDS = ["chat", "completions", "gemini"]
PROVIDER = {"chat": "openai", "completions": "openai-compatible", "gemini": "gemini", "anthropic": "anthropic"}
ERR_KIND = {"chat": "openai", "completions": "openai", "gemini": "gemini", "anthropic": "anthropic"}
PROMPT = Prompt.user("hello")


def setup(kind: str, **policy: Any) -> tuple[Any, FakeServer, Recorder]:
    from provider_fakes import SERVER_KIND

    server = FakeServer(SERVER_KIND[kind])
    rec = Recorder()
    res = resilience(PROVIDER[kind], f"m-{kind}", rec, **policy)
    return adapter(kind, server, res=res), server, rec


async def call(model: Any, kind: str) -> Any:
    """One request: ``extend`` where the adapter has log-probs, ``generate`` otherwise."""
    if kind == "anthropic":
        return await model.generate(PROMPT, max_new_tokens=5)
    return await model.extend(PROMPT, [()], 5, 1.0, seed=1)


@pytest.mark.parametrize("kind", KINDS)
async def test_429_honours_retry_after_then_succeeds(kind: str) -> None:
    model, server, rec = setup(kind)
    server.script.append(error(429, "rate limited", {"retry-after": "2"}, kind=ERR_KIND[kind]))
    await call(model, kind)
    assert rec.sleeps == [2.0]
    assert len(server.bodies) == 2


@pytest.mark.parametrize("kind", KINDS)
async def test_retry_after_ms_takes_precedence(kind: str) -> None:
    model, server, rec = setup(kind)
    server.script.append(error(429, "slow", {"retry-after-ms": "1500", "retry-after": "9"}, kind=ERR_KIND[kind]))
    await call(model, kind)
    assert rec.sleeps == [1.5]


@pytest.mark.parametrize("kind", KINDS)
async def test_5xx_backs_off_exponentially_with_exact_sleeps(kind: str) -> None:
    model, server, rec = setup(
        kind, retry=ProviderRetryPolicy(max_retries=3, initial_delay_s=0.5, multiplier=2.0, jitter_s=0)
    )
    for status in (500, 503, 502):
        server.script.append(error(status, "server trouble", kind=ERR_KIND[kind]))
    await call(model, kind)
    assert rec.sleeps == [0.5, 1.0, 2.0]
    assert len(server.bodies) == 4


@pytest.mark.parametrize("kind", KINDS)
async def test_retries_are_bounded(kind: str) -> None:
    model, server, rec = setup(kind, retry=ProviderRetryPolicy(max_retries=2, initial_delay_s=1.0, jitter_s=0))
    for _ in range(5):
        server.script.append(error(500, "down", kind=ERR_KIND[kind]))
    with pytest.raises(ProviderServerError) as info:
        await call(model, kind)
    assert info.value.status_code == 500
    assert rec.sleeps == [1.0, 2.0]
    assert len(server.bodies) == 3


async def test_total_retry_time_is_bounded() -> None:
    model, server, rec = setup("chat", retry=ProviderRetryPolicy(max_retries=10, initial_delay_s=4.0, jitter_s=0,
                                                         max_total_s=10.0))
    for _ in range(10):
        server.script.append(error(500, "down"))
    with pytest.raises(ProviderServerError):
        await call(model, "chat")
    assert rec.sleeps == [4.0]  # 4 + 8 would exceed 10 s


async def test_retry_after_beyond_limit_is_not_waited_for() -> None:
    model, server, rec = setup("chat", retry=ProviderRetryPolicy(max_retry_after_s=30.0, jitter_s=0))
    server.script.append(error(429, "come back tomorrow", {"retry-after": "86400"}))
    with pytest.raises(RateLimitError) as info:
        await call(model, "chat")
    assert info.value.retry_after == 86400.0
    assert rec.sleeps == []


async def test_jitter_is_seeded_and_bounded() -> None:
    import random

    from genesis_ps.providers.resilience import BreakerRegistry, Resilience

    rec = Recorder()
    res = Resilience("openai", "m", sleep=rec.sleep, clock=rec.clock, breakers=BreakerRegistry(), rng=random.Random(5),
                     retry=ProviderRetryPolicy(initial_delay_s=1.0, jitter_s=0.5))
    server = FakeServer("openai_chat")
    model = adapter("chat", server, res=res)
    server.script.extend([error(500, "x"), error(500, "x")])
    await call(model, "chat")
    r = random.Random(5)
    assert rec.sleeps == [1.0 + r.uniform(0, 0.5), 2.0 + r.uniform(0, 0.5)]


@pytest.mark.parametrize("kind", KINDS)
async def test_connection_reset_is_retried(kind: str) -> None:
    model, server, rec = setup(kind)
    server.script.append(httpx2.RemoteProtocolError("peer closed connection without sending complete message body"))
    server.script.append(httpx2.ConnectError("connection refused"))
    await call(model, kind)
    assert rec.sleeps == [0.5, 1.0]


@pytest.mark.parametrize("kind", KINDS)
async def test_connection_failure_surfaces_normalised(kind: str) -> None:
    model, server, _ = setup(kind, retry=ProviderRetryPolicy(max_retries=0))
    server.script.append(httpx2.ConnectError("connection refused"))
    with pytest.raises(ProviderConnectionError):
        await call(model, kind)


@pytest.mark.parametrize("kind", KINDS)
async def test_sdk_read_timeout_is_a_provider_timeout(kind: str) -> None:
    model, server, _ = setup(kind, retry=ProviderRetryPolicy(max_retries=0))
    server.script.append(httpx2.ReadTimeout("read timed out"))
    with pytest.raises(ProviderTimeoutError):
        await call(model, kind)


@pytest.mark.parametrize("kind", KINDS)
async def test_our_timeout_cuts_a_hanging_call_and_retries(kind: str) -> None:
    model, server, rec = setup(kind, timeout=ProviderTimeoutPolicy(per_call_s=2.0))  # the retry must fit, loaded
    server.script.append("hang")
    await call(model, kind)
    assert rec.sleeps == [0.5]
    assert len(server.bodies) == 2


@pytest.mark.parametrize("kind", KINDS)
async def test_malformed_json_is_retried(kind: str) -> None:
    model, server, rec = setup(kind)
    server.script.append(malformed)
    await call(model, kind)
    assert rec.sleeps == [0.5]


@pytest.mark.parametrize("kind", KINDS)
async def test_malformed_json_surfaces_as_malformed_response(kind: str) -> None:
    model, server, _ = setup(kind, retry=ProviderRetryPolicy(max_retries=0))
    server.script.append(malformed)
    with pytest.raises(MalformedResponseError):
        await call(model, kind)


def _strip_logprobs(kind: str) -> Any:
    def respond(request: httpx2.Request) -> httpx2.Response:
        import json

        from provider_fakes import SERVER_KIND

        body = json.loads(request.content)
        payload = getattr(FakeServer(SERVER_KIND[kind]), "_" + SERVER_KIND[kind])(body, request)
        if kind == "gemini":
            payload["candidates"][0].pop("logprobsResult", None)
        else:
            payload["choices"][0]["logprobs"] = None
        return httpx2.Response(200, json=payload)

    return respond


@pytest.mark.parametrize("kind", LOGPROB_KINDS)
async def test_response_missing_logprobs_is_malformed_and_retried(kind: str) -> None:
    model, server, _rec = setup(kind, retry=ProviderRetryPolicy(max_retries=1, jitter_s=0))
    server.script.extend([_strip_logprobs(kind), _strip_logprobs(kind)])
    with pytest.raises(MalformedResponseError):
        await call(model, kind)
    assert len(server.bodies) == 2
    server.script.append(_strip_logprobs(kind))
    segs = await call(model, kind)  # one bad answer, then a good one
    assert segs[0].n_tokens >= 1


@pytest.mark.parametrize("kind", ["chat", "gemini"])
async def test_model_rejecting_logprobs_is_not_retried_and_remembered(kind: str) -> None:
    model, server, rec = setup(kind)
    server.script.append(error(400, "logprobs is not supported for this model", kind=ERR_KIND[kind]))
    with pytest.raises(LogprobsUnsupportedError):
        await call(model, kind)
    assert rec.sleeps == [] and len(server.bodies) == 1
    assert model.capabilities.logprobs == "none"
    with pytest.raises(LogprobsUnsupportedError):
        await call(model, kind)
    assert len(server.bodies) == 1  # refused without another request
    completion = await model.generate(PROMPT, max_new_tokens=4)  # single-shot still works, without log-probs
    assert completion.logp is None and completion.text
    assert "logprobs" not in server.bodies[-1] and "responseLogprobs" not in server.bodies[-1].get(
        "generationConfig", {})


@pytest.mark.parametrize("kind", KINDS)
async def test_bad_request_is_not_retried(kind: str) -> None:
    model, server, rec = setup(kind)
    server.script.append(error(400, "max_tokens is too large", kind=ERR_KIND[kind]))
    with pytest.raises(BadRequestError) as info:
        await call(model, kind)
    assert not isinstance(info.value, LogprobsUnsupportedError)
    assert rec.sleeps == [] and len(server.bodies) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_authentication_error_is_not_retried_and_never_shows_the_key(kind: str) -> None:
    model, server, rec = setup(kind)
    key = TEST_KEYS[ERR_KIND[kind]]
    server.script.append(error(401, f"Incorrect API key provided: {key}", kind=ERR_KIND[kind]))
    with pytest.raises(AuthenticationError) as info:
        await call(model, kind)
    assert rec.sleeps == []
    assert key not in str(info.value) and "[REDACTED]" in str(info.value)
    assert info.value.__cause__ is None
    assert key not in repr(model)


@pytest.mark.parametrize("kind", KINDS)
async def test_409_is_retried_as_a_server_error(kind: str) -> None:
    model, server, rec = setup(kind)
    server.script.append(error(409, "conflict", kind=ERR_KIND[kind]))
    await call(model, kind)
    assert rec.sleeps == [0.5]


@pytest.mark.parametrize("kind", KINDS)
async def test_408_is_a_retried_timeout(kind: str) -> None:
    model, server, _rec = setup(kind, retry=ProviderRetryPolicy(max_retries=0))
    server.script.append(error(408, "request timeout", kind=ERR_KIND[kind]))
    with pytest.raises(ProviderTimeoutError):
        await call(model, kind)


async def test_programmer_errors_pass_through_untouched() -> None:
    model, server, _ = setup("chat")

    def boom(request: httpx2.Request) -> httpx2.Response:
        raise TypeError("a bug in the handler")

    server.script.append(boom)
    with pytest.raises(TypeError, match="a bug in the handler"):
        await call(model, "chat")
    assert len(server.bodies) == 1

"""Circuit breaker (injected clock), concurrency limit, policies and settings."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx2
import pytest
from provider_fakes import FakeServer, Recorder, adapter, error, resilience

from genesis_ps.errors import CircuitOpenError, ConfigError, ProviderServerError
from genesis_ps.providers.resilience import (
    BreakerPolicy,
    BreakerRegistry,
    CircuitBreaker,
    ProviderRetryPolicy,
    ProviderTimeoutPolicy,
    Resilience,
)
from genesis_ps.sampling import Prompt
from genesis_ps.settings import Settings

PROMPT = Prompt.user("hi")


def chat_with_breaker(fail_max: int = 3, reset: float = 10.0) -> tuple[Any, FakeServer, Recorder]:
    rec = Recorder()
    server = FakeServer("openai_chat")
    res = resilience("openai", "m", rec, retry=ProviderRetryPolicy(max_retries=0),
                     breaker=BreakerPolicy(fail_max=fail_max, reset_timeout_s=reset))
    return adapter("chat", server, res=res), server, rec


async def test_breaker_opens_after_configured_failures_and_refuses_without_calling() -> None:
    model, server, _rec = chat_with_breaker(fail_max=3)
    server.script.extend([error(500, "down")] * 3)
    for _ in range(3):
        with pytest.raises(ProviderServerError):
            await model.extend(PROMPT, [()], 4, 1.0)
    assert model.resilience.breaker.state == "open"
    with pytest.raises(CircuitOpenError) as info:
        await model.extend(PROMPT, [()], 4, 1.0)
    assert len(server.bodies) == 3  # the refused call never reached the server
    assert info.value.retry_after == pytest.approx(10.0)
    assert model.resilience.stats.refused == 1 and model.resilience.stats.attempts == 3


async def test_breaker_half_opens_after_reset_timeout_and_closes_on_success() -> None:
    model, server, rec = chat_with_breaker(fail_max=2, reset=10.0)
    server.script.extend([error(500, "down")] * 2)
    for _ in range(2):
        with pytest.raises(ProviderServerError):
            await model.extend(PROMPT, [()], 4, 1.0)
    rec.now += 9.9
    with pytest.raises(CircuitOpenError):
        await model.extend(PROMPT, [()], 4, 1.0)
    rec.now += 0.2
    assert model.resilience.breaker.state == "half-open"
    segs = await model.extend(PROMPT, [()], 4, 1.0)  # the trial call
    assert segs[0].n_tokens >= 1
    assert model.resilience.breaker.state == "closed"
    assert len(server.bodies) == 3


async def test_failed_trial_call_reopens_the_breaker() -> None:
    model, server, rec = chat_with_breaker(fail_max=2, reset=5.0)
    server.script.extend([error(503, "down")] * 3)
    for _ in range(2):
        with pytest.raises(ProviderServerError):
            await model.extend(PROMPT, [()], 4, 1.0)
    rec.now += 5.0
    with pytest.raises(ProviderServerError):
        await model.extend(PROMPT, [()], 4, 1.0)  # half-open trial fails
    assert model.resilience.breaker.state == "open"
    with pytest.raises(CircuitOpenError):
        await model.extend(PROMPT, [()], 4, 1.0)
    assert len(server.bodies) == 3


async def test_client_errors_do_not_count_towards_opening() -> None:
    model, server, _ = chat_with_breaker(fail_max=2)
    server.script.extend([error(400, "bad request"), error(400, "bad request"), error(400, "bad request")])
    for _ in range(3):
        with pytest.raises(Exception):  # noqa: B017 - BadRequestError, checked elsewhere
            await model.extend(PROMPT, [()], 4, 1.0)
    assert model.resilience.breaker.state == "closed"


async def test_retries_stop_when_the_breaker_opens_mid_retry() -> None:
    rec = Recorder()
    server = FakeServer("openai_chat")
    res = resilience("openai", "m", rec, retry=ProviderRetryPolicy(max_retries=5, jitter_s=0),
                     breaker=BreakerPolicy(fail_max=2, reset_timeout_s=60))
    model = adapter("chat", server, res=res)
    server.script.extend([error(500, "down")] * 5)
    with pytest.raises(CircuitOpenError):
        await model.extend(PROMPT, [()], 4, 1.0)
    assert len(server.bodies) == 2 and rec.sleeps == [0.5, 1.0]


async def test_breaker_is_shared_per_provider_and_model() -> None:
    registry = BreakerRegistry()
    a = Resilience("openai", "m1", breakers=registry)
    b = Resilience("openai", "m1", breakers=registry)
    c = Resilience("openai", "m2", breakers=registry)
    assert a.breaker is b.breaker and a.breaker is not c.breaker


def test_circuit_breaker_uses_the_injected_clock_only() -> None:
    now = [100.0]
    cb = CircuitBreaker("p/m", BreakerPolicy(fail_max=1, reset_timeout_s=30.0), clock=lambda: now[0])
    with pytest.raises(ProviderServerError), cb.guard():
        raise ProviderServerError("down")
    assert cb.state == "open"
    now[0] += 29.0
    assert cb.state == "open"
    now[0] += 1.0
    assert cb.state == "half-open"


async def test_concurrency_is_limited_by_the_semaphore() -> None:
    in_flight = 0
    peak = 0
    server = FakeServer("openai_chat")
    inner = server.handle
    two_in_flight = asyncio.Event()

    async def handle(request: httpx2.Request) -> httpx2.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight >= 2:
            two_in_flight.set()
        try:
            # Hold each request until a second one is in flight (or 2 s pass), so the peak does not
            # depend on how fast the SDK's stack happens to reach the transport.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(two_in_flight.wait(), timeout=2.0)
            for _ in range(5):
                await asyncio.sleep(0)
            return await inner(request)
        finally:
            in_flight -= 1

    server.handle = handle  # type: ignore[method-assign]
    res = resilience("openai", "m", max_concurrency=2)
    model = adapter("chat", server, res=res)
    segs = await model.extend(PROMPT, [()] * 6, 4, 1.0, seed=3)
    assert len(segs) == 6 and len(server.bodies) == 6
    assert peak == 2
    seeds = [b["seed"] for b in server.bodies]
    assert len(set(seeds)) == 6  # distinct, reproducible seeds per concurrent proposal


def test_policies_validate_and_name_the_parameter() -> None:
    with pytest.raises(ConfigError) as info:
        ProviderRetryPolicy(max_retries=-1)
    assert info.value.param == "max_retries"
    with pytest.raises(ConfigError) as info:
        BreakerPolicy(fail_max=0)
    assert info.value.param == "fail_max"
    with pytest.raises(ConfigError) as info:
        ProviderTimeoutPolicy(per_call_s=0)
    assert info.value.param == "per_call_s"
    with pytest.raises(ConfigError) as info:
        Resilience("p", "m", max_concurrency=0, breakers=BreakerRegistry())
    assert info.value.param == "max_concurrency"


def test_policies_come_from_settings() -> None:
    s = Settings.from_env({"POWER_SAMPLING_TIMEOUT_S": "7", "POWER_SAMPLING_MAX_RETRIES": "1",
                           "POWER_SAMPLING_BREAKER_FAIL_MAX": "4", "POWER_SAMPLING_BREAKER_RESET_S": "9",
                           "POWER_SAMPLING_MAX_CONCURRENCY": "3"})
    r = Resilience.from_settings(s, "openai", "m", breakers=BreakerRegistry())
    assert r.timeout.per_call_s == 7.0
    assert r.retry.max_retries == 1
    assert r.breaker.policy == BreakerPolicy(fail_max=4, reset_timeout_s=9.0)
    assert r.max_concurrency == 3


def test_backoff_sequence() -> None:
    p = ProviderRetryPolicy(initial_delay_s=0.5, multiplier=3.0, max_delay_s=5.0)
    assert [p.backoff(n) for n in (1, 2, 3, 4)] == [0.5, 1.5, 4.5, 5.0]


def test_one_resilience_serves_successive_event_loops() -> None:
    server = FakeServer("openai_chat")
    model = adapter("chat", server, res=resilience("openai", "m", max_concurrency=1))
    for seed in (1, 2):  # asyncio.run makes a new loop each time, as a CLI calling twice would
        segs = asyncio.run(model.extend(PROMPT, [(), ()], 3, 1.0, seed=seed))
        assert len(segs) == 2
    assert len(server.bodies) == 4


async def test_open_breaker_routes_generate_to_the_fallback_model_with_the_reason() -> None:
    pytest.importorskip("genesis_ps.sampling.imh")
    from genesis_ps import SamplerParams, generate
    from genesis_ps.testing import ScriptedModel

    model, server, _ = chat_with_breaker(fail_max=1, reset=60.0)
    server.script.append(error(500, "down"))
    with pytest.raises(ProviderServerError):
        await model.extend(PROMPT, [()], 4, 1.0)
    backup = ScriptedModel(["from the fallback"])
    r = await generate(model, PROMPT, SamplerParams(method="mh", n_mcmc=2, max_new_tokens=4, seed=1),
                       fallback_model=backup)
    assert r.fallback == "circuit_open" and r.text == "from the fallback"
    assert len(server.bodies) == 1  # nothing reached the open provider

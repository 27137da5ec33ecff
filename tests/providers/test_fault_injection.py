"""Fault injection over real HTTP: every adapter with log-probs, its official SDK client and a server on
127.0.0.1 that answers 10 %, 30 % and 50 % of requests with a bad response or an HTTP 503.

Asserted, per adapter and rate: every request is answered (a power sample, or a recorded single-shot
fallback to a clean endpoint, with the error), no good response was refused, no power result was built
while a bad response got through (each bad response served during a power sample was refused: one
``MalformedResponseError`` each, counted in the metrics). When power sampling gives up, requests still in
flight are cancelled unread, so only then may fewer refusals than bad responses be counted.
``pytest -s`` prints the figures: requests answered / power results / bad power results per rate.
"""

from __future__ import annotations

from typing import Any

import pytest
from http_fakes import BAD_RESPONSES, FaultyHTTPServer
from provider_fakes import TEST_KEYS, Recorder

from genesis_ps import observability as obs
from genesis_ps.generation import generate
from genesis_ps.providers.resilience import BreakerPolicy, BreakerRegistry, ProviderRetryPolicy, Resilience
from genesis_ps.sampling import Prompt, SamplerParams

RATES = (0.1, 0.3, 0.5)
REQUESTS = 20
PROMPT = Prompt.user("The cat")
PARAMS = {
    "chat": SamplerParams(method="imh", alpha=2.0, n_mcmc=4, max_new_tokens=6),
    "gemini": SamplerParams(method="imh", alpha=2.0, n_mcmc=4, max_new_tokens=6),
    "completions": SamplerParams(method="mh", alpha=2.0, n_mcmc=2, block_size=3, max_new_tokens=6),
}
PROVIDER = {"chat": "openai", "completions": "openai-compatible", "gemini": "gemini"}


def _resilience(kind: str, tag: str) -> Resilience:
    rec = Recorder()
    return Resilience(PROVIDER[kind], f"fake-{tag}", sleep=rec.sleep, clock=rec.clock, breakers=BreakerRegistry(),
                      retry=ProviderRetryPolicy(max_retries=6, jitter_s=0.0, max_total_s=1e9),
                      breaker=BreakerPolicy(fail_max=10_000))  # fmt: skip


def _adapter(kind: str, server: FaultyHTTPServer, *, clean: bool) -> Any:
    res = _resilience(kind, "clean" if clean else "faulty")
    if kind in ("chat", "completions"):
        import openai

        client = openai.AsyncOpenAI(api_key=TEST_KEYS["openai"], base_url=server.url(clean) + "/v1", max_retries=0)
        if kind == "chat":
            from genesis_ps.providers.hosted.openai_chat import OpenAIChatModel

            return OpenAIChatModel(client, "gpt-fake", top_logprobs=2, resilience=res)
        from genesis_ps.providers.hosted.openai_completions import OpenAICompletionsModel

        return OpenAICompletionsModel(client, "toy", top_logprobs=3, resilience=res)
    from google import genai
    from google.genai import types

    from genesis_ps.providers.hosted.gemini import GeminiModel

    client = genai.Client(api_key=TEST_KEYS["gemini"], http_options=types.HttpOptions(base_url=server.url(clean)))
    return GeminiModel(client, "gemini-fake", top_logprobs=2, resilience=res)


async def _run(kind: str, rate: float) -> dict[str, Any]:
    server = FaultyHTTPServer(rate=rate, seed=int(rate * 100) + 1000 * list(PARAMS).index(kind))
    obs.reset_metrics()
    with server.running():
        model, clean = _adapter(kind, server, clean=False), _adapter(kind, server, clean=True)
        answered = power = bad_power = 0
        for i in range(REQUESTS):
            bad_before = server.bad_served()
            refused_before = model.resilience.stats.failures.get("MalformedResponseError", 0)
            result = await generate(model, PROMPT, PARAMS[kind].with_(seed=i), fallback_model=clean)
            bad = server.bad_served() - bad_before
            refused = model.resilience.stats.failures.get("MalformedResponseError", 0) - refused_before
            assert refused <= bad, "a good response was refused"
            answered += bool(result.text)
            if result.fallback is None:
                power += 1
                bad_power += refused != bad  # a bad response served during this sample was not refused
            else:  # power sampling gave up; requests still in flight were cancelled before they were read
                assert result.fallback.startswith("provider_error:") and result.extra["fallback_error"]
    refused = model.resilience.stats.failures.get("MalformedResponseError", 0)
    return {
        "answered": answered, "power": power, "bad_power": bad_power, "bad_served": server.bad_served(),
        "refused": refused, "http_503": server.served["http_503"],
        "server_errors": model.resilience.stats.failures.get("ProviderServerError", 0),
        "metric": obs.metric_value("genesis_ps_provider_errors_total", provider=PROVIDER[kind],
                                   error="MalformedResponseError"),
        "faults": {f: server.served[f] for f in BAD_RESPONSES},
    }  # fmt: skip


@pytest.mark.parametrize("kind", ["chat", "completions", "gemini"])
async def test_faulty_responses_never_become_power_samples(kind: str) -> None:
    rows = []
    for rate in RATES:
        r = await _run(kind, rate)
        rows.append((rate, r))
        print(f"\n{kind:<12} fault rate {rate:.0%}: requests answered {r['answered']}/{REQUESTS}, power results "
              f"{r['power']}, bad power results {r['bad_power']} (bad responses served {r['bad_served']}, refused "
              f"{r['refused']}; HTTP 503 served {r['http_503']}, retried {r['server_errors']})")  # fmt: skip
        assert r["answered"] == REQUESTS
        assert r["bad_power"] == 0
        assert r["refused"] == r["metric"] and r["refused"] <= r["bad_served"], r
        if r["power"] == REQUESTS:  # nothing was cancelled: every bad response was read and refused
            assert r["refused"] == r["bad_served"] and r["server_errors"] == r["http_503"], r
    assert all(r["bad_served"] > 0 for _, r in rows)

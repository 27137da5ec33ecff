"""Per-adapter specifics: requests as the providers document them, token modes, factories, and power
sampling end to end over the fake transports."""

from __future__ import annotations

import numpy as np
import pytest
from provider_fakes import EOS, VOCAB, FakeServer, ToyLM, ToyTokenizer, adapter

import genesis_ps
from genesis_ps.errors import CapabilityError, ConfigError, ModelNotAvailableError
from genesis_ps.providers import hosted
from genesis_ps.providers.registry import build_model
from genesis_ps.sampling import Prompt, SamplerParams

PROMPT = Prompt.user("Name an animal.", system="Be brief.")


async def test_chat_request_asks_for_logprobs_at_temperature_one() -> None:
    server = FakeServer("openai_chat")
    model = adapter("chat", server, top_logprobs=5)
    await model.extend(PROMPT, [(), ()], 7, 0.25, seed=9)
    for body in server.bodies:
        assert body["logprobs"] is True and body["top_logprobs"] == 5
        assert body["temperature"] == 1.0 and body["top_p"] == 1.0
        assert body["max_completion_tokens"] == 7
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert "temperature 1" in model.capabilities.notes


async def test_chat_strict_mode_refuses_other_temperatures() -> None:
    model = adapter("chat", temperature_mode="strict")
    with pytest.raises(CapabilityError):
        await model.extend(PROMPT, [()], 4, 0.5)
    assert (await model.extend(PROMPT, [()], 4, 1.0))[0].n_tokens >= 1


async def test_chat_logprobs_match_the_model_behind_the_api() -> None:
    lm = ToyLM()
    server = FakeServer("openai_chat", lm)
    model = adapter("chat", server)
    seg = (await model.extend(PROMPT, [()], 8, 1.0, seed=4))[0]
    toks, eos = lm.sample(lm.logp.shape[0] - 1, 8, 1.0, 4)
    prev, expected = lm.logp.shape[0] - 1, []
    for t in toks:
        if t != EOS:
            expected.append(lm.logp[prev, t])
        prev = t
    assert seg.logp == pytest.approx(expected) and seg.eos is eos


def test_constructor_arguments_are_validated() -> None:
    with pytest.raises(ConfigError) as info:
        adapter("chat", top_logprobs=21)
    assert info.value.param == "top_logprobs"
    with pytest.raises(ConfigError) as info:
        adapter("completions", approx="guess")
    assert info.value.param == "approx"
    with pytest.raises(ConfigError) as info:
        adapter("completions", token_mode="ids")
    assert info.value.param == "tokenizer"


async def test_completions_ids_mode_sends_token_ids_and_parses_them() -> None:
    server = FakeServer("openai_completions")
    model = adapter("completions-ids", server, top_logprobs=4)
    seg = (await model.extend(PROMPT, [(0, 2)], 5, 0.5, seed=1))[0]
    body = server.bodies[-1]
    prompt_ids = ToyTokenizer().encode("x")  # one id standing for the rendered prompt
    assert isinstance(body["prompt"], list) and body["prompt"][-2:] == [0, 2]
    assert len(body["prompt"]) == len(prompt_ids) + 2
    assert body["return_tokens_as_token_ids"] is True and body["logprobs"] == 4 and body["echo"] is False
    assert body["temperature"] == 0.5 and body["top_p"] == 1.0 and body["seed"] == 1
    assert all(0 <= t <= EOS for t in seg.tokens)
    assert seg.eos == (seg.tokens[-1] == EOS)
    assert model.capabilities.eos_token_id == EOS
    assert model.prompt_length(PROMPT) == 1


async def test_completions_text_mode_interns_tokens_and_continues_with_text() -> None:
    server = FakeServer("openai_completions")
    model = adapter("completions", server)
    first = (await model.extend(PROMPT, [()], 3, 1.0, seed=2))[0]
    keep = first.tokens[:2]
    await model.extend(PROMPT, [keep], 3, 1.0, seed=3)
    prompt_text = server.bodies[-1]["prompt"]
    assert isinstance(prompt_text, str) and prompt_text.endswith(model.decode(keep))
    assert "re-tokenised" in model.capabilities.notes
    with pytest.raises(ConfigError) as info:
        await model.extend(PROMPT, [(999,)], 3, 1.0)
    assert info.value.param == "prefixes"


async def test_completions_logq_is_flagged_approximate_below_temperature_one() -> None:
    model = adapter("completions", top_logprobs=7)  # the toy vocabulary has 7 tokens: top-k is everything
    seg = (await model.extend(PROMPT, [()], 6, 0.5, seed=5))[0]
    assert seg.approx_logq
    lm = ToyLM()
    prev = lm.logp.shape[0] - 1
    exact = []
    for t in seg.tokens:  # text-mode ids are the adapter's own; map back through the token strings
        s = model._strings[t]
        toy = EOS if s == "</s>" else VOCAB.index(s)
        row = lm.logp[prev] / 0.5
        exact.append(row[toy] - np.logaddexp.reduce(row))
        prev = toy
    assert seg.logq == pytest.approx(exact, abs=1e-9)  # with k = |V| the approximation is exact


async def test_gemini_request_shape() -> None:
    server = FakeServer("gemini")
    model = adapter("gemini", server, top_logprobs=3)
    await model.extend(PROMPT, [()], 5, 0.25, seed=2)
    body = server.bodies[-1]
    cfg = body["generationConfig"]
    assert cfg["responseLogprobs"] is True and cfg["logprobs"] == 3 and cfg["temperature"] == 1.0
    assert cfg["maxOutputTokens"] == 5 and cfg["candidateCount"] == 1 and cfg["seed"] == 2
    assert body["systemInstruction"]["parts"][0]["text"] == "Be brief."
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Name an animal."}]}]


async def test_anthropic_prefill_system_and_no_logprobs() -> None:
    server = FakeServer("anthropic")
    model = adapter("anthropic", server)
    prompt = Prompt(messages=(("system", "Be brief."), ("user", "Name an animal."), ("assistant", "The")))
    c = await model.generate(prompt, max_new_tokens=4, temperature=1.0)
    body = server.bodies[-1]
    assert body["system"] == "Be brief." and body["messages"][-1] == {"role": "assistant", "content": "The"}
    assert "temperature" not in body
    assert c.logp is None and c.tokens_generated == c.usage["output_tokens"] and c.finish_reason in ("stop", "length")
    await model.generate(prompt, max_new_tokens=4, temperature=0.3)
    assert server.bodies[-1]["temperature"] == 0.3
    with pytest.raises(ConfigError) as info:
        await model.generate(prompt, max_new_tokens=4, temperature=1.5)
    assert info.value.param == "temperature"


def test_user_built_client_retries_are_turned_off() -> None:
    model = adapter("chat", client_retries=3)
    assert model._client.max_retries == 0
    model = adapter("anthropic", client_retries=2)
    assert model._client.max_retries == 0


# --- factories -------------------------------------------------------------------------------------

def test_factories_need_keys_and_name_them() -> None:
    with pytest.raises(ConfigError) as info:
        hosted.build("openai", environ={})
    assert info.value.param == "OPENAI_API_KEY"
    with pytest.raises(ConfigError) as info:
        hosted.build("anthropic", environ={})
    assert info.value.param == "ANTHROPIC_API_KEY"
    with pytest.raises(ConfigError) as info:
        hosted.build("openai-compatible", model="m", environ={})
    assert info.value.param == "base_url"
    with pytest.raises(ConfigError) as info:
        hosted.build("openai-compatible", base_url="http://localhost:8000/v1", environ={})
    assert info.value.param == "model"


def test_factories_build_clients_without_sdk_retries() -> None:
    env = {"OPENAI_API_KEY": "sk-factory-test-123456", "GEMINI_API_KEY": "AIzaFactoryTest123456",
           "ANTHROPIC_API_KEY": "sk-ant-factory-123456", "POWER_SAMPLING_TIMEOUT_S": "12"}
    chat = hosted.build("openai", environ=env)
    assert chat.model == hosted.DEFAULT_MODELS["openai"] and chat._client.max_retries == 0
    assert chat.resilience.timeout.per_call_s == 12.0
    comp = hosted.build("openai-compatible", model="served", base_url="http://localhost:8000/v1", environ=env)
    assert comp.capabilities.prefix_continuation and comp._client.max_retries == 0
    gem = hosted.build("gemini", environ=env)
    assert gem.capabilities.prefix_continuation is False
    claude = hosted.build("anthropic", model="claude-x", environ=env)
    assert claude.model == "claude-x" and claude._client.max_retries == 0
    for m in (chat, comp, gem, claude):
        assert "factory" not in repr(m)


def test_registry_routes_hosted_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-registry-123456")
    model = build_model("anthropic")
    assert model.provider == "anthropic" and model.capabilities.logprobs == "none"


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "anthropic", None)
    with pytest.raises(ModelNotAvailableError, match=r"genesis_ps\[anthropic\]"):
        hosted.build("anthropic", environ={"ANTHROPIC_API_KEY": "sk-ant-x-123456"})


# --- power sampling end to end over the fake transports ---------------------------------------------

@pytest.fixture
def samplers() -> None:
    pytest.importorskip("genesis_ps.sampling.mh")
    pytest.importorskip("genesis_ps.sampling.smc")
    pytest.importorskip("genesis_ps.sampling.imh")


@pytest.mark.parametrize("kind", ["chat", "gemini"])
async def test_power_sample_imh_end_to_end(kind: str, samplers: None) -> None:
    server = FakeServer({"chat": "openai_chat", "gemini": "gemini"}[kind])
    model = adapter(kind, server)
    r = await genesis_ps.power_sample(model, "Name an animal.", SamplerParams(method="mh", n_mcmc=4, max_new_tokens=6,
                                                                               alpha=4.0, seed=3))
    assert r.method == "imh" and r.fallback is None and r.provider == model.provider
    # one extend call carries all proposals; each is one HTTP request, counted by the adapter
    assert model.usage.requests == len(server.bodies) == r.extra["proposals_requested"] == 5
    assert r.tokens_generated >= r.tokens_returned and r.text
    assert 0.0 <= (r.acceptance_rate or 0.0) <= 1.0 and not r.approx_logprobs


@pytest.mark.parametrize("method", ["mh", "smc"])
@pytest.mark.parametrize("kind", ["completions", "completions-ids"])
async def test_power_sample_mh_and_smc_on_completions(kind: str, method: str, samplers: None) -> None:
    server = FakeServer("openai_completions")
    model = adapter(kind, server)
    p = SamplerParams(method=method, n_mcmc=2, block_size=3, max_new_tokens=6, n_particles=3, alpha=2.0, seed=5)
    r = await genesis_ps.power_sample(model, "Name an animal.", p)
    assert r.method == method and r.fallback is None
    assert r.approx_logprobs  # τ = 1/α ≠ 1: log q came from the top-k
    assert r.requests >= 1 and r.tokens_generated >= r.tokens_returned >= 1
    assert any(isinstance(b["prompt"], (list, str)) for b in server.bodies)


async def test_power_sample_on_anthropic_falls_back_with_reason(samplers: None) -> None:
    server = FakeServer("anthropic")
    model = adapter("anthropic", server)
    r = await genesis_ps.generate(model, "Name an animal.", SamplerParams(method="mh", max_new_tokens=6, seed=1))
    assert r.fallback == "no_logprobs" and r.method == "single" and r.requested_method == "mh"
    assert len(server.bodies) == 1 and r.text


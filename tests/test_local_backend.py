"""The local transformers backend on the embedded SmolLM2: exact log p / log q, KV reuse, batching, EOS,
seeds, context checks, and power sampling end to end. Every reference value comes from a fresh forward
pass of the same network, computed here independently of the backend's own code."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from genesis_ps import SamplerParams, power_sample  # noqa: E402
from genesis_ps.errors import ConfigError, PromptTooLongError  # noqa: E402
from genesis_ps.providers.local.embedded import load_embedded  # noqa: E402
from genesis_ps.providers.local.model import LocalModel  # noqa: E402
from genesis_ps.sampling.protocol import Prompt  # noqa: E402

PROMPT = Prompt.user("Write a short poem about the sea.")
ATOL = 1e-4


@pytest.fixture(scope="module")
def model() -> LocalModel:
    return load_embedded()


def fresh_logits(m: LocalModel, prompt: Prompt, tokens: list[int]) -> tuple[int, torch.Tensor]:
    """fp32 logits predicting each of ``tokens``, from one forward pass of prompt + tokens (no cache)."""
    p_ids = list(m.encode_prompt(prompt))
    with torch.inference_mode():
        x = torch.tensor([p_ids + tokens])
        logits = m.hf_model(input_ids=x, use_cache=False).logits[0].float()
    return len(p_ids), logits[len(p_ids) - 1 : len(p_ids) - 1 + len(tokens)]


def picked(dist: torch.Tensor, tokens: list[int]) -> list[float]:
    return dist.gather(-1, torch.tensor(tokens).view(-1, 1)).view(-1).tolist()


def assert_close(a: list[float] | tuple[float, ...], b: list[float], atol: float = ATOL) -> None:
    assert len(a) == len(b)
    worst = max(abs(x - y) for x, y in zip(a, b, strict=True))
    assert worst < atol, worst


def rescore_ok(m: LocalModel, prompt: Prompt, prefix: list[int], seg: object, temperature: float) -> None:
    toks = list(seg.tokens)  # type: ignore[attr-defined]
    _, lg = fresh_logits(m, prompt, prefix + toks)
    lg = lg[len(prefix) :]
    assert_close(seg.logp, picked(torch.log_softmax(lg, -1), toks))  # type: ignore[attr-defined]
    assert_close(seg.logq, picked(torch.log_softmax(lg / temperature, -1), toks))  # type: ignore[attr-defined]


def test_capabilities(model: LocalModel) -> None:
    caps = model.capabilities
    assert caps.logprobs == "exact" and caps.prefix_continuation and caps.max_batch >= 8
    assert caps.eos_token_id == model.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert caps.context_length == model.hf_model.config.max_position_embeddings
    assert model._engine.fast is not None  # the lean Llama forward is the one under test here


async def test_lean_forward_agrees_with_the_model_forward(model: LocalModel) -> None:
    plain = LocalModel(model.hf_model, model.tokenizer, fast=False)  # same cache policy => same batch shapes
    assert plain._engine.fast is None
    a = await model.extend(PROMPT, [(), (1, 2, 3)], [10, 6], 0.9, seed=51)
    b = await plain.extend(PROMPT, [(), (1, 2, 3)], [10, 6], 0.9, seed=51)
    for x, y in zip(a, b, strict=True):
        assert x.tokens == y.tokens
        assert_close(x.logp, list(y.logp))
        assert_close(x.logq, list(y.logq))


async def test_logp_logq_match_a_fresh_forward_at_temperature(model: LocalModel) -> None:
    seg = (await model.extend(PROMPT, [()], 16, 0.7, seed=11))[0]
    assert seg.n_tokens >= 1 and not seg.approx_logq
    rescore_ok(model, PROMPT, [], seg, 0.7)
    # logq is really the tempered distribution, not log p: they differ
    assert max(abs(p - q) for p, q in zip(seg.logp, seg.logq, strict=True)) > 1e-3


async def test_logq_reflects_top_k_truncation(model: LocalModel) -> None:
    m = LocalModel(model.hf_model, model.tokenizer, top_k=5, cache_bytes=0)
    assert "top_k=5" in m.capabilities.notes
    seg = (await m.extend(PROMPT, [()], 12, 1.5, seed=3))[0]
    toks = list(seg.tokens)
    _, lg = fresh_logits(m, PROMPT, toks)
    z = lg / 1.5
    kth = torch.topk(z, 5, dim=-1).values[:, -1:]
    trunc = torch.log_softmax(z.masked_fill(z < kth, float("-inf")), -1)
    assert_close(seg.logq, picked(trunc, toks))
    assert_close(seg.logp, picked(torch.log_softmax(lg, -1), toks))
    ranks = (lg > lg.gather(-1, torch.tensor(toks).view(-1, 1))).sum(-1)
    assert int(ranks.max()) < 5  # every sampled token is among the top 5


async def test_logq_reflects_top_p_truncation(model: LocalModel) -> None:
    m = LocalModel(model.hf_model, model.tokenizer, top_p=0.5, cache_bytes=0)
    seg = (await m.extend(PROMPT, [()], 8, 1.0, seed=5))[0]
    toks = list(seg.tokens)
    _, lg = fresh_logits(m, PROMPT, toks)
    expect = []
    for row, t in zip(lg, toks, strict=True):
        probs = torch.softmax(row, -1)
        order = torch.argsort(probs, descending=True)
        kept, mass = [], 0.0
        for i in order.tolist():
            kept.append(i)
            mass += float(probs[i])
            if mass >= 0.5:
                break
        assert t in kept
        expect.append(math.log(float(probs[t]) / float(probs[kept].sum())))
    assert_close(seg.logq, expect)
    assert m.score(PROMPT, toks, 1.0) == pytest.approx(seg.logq, abs=ATOL)


async def test_resampling_from_a_cut_reuses_the_kv_cache(model: LocalModel) -> None:
    first = (await model.extend(PROMPT, [()], 24, 0.5, seed=21))[0]
    assert first.n_tokens > 12, "need a sequence long enough to cut"
    cut = list(first.tokens[:10])
    before_fwd, before_reused = model.tokens_forwarded, model.kv_cache.reused_tokens
    seg = (await model.extend(PROMPT, [cut], 16, 0.5, seed=22))[0]
    # prompt + kept prefix were not re-encoded: one prefill token, then one token per further step
    assert model.tokens_forwarded - before_fwd == seg.n_tokens
    assert model.kv_cache.reused_tokens - before_reused >= model.prompt_length(PROMPT) + len(cut) - 1
    rescore_ok(model, PROMPT, cut, seg, 0.5)


async def test_batched_extension_equals_unbatched_scores(model: LocalModel) -> None:
    base = (await model.extend(PROMPT, [()], 20, 1.0, seed=31))[0]
    prefixes = [list(base.tokens[:5]), [], list(base.tokens[:15]), list(base.tokens[:5])]
    limits = [12, 3, 7, 1]
    segs = await model.extend(PROMPT, prefixes, limits, 0.8, seed=32)
    assert len(segs) == 4
    for pre, lim, seg in zip(prefixes, limits, segs, strict=True):
        assert 1 <= seg.n_tokens <= lim
        assert seg.eos or seg.n_tokens == lim
        rescore_ok(model, PROMPT, pre, seg, 0.8)
    # the same rows with no cache at all (every row prefilled from scratch, padded batch)
    cold = LocalModel(model.hf_model, model.tokenizer, cache_bytes=0)
    for pre, seg in zip(prefixes, await cold.extend(PROMPT, prefixes, limits, 0.8, seed=33), strict=True):
        rescore_ok(cold, PROMPT, pre, seg, 0.8)


async def test_eos_ends_the_segment_and_is_included(model: LocalModel) -> None:
    prompt = Prompt.user("Reply with exactly one word: yes or no. Is water wet?")
    c = await model.generate(prompt, max_new_tokens=40, temperature=0)
    assert c.finish_reason == "stop", c.text
    segs = await model.extend(prompt, [()] * 4, 40, 0.25, seed=41)
    eos = model.capabilities.eos_token_id
    assert any(s.eos for s in segs)
    for s in segs:
        assert eos not in s.tokens[:-1]
        assert s.eos == (s.tokens[-1] == eos)
        if s.eos:
            assert "<|im_end|>" not in model.decode(s.tokens)
            rescore_ok(model, prompt, [], s, 0.25)


async def test_seeded_calls_reproduce(model: LocalModel) -> None:
    a = (await model.extend(PROMPT, [()], 12, 1.0, seed=7))[0]
    b = (await model.extend(PROMPT, [()], 12, 1.0, seed=7))[0]  # this one starts from cached KV
    assert a.tokens == b.tokens
    assert_close(a.logp, list(b.logp))
    g1 = await model.generate(PROMPT, max_new_tokens=10, temperature=0)
    g2 = await model.generate(PROMPT, max_new_tokens=10, temperature=0)
    assert g1.text == g2.text and g1.tokens_generated == 10


async def test_prompt_too_long_is_rejected_before_model_work(model: LocalModel) -> None:
    small = LocalModel(model.hf_model, model.tokenizer, context_length=64)
    n = small.prompt_length(PROMPT)
    assert n is not None and n < 64
    with pytest.raises(PromptTooLongError) as err:
        await power_sample(small, PROMPT, SamplerParams(max_new_tokens=64 - n + 1, block_size=8, seed=0))
    assert err.value.param == "prompt"
    with pytest.raises(PromptTooLongError):
        await small.extend(PROMPT, [[1] * 10], 64 - n - 5, 1.0)
    assert small.tokens_forwarded == 0


async def test_bad_arguments_name_the_parameter(model: LocalModel) -> None:
    with pytest.raises(ConfigError) as e1:
        await model.extend(PROMPT, [()], 4, 0.0)
    assert e1.value.param == "temperature"
    with pytest.raises(ConfigError) as e2:
        await model.extend(PROMPT, [(), ()], [4], 1.0)
    assert e2.value.param == "max_new_tokens"
    with pytest.raises(ConfigError) as e3:
        LocalModel(model.hf_model, model.tokenizer, top_k=0)
    assert e3.value.param == "top_k"


@pytest.mark.slow
@pytest.mark.parametrize("method", ["mh", "smc"])
async def test_power_sample_end_to_end(model: LocalModel, method: str) -> None:
    params = SamplerParams(method=method, alpha=4.0, block_size=6, max_new_tokens=12, n_mcmc=2, n_particles=3, seed=5)
    r = await power_sample(model, PROMPT, params)
    assert r.method == method and r.fallback is None and r.provider == "embedded"
    assert 1 <= r.tokens_returned <= 12 and r.tokens_generated >= r.tokens_returned
    assert r.cost_multiplier == r.tokens_generated / r.tokens_returned
    # the recorded Σ log p is the network's own (fresh forward), not an estimate
    assert r.logp_sum == pytest.approx(sum(model.score(PROMPT, r.tokens)), abs=1e-3)
    if method == "mh":
        assert r.proposals == 4 and r.acceptance_rate is not None
    else:
        assert len(r.ess_history) >= 1

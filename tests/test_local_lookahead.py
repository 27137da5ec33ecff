"""The local wing's entropies, decision-point stops and copy-on-write KV sharing, checked against fresh
forward passes of the embedded SmolLM2; decision-point MH and TPS end to end on it."""

from __future__ import annotations

import asyncio

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from genesis_ps import SamplerParams, power_sample  # noqa: E402
from genesis_ps.providers.local.embedded import load_embedded  # noqa: E402
from genesis_ps.providers.local.model import LocalModel  # noqa: E402
from genesis_ps.sampling.protocol import LookaheadModel, Prompt  # noqa: E402

PROMPT = Prompt.user("Write a short poem about the sea.")


@pytest.fixture(scope="module")
def model() -> LocalModel:
    return load_embedded()


def fresh(m: LocalModel, tokens: list[int]) -> torch.Tensor:
    """Base log-probs predicting positions len(prompt)..len(prompt)+len(tokens) (one more than tokens)."""
    p_ids = list(m.encode_prompt(PROMPT))
    with torch.inference_mode():
        logits = m.hf_model(input_ids=torch.tensor([p_ids + tokens]), use_cache=False).logits[0].float()
    return torch.log_softmax(logits[len(p_ids) - 1 :], -1)


def entropy(lp: torch.Tensor) -> list[float]:
    return (-(lp.exp() * lp).sum(-1)).tolist()


async def test_entropies_are_the_base_models_at_each_sampled_position(model: LocalModel) -> None:
    assert model.capabilities.entropy == "exact" and model.capabilities.lookahead
    assert isinstance(model, LookaheadModel)
    seg = (await model.extend(PROMPT, [()], 12, 0.5, seed=0))[0]
    want = entropy(fresh(model, list(seg.tokens))[: seg.n_tokens])
    assert max(abs(a - b) for a, b in zip(seg.entropy, want, strict=True)) < 1e-3


async def test_extend_until_stops_before_the_first_decision_point(model: LocalModel) -> None:
    base = (await model.extend(PROMPT, [()], 16, 0.3, seed=1))[0]
    ents = entropy(fresh(model, list(base.tokens)))
    theta = sorted(ents[:16])[-3]  # some position among the first 16 reaches it
    seg = (await model.extend_until(PROMPT, [()], 16, 0.3, stop_entropy=theta, top_n=3, seed=1))[0]
    k = seg.n_tokens
    assert seg.tokens == base.tokens[:k]  # same seed, same draws up to the stop
    lp = fresh(model, list(seg.tokens))[k]
    assert seg.next_entropy == pytest.approx(entropy(lp[None])[0], abs=1e-3) and seg.next_entropy >= theta
    assert all(e < theta for e in ents[:k])
    top = lp.topk(3)
    assert [t for t, _ in seg.next_top] == top.indices.tolist()
    assert [v for _, v in seg.next_top] == pytest.approx(top.values.tolist(), abs=1e-4)


async def test_rows_sharing_a_stored_prefix_share_its_kv_and_score_the_same(model: LocalModel) -> None:
    a, b = await model.extend(PROMPT, [(), ()], 10, 0.8, seed=3)
    prefixes = [a.tokens, a.tokens, a.tokens, b.tokens]
    outs = {}
    for share in (False, True):
        model._engine.share_kv = share
        assert model.kv_cache is not None
        model.kv_cache.clear()
        await model.extend(PROMPT, [a.tokens[:-1], b.tokens[:-1]], 1, 0.8, seed=4)  # store both prefixes
        before = model._engine.shared_batches
        model._engine.kv_bytes_peak = 0
        outs[share] = (await model.extend(PROMPT, prefixes, 8, 0.8, seed=5), model._engine.kv_bytes_peak,
                       model._engine.shared_batches - before)  # fmt: skip
    model._engine.share_kv = True
    (plain, plain_peak, n0), (cow, cow_peak, n1) = outs[False], outs[True]
    assert n0 == 0 and n1 == 1 and cow_peak < plain_peak
    for pre, s1, s2 in zip(prefixes, plain, cow, strict=True):
        assert s1.tokens == s2.tokens
        lp = fresh(model, list(pre) + list(s2.tokens))[len(pre) : len(pre) + s2.n_tokens]
        want = lp.gather(-1, torch.tensor(s2.tokens).view(-1, 1)).view(-1).tolist()
        assert max(abs(x - y) for x, y in zip(s2.logp, want, strict=True)) < 1e-3


def test_decision_point_mh_and_tps_end_to_end(model: LocalModel) -> None:
    p = SamplerParams(method="mh", cuts="entropy", n_tries=2, alpha=4.0, n_mcmc=2, block_size=8, max_new_tokens=16,
                      seed=0)  # fmt: skip
    r = asyncio.run(power_sample(model, PROMPT, p))
    assert r.method == "mh" and r.extra["cuts"] == "entropy" and r.proposals == 4 and r.tokens_returned <= 16
    t = asyncio.run(power_sample(model, PROMPT, p.with_(method="tps", decision_entropy=2.0, horizon=4)))
    assert t.method == "tps" and t.tokens_returned <= 16 and t.tokens_generated >= t.tokens_returned
    assert t.extra["decision_points"] >= 1 and t.logp_sum is not None
    # tokens taken from a rollout join the decisions and the drawn tokens exactly: log p is a fresh score's
    assert t.extra["reuse_rollouts"] and t.extra["reused_tokens"] > 0
    assert t.logp_sum == pytest.approx(sum(model.score(PROMPT, t.tokens)), abs=1e-2)


async def test_exclude_first_skips_the_token_and_reports_the_unrestricted_log_q(model: LocalModel) -> None:
    assert model.capabilities.exclude_first
    prefix = list((await model.extend(PROMPT, [()], 6, 0.5, seed=3))[0].tokens[:4])
    top = int(fresh(model, prefix)[-1].argmax())  # the likeliest next token: at τ = 0.1 it is nearly certain
    segs = await model.extend(PROMPT, [prefix] * 6 + [prefix], 3, 0.1, seed=4, exclude_first=[top] * 6 + [None])
    assert all(s.tokens[0] != top for s in segs[:6])
    assert segs[6].tokens[0] == top  # the row without an exclusion draws as before
    for s in segs[:6]:  # log q is the proposal's own, not the renormalised one's
        want = model.score(PROMPT, prefix + list(s.tokens[:1]), temperature=0.1)[-1]
        assert abs(s.logq[0] - want) < 1e-3


@pytest.mark.parametrize("moves,rho", [("plain", 1.0), ("decision", 0.0), ("differ", 0.0)])
def test_decision_point_mh_moves_run_on_the_embedded_model(model: LocalModel, moves: str, rho: float) -> None:
    p = SamplerParams(method="mh", alpha=4.0, max_new_tokens=16, block_size=8, n_mcmc=3, cuts="entropy",
                      change_at_cut=rho, moves=moves, early_reject=moves == "differ", seed=0)  # type: ignore[arg-type]  # fmt: skip
    r = asyncio.run(power_sample(model, PROMPT, p))
    assert r.extra["change_at_cut"] == rho and r.extra["moves"] == moves
    assert r.proposals == 6 and r.tokens_returned > 0
    # the returned text's log p is what the model scores afresh (the kept and re-drawn pieces join exactly)
    assert r.logp_sum == pytest.approx(sum(model.score(PROMPT, r.tokens)), abs=1e-2)


def test_doctor_facts_for_the_local_wing_are_what_the_model_declares(model: LocalModel) -> None:
    from genesis_ps.cli.doctor import PROVIDER_FACTS

    for name in ("embedded", "local"):
        for field in ("logprobs", "prefix_continuation", "entropy", "lookahead", "exclude_first"):
            assert getattr(model.capabilities, field) == PROVIDER_FACTS[name][field], (name, field)

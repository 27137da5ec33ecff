"""The power_sample / single_shot pair: every fallback reason takes the fallback edge and is recorded;
flags off means no sampler call; rollout is deterministic and close to the configured share."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from genesis_ps.errors import CircuitOpenError, ConfigError
from genesis_ps.graph import ChatModelAdapter, GenerationPair, in_rollout, power_decision, rollout_bucket
from genesis_ps.sampling import Prompt, SamplerParams, Segment
from genesis_ps.settings import Settings
from genesis_ps.testing import ScriptedModel

ON = {"POWER_SAMPLING_ENABLED": "1", "POWER_SAMPLING_HTDAG_ENABLED": "1"}
P = SamplerParams(method="imh", n_mcmc=3, max_new_tokens=16, seed=3)
PROMPT = Prompt.user("Say something")


class CountingModel(ScriptedModel):
    """ScriptedModel that counts sampler (extend) calls; ``extend_error`` makes only sampling fail."""

    def __init__(self, *a: object, extend_error: BaseException | None = None, **kw: object) -> None:
        super().__init__(*a, **kw)  # type: ignore[arg-type]
        self.extend_calls = 0
        self.extend_error = extend_error

    async def extend(
        self,
        prompt: Prompt,
        prefixes: Sequence[Sequence[int]],
        max_new_tokens: int | Sequence[int],
        temperature: float,
        *,
        seed: int | None = None,
    ) -> list[Segment]:
        self.extend_calls += 1
        if self.extend_error is not None:
            raise self.extend_error
        return await super().extend(prompt, prefixes, max_new_tokens, temperature, seed=seed)


async def test_flags_on_power_samples_without_fallback() -> None:
    m = CountingModel(["a b c"])
    r = await GenerationPair(m, settings=Settings.from_env(ON))(PROMPT, params=P, request_id="r1")
    assert r.fallback is None and r.method == "imh" and m.extend_calls >= 1
    assert r.tokens_generated == 4 * 3  # 4 proposals (initial + n_mcmc) of 3 tokens each, as measured


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({}, "flag_off"),
        ({"POWER_SAMPLING_ENABLED": "1"}, "flag_off"),  # master on, layer off
        ({"POWER_SAMPLING_HTDAG_ENABLED": "1"}, "flag_off"),  # layer on, master off
        ({**ON, "POWER_SAMPLING_ROLLOUT_PERCENT": "0"}, "rollout"),
    ],
)
async def test_flag_and_rollout_fallbacks_make_no_sampler_call(env: dict[str, str], reason: str) -> None:
    m = CountingModel(["hello"])
    r = await GenerationPair(m, settings=Settings.from_env(env))(PROMPT, params=P, request_id="r1")
    assert r.fallback == reason
    assert r.method == "single" and r.requested_method == "imh"
    assert m.extend_calls == 0
    assert r.text == "hello"


async def test_no_logprobs_takes_fallback_edge() -> None:
    m = CountingModel(["hello"], logprobs="none")
    r = await GenerationPair(m, settings=Settings.from_env(ON))(PROMPT, params=P)
    assert r.fallback == "no_logprobs" and m.extend_calls == 0


async def test_langchain_chat_model_serves_single_shot_and_records_no_logprobs() -> None:
    chat = ChatModelAdapter(FakeListChatModel(responses=["from the chat model"]))
    r = await GenerationPair(chat, settings=Settings.from_env(ON))(PROMPT, params=P)
    assert r.text == "from the chat model" and r.fallback == "no_logprobs" and r.provider == "langchain"


async def test_circuit_open_falls_back_to_the_fallback_model() -> None:
    m = CountingModel(["never"], fail_with=CircuitOpenError("breaker open", provider="scripted"))
    fb = ScriptedModel(["fallback text"])
    r = await GenerationPair(m, settings=Settings.from_env(ON), fallback_model=fb)(PROMPT, params=P)
    assert r.fallback == "circuit_open" and r.text == "fallback text"
    assert "CircuitOpenError" in r.extra["fallback_error"]


async def test_sampling_exception_falls_back_and_is_recorded() -> None:
    m = CountingModel(["plain"], extend_error=RuntimeError("sampler bug"))
    r = await GenerationPair(m, settings=Settings.from_env(ON))(PROMPT, params=P)
    assert r.fallback == "sampling_error:RuntimeError" and r.text == "plain" and m.extend_calls == 1


async def test_spent_budget_takes_fallback_edge() -> None:
    s = Settings.from_env({**ON, "POWER_SAMPLING_BUDGET_TOKENS": "20"})
    m = CountingModel(["x y"])
    pair = GenerationPair(m, settings=s)
    r = await pair(PROMPT, params=P, spent_tokens=20)
    assert r.fallback == "budget" and m.extend_calls == 0
    r2 = await pair(PROMPT, params=P, spent_tokens=0)  # room for one proposal of max_new_tokens=16 at a time
    assert r2.fallback is None and r2.tokens_generated <= 20 + 2  # the sampler stops at the budget
    r3 = await pair(PROMPT, params=P, spent_tokens=10)  # 10 left: not one proposal of 16 fits
    assert r3.fallback == "budget"


async def test_explicit_power_false_and_single_method() -> None:
    m = CountingModel(["x"])
    pair = GenerationPair(m, settings=Settings.from_env(ON))
    assert (await pair(PROMPT, params=P, power=False)).fallback == "disabled"
    r = await pair(PROMPT, params=P.with_(method="single"))
    assert r.fallback is None and m.extend_calls == 0


async def test_config_errors_raise_rather_than_fall_back() -> None:
    m = CountingModel(["x"])
    pair = GenerationPair(m, settings=Settings.from_env(ON))
    with pytest.raises(ConfigError):
        await pair(PROMPT, params=P.with_(selection="best_evaluator"))  # needs an evaluator


def test_rollout_is_deterministic_and_close_to_the_share() -> None:
    ids = [f"request-{i}" for i in range(4000)]
    assert [rollout_bucket(i) for i in ids[:50]] == [rollout_bucket(i) for i in ids[:50]]
    assert all(0 <= rollout_bucket(i) < 100 for i in ids)
    for pct in (10.0, 25.0, 50.0, 90.0):
        share = sum(in_rollout(i, pct) for i in ids) / len(ids)
        assert abs(share - pct / 100) < 0.03, (pct, share)
    assert all(in_rollout(i, 100) for i in ids[:100]) and not any(in_rollout(i, 0) for i in ids[:100])
    # the same request lands on the same side, and a wider rollout only adds requests
    assert all(in_rollout(i, 50) <= in_rollout(i, 60) for i in ids)
    s = Settings.from_env({**ON, "POWER_SAMPLING_ROLLOUT_PERCENT": "50"})
    decisions = {i: power_decision(s, "htdag", i) for i in ids[:200]}
    assert {d[1] for d in decisions.values()} == {None, "rollout"}
    assert decisions == {i: power_decision(s, "htdag", i) for i in ids[:200]}


def test_graph_and_planner_public_surfaces() -> None:
    import genesis_ps.graph as graph
    import genesis_ps.planners as planners

    assert {"build_graph", "GraphContext", "GraphState", "RouteRegistry", "TaskOutcome", "register_route",
            "GenerationPair", "ChatModelAdapter", "in_rollout"} <= set(graph.__all__)  # fmt: skip
    assert {"decompose", "parse_dag", "ParseOutcome", "Decomposition", "Task", "TaskDAG",
            "heuristic_decompose"} <= set(planners.__all__)  # fmt: skip
    for mod in (graph, planners):
        for name in mod.__all__:
            assert hasattr(mod, name), name


async def test_plan_quality_tilt_reaches_the_sampler() -> None:
    import json

    from genesis_ps.graph import build_graph
    from genesis_ps.graph.routes import RouteRegistry

    good = json.dumps({"tasks": [{"id": "1", "description": "Write the pages", "depends_on": []},
                                 {"id": "2", "description": "Deploy the site", "depends_on": ["1"]}]})  # fmt: skip
    on = Settings.from_env({**ON, "POWER_SAMPLING_HTDAG_METHOD": "imh", "POWER_SAMPLING_HTDAG_N_MCMC": "2"})
    plain = RouteRegistry(builtin={})
    model = ScriptedModel(lambda p: "an answer" if "Your task:" in p.flat_text() else good)
    out = await build_graph(model, settings=on, plan_lam=2.0, routes=plain).ainvoke({"request": "Make a website"})
    plan = out["summary"]["plan"]
    assert plan["fallback"] is None and out["summary"]["fallbacks"] == []
    # the tilt reached the sampler: the plan's generation records the evaluator's reward of its text
    gen = plan["generations"][0]
    assert gen["method"] == "imh" and gen["reward"] == pytest.approx(plan["quality"])
    with pytest.raises(ConfigError, match="plan_lam"):
        build_graph(ScriptedModel(["x"]), settings=on, plan_lam=-1.0)

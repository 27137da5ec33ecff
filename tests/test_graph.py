"""The whole graph: parallel waves, routes, failures skip dependents, SQLite resume, parent embedding."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypedDict

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy

from genesis_ps.errors import ConfigError, ProviderConnectionError
from genesis_ps.graph import GraphContext, RouteRegistry, TaskOutcome, build_graph
from genesis_ps.graph.checkpoints import open_checkpointer
from genesis_ps.graph.routes import RouteContext
from genesis_ps.planners import Task
from genesis_ps.sampling import Prompt
from genesis_ps.settings import Settings
from genesis_ps.testing import ScriptedModel

PLAN = json.dumps(
    {
        "tasks": [
            {"id": "1", "description": "Write the pages", "type": "writing", "depends_on": []},
            {"id": "2", "description": "Build the contact form", "type": "code", "depends_on": []},
            {"id": "3", "description": "Deploy the site", "type": "general", "depends_on": ["1", "2"]},
            {"id": "4", "description": "Announce the launch", "type": "writing", "depends_on": ["3"]},
        ]
    }
)
NO_RETRY = RetryPolicy(max_attempts=1)


def plain() -> RouteRegistry:
    """Every task type on the default route (the SICA / SE-Darwin routes are tested by their owners)."""
    return RouteRegistry(builtin={})


def task_of(prompt: Prompt) -> str | None:
    for line in prompt.flat_text().splitlines():
        if line.startswith("Your task: "):
            return line[len("Your task: ") :]
    return None


def responder(prompt: Prompt) -> str:
    t = task_of(prompt)
    return PLAN if t is None else f"done: {t}"


def by_id(out: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in out["tasks"]}


async def test_run_executes_waves_and_collects_outputs() -> None:
    m = ScriptedModel(responder)
    g = build_graph(m, settings=Settings(), routes=plain())
    out = await g.ainvoke({"request": "Make a website"})
    assert [t["status"] for t in out["tasks"]] == ["done"] * 4
    assert by_id(out)["3"]["output"] == "done: Deploy the site"
    s = out["summary"]
    assert s["done"] == 4 and out["answer"] == "done: Announce the launch"
    assert s["fallback_reasons"] == {"flag_off": 5}  # plan + 4 tasks, all recorded
    assert s["tokens_generated"] == s["tokens_returned"] > 0 and s["cost_multiplier"] == 1.0
    # the dependency's output reached the dependent task's prompt
    deploy_prompt = next(p for p in m.calls if task_of(p) == "Deploy the site").flat_text()
    assert "done: Write the pages" in deploy_prompt and "done: Build the contact form" in deploy_prompt


async def test_failed_task_skips_dependents_but_not_independent_tasks() -> None:
    routes = RouteRegistry(builtin={})

    async def broken(task: Task, deps: Mapping[str, TaskOutcome], ctx: RouteContext) -> TaskOutcome:
        raise ValueError("could not build it")

    routes.register("code", broken)
    m = ScriptedModel(responder)
    out = await build_graph(m, settings=Settings(), routes=routes).ainvoke({"request": "Make a website"})
    o = by_id(out)
    assert o["2"]["status"] == "failed" and "could not build it" in o["2"]["error"] and o["2"]["route"] == "code"
    assert o["1"]["status"] == "done"
    assert o["3"]["status"] == "skipped" and o["4"]["status"] == "skipped"
    assert [task_of(p) for p in m.calls if task_of(p)] == ["Write the pages"]  # skipped tasks never ran
    assert out["summary"]["failed"] == 1 and out["summary"]["skipped"] == 2


async def test_registered_route_receives_context_and_uses_the_pair() -> None:
    routes = RouteRegistry(builtin={})
    seen: dict[str, Any] = {}

    async def reasoning(task: Task, deps: Mapping[str, TaskOutcome], ctx: RouteContext) -> TaskOutcome:
        g = await ctx.generate(Prompt.user(f"Your task: {task.description}"), layer="sica")
        seen.update(layer=g.extra["layer"], fallback=g.fallback, request_id=ctx.request_id)
        out = TaskOutcome(task_id=task.id, status="done", output=g.text, score=0.5)
        out.add_generation(g)
        return out

    routes.register("writing", reasoning)
    out = await build_graph(ScriptedModel(responder), settings=Settings(), routes=routes).ainvoke(
        {"request": "Make a website", "request_id": "fixed-id"}
    )
    assert seen == {"layer": "sica", "fallback": "flag_off", "request_id": "fixed-id"}
    assert by_id(out)["1"]["route"] == "writing" and by_id(out)["1"]["score"] == 0.5
    assert out["summary"]["mean_task_score"] == 0.5


async def test_given_dag_skips_planning_and_bad_input_raises() -> None:
    m = ScriptedModel(responder)
    dag = {"tasks": [{"id": "x", "description": "Only step", "type": "general", "depends_on": []}]}
    out = await build_graph(m, settings=Settings(), routes=plain()).ainvoke({"request": "r", "dag": dag})
    assert [t["id"] for t in out["tasks"]] == ["x"] and len(m.calls) == 1
    with pytest.raises(ConfigError, match="request"):
        await build_graph(m, settings=Settings(), routes=plain()).ainvoke({"request": "  "})
    with pytest.raises(ConfigError, match="model"):
        build_graph()
    with pytest.raises(ConfigError, match="planner_options"):
        build_graph(m, planner_options={"depth": 3})


async def test_chat_model_only_graph() -> None:
    chat = FakeListChatModel(responses=["not json at all", "still not json", "an answer"])
    out = await build_graph(
        chat_model=chat,
        settings=Settings.from_env({"POWER_SAMPLING_ENABLED": "1", "POWER_SAMPLING_HTDAG_ENABLED": "1"}),
    ).ainvoke({"request": "Cook pasta"})
    assert out["summary"]["plan"]["fallback"] == "heuristic:unparseable"
    assert {"where": "plan", "reason": "no_logprobs"} in out["summary"]["fallbacks"]
    assert out["summary"]["done"] == out["summary"]["tasks"] >= 1


async def test_resume_after_interruption_skips_finished_tasks(tmp_path: Any) -> None:
    db = str(tmp_path / "ckpt.sqlite")
    config = {"configurable": {"thread_id": "t-1"}}

    def flaky(prompt: Prompt) -> str:
        if task_of(prompt) == "Deploy the site":
            raise ProviderConnectionError("network down", provider="scripted")
        return responder(prompt)

    first = ScriptedModel(flaky)
    async with open_checkpointer(db) as saver:
        g = build_graph(first, settings=Settings(), routes=plain(), checkpointer=saver, retry_policy=NO_RETRY)
        with pytest.raises(ProviderConnectionError):
            await g.ainvoke({"request": "Make a website"}, config)
        snap = await g.aget_state(config)
        assert set(snap.values["genesis_ps"]["outcomes"]) == {"1", "2"}
    second = ScriptedModel(responder)
    async with open_checkpointer(db) as saver:
        g2 = build_graph(second, settings=Settings(), routes=plain(), checkpointer=saver, retry_policy=NO_RETRY)
        out = await g2.ainvoke(None, config)
    assert [task_of(p) for p in second.calls] == ["Deploy the site", "Announce the launch"]  # no re-planning
    assert by_id(out)["1"]["output"] == "done: Write the pages"  # kept from the first run
    assert out["summary"]["done"] == 4


class Parent(TypedDict, total=False):
    request: str
    summary: dict[str, Any]
    log: list[str]


async def test_embedded_as_a_node_of_a_parent_graph_with_shared_keys() -> None:
    genesis = build_graph(ScriptedModel(responder), settings=Settings(), routes=plain())

    def prep(state: Parent) -> dict[str, Any]:
        return {"request": state["request"].strip(), "log": ["prep"]}

    def report(state: Parent) -> dict[str, Any]:
        return {"log": [*state["log"], f"done {state['summary']['done']}"]}

    parent = StateGraph(Parent)
    parent.add_node("prep", prep)
    parent.add_node("genesis", genesis)
    parent.add_node("report", report)
    parent.add_edge(START, "prep")
    parent.add_edge("prep", "genesis")
    parent.add_edge("genesis", "report")
    parent.add_edge("report", END)
    out = await parent.compile().ainvoke({"request": "  Make a website  "})
    assert out["log"] == ["prep", "done 4"]
    assert out["summary"]["done"] == 4


async def test_called_from_a_parent_node_with_its_own_state_and_context() -> None:
    genesis = build_graph(ScriptedModel(responder), settings=Settings(), routes=plain())

    class Chat(TypedDict, total=False):
        question: str
        answer: str

    async def solve(state: Chat) -> dict[str, Any]:
        res = await genesis.ainvoke({"request": state["question"]}, context=GraphContext(request_id="abc"))
        assert res["summary"]["request_id"] == "abc"
        return {"answer": res["answer"]}

    parent = StateGraph(Chat)
    parent.add_node("solve", solve)
    parent.add_edge(START, "solve")
    parent.add_edge("solve", END)
    out = await parent.compile().ainvoke({"question": "Make a website"})
    assert out["answer"] == "done: Announce the launch"


async def test_resume_inside_a_wave_keeps_the_finished_sibling(tmp_path: Any) -> None:
    db = str(tmp_path / "ckpt.sqlite")
    config = {"configurable": {"thread_id": "t-wave"}}

    def flaky(prompt: Prompt) -> str:
        if task_of(prompt) == "Build the contact form":
            raise ProviderConnectionError("network down", provider="scripted")
        return responder(prompt)

    async with open_checkpointer(db) as saver:
        g = build_graph(
            ScriptedModel(flaky), settings=Settings(), routes=plain(), checkpointer=saver, retry_policy=NO_RETRY
        )
        with pytest.raises(ProviderConnectionError):
            await g.ainvoke({"request": "Make a website"}, config)
    second = ScriptedModel(responder)
    async with open_checkpointer(db) as saver:
        out = await build_graph(second, settings=Settings(), routes=plain(), checkpointer=saver).ainvoke(None, config)
    ran = [task_of(p) for p in second.calls]
    assert "Write the pages" not in ran  # finished in the interrupted wave: its write was kept
    assert ran[0] == "Build the contact form" and out["summary"]["done"] == 4


def _dags() -> Any:
    from hypothesis import strategies as st

    @st.composite
    def build(draw: Any) -> tuple[dict[str, Any], set[str]]:
        n = draw(st.integers(1, 7))
        tasks = []
        for i in range(n):
            deps = draw(st.lists(st.sampled_from([f"t{j}" for j in range(i)]), unique=True, max_size=2)) if i else []
            tasks.append({"id": f"t{i}", "description": f"step {i}", "type": "general", "depends_on": deps})
        failing = set(draw(st.lists(st.sampled_from([t["id"] for t in tasks]), unique=True, max_size=2)))
        return {"tasks": tasks}, failing

    return build()


def test_scheduling_property_every_task_accounted_for() -> None:
    import asyncio

    from hypothesis import given, settings

    @settings(max_examples=15, deadline=None)
    @given(_dags())
    def check(case: tuple[dict[str, Any], set[str]]) -> None:
        dag_dict, failing = case

        def respond(prompt: Prompt) -> str:
            t = task_of(prompt) or ""
            return "" if t.replace("step ", "t") in failing else f"ok {t}"  # empty output = failed task

        m = ScriptedModel(respond)
        out = asyncio.run(
            build_graph(m, settings=Settings(), routes=plain()).ainvoke({"request": "r", "dag": dag_dict})
        )
        from genesis_ps.planners import TaskDAG

        dag = TaskDAG.from_dict(dag_dict)
        outcomes = by_id(out)
        assert set(outcomes) == set(dag.ids)
        ran = {(task_of(p) or "").replace("step ", "t") for p in m.calls}
        expected: dict[str, str] = {}
        for tid in dag.topological_order():
            if any(expected[d] != "done" for d in dag.get(tid).depends_on):
                expected[tid] = "skipped"
            else:
                expected[tid] = "failed" if tid in failing else "done"
        assert {k: v["status"] for k, v in outcomes.items()} == expected
        assert ran == {k for k, v in expected.items() if v != "skipped"}  # skipped tasks never ran
        # dependencies always ran before their dependents
        order = [(task_of(p) or "").replace("step ", "t") for p in m.calls]
        for t in dag.tasks:
            for d in t.depends_on:
                if t.id in order:
                    assert order.index(d) < order.index(t.id)

    check()


async def test_flags_on_power_samples_every_generation_and_rollout_splits_requests() -> None:
    on = {"POWER_SAMPLING_ENABLED": "1", "POWER_SAMPLING_SEED": "1"}
    for layer in ("HTDAG", "SE_DARWIN"):  # the plan has writing/general tasks (htdag) and a code task (se_darwin)
        on |= {f"POWER_SAMPLING_{layer}_ENABLED": "1", f"POWER_SAMPLING_{layer}_METHOD": "imh",
               f"POWER_SAMPLING_{layer}_N_MCMC": "2"}  # fmt: skip
    g = build_graph(ScriptedModel(responder), settings=Settings.from_env(on), routes=plain())
    out = await g.ainvoke({"request": "Make a website"})
    assert out["summary"]["fallbacks"] == []
    gens = [x for o in out["tasks"] for x in o["generations"]]
    assert len(gens) == 4 and {x["method"] for x in gens} == {"imh"}
    s = out["summary"]
    assert s["tokens_generated"] == 3 * s["tokens_returned"]  # 3 whole-sequence proposals each, as counted
    half = Settings.from_env({**on, "POWER_SAMPLING_ROLLOUT_PERCENT": "50"})
    g = build_graph(ScriptedModel(responder), settings=half, routes=plain())
    sides = []
    for rid in ("a", "b", "c", "d", "e", "f"):
        out = await g.ainvoke({"request": "Make a website", "request_id": rid})
        reasons = {f["reason"] for f in out["summary"]["fallbacks"]}
        assert reasons in (set(), {"rollout"})  # a request is wholly on one side
        sides.append(bool(reasons))
    assert any(sides) and not all(sides)  # both sides of the rollout occur


async def test_max_concurrency_bounds_each_wave() -> None:
    from genesis_ps.graph.chat import ChatModelAdapter

    m = ScriptedModel(responder)
    one = Settings.from_env({"POWER_SAMPLING_MAX_CONCURRENCY": "1"})
    waves: list[list[str]] = []
    async for _mode, ev in build_graph(m, settings=one, routes=plain()).astream(
        {"request": "Make a website"}, stream_mode=["updates"]
    ):
        if "default" in ev:
            waves.append(list(ev["default"]["genesis_ps"]["outcomes"]))
    assert waves == [["1"], ["2"], ["3"], ["4"]]
    # the chat adapter counts words only when the chat model reports no usage, and says so
    c = await ChatModelAdapter(FakeListChatModel(responses=["three little words"])).generate(
        Prompt.user("x"), max_new_tokens=8
    )
    assert c.tokens_generated == 3 and c.usage["counted_words"] == 1


async def test_node_timeout_bounds_each_generation() -> None:
    import asyncio

    from genesis_ps.errors import ProviderTimeoutError
    from genesis_ps.sampling.protocol import Completion

    class Slow(ScriptedModel):
        async def generate(self, prompt: Prompt, *, max_new_tokens: int, temperature: float = 1.0,
                           seed: int | None = None) -> Completion:  # fmt: skip
            if task_of(prompt) == "Deploy the site":
                await asyncio.sleep(5)
            return await super().generate(prompt, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)

    g = build_graph(Slow(responder), settings=Settings(), routes=plain(), retry_policy=NO_RETRY, node_timeout_s=0.3)
    with pytest.raises(ProviderTimeoutError, match=r"timed out after 0\.3s"):
        await g.ainvoke({"request": "Make a website"})
    with pytest.raises(ConfigError, match="node_timeout_s"):
        build_graph(Slow(responder), node_timeout_s=0)

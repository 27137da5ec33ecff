"""Safe to embed: a MessagesState parent both ways with a two-turn conversation on one thread; a parent's
own keys are never overwritten; a new request on a thread starts fresh; ``interrupt()`` inside a task
reaches the caller and ``Command(resume=...)`` continues."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict

from genesis_ps import build_graph
from genesis_ps.graph import RouteRegistry, TaskOutcome
from genesis_ps.graph.routes import RouteContext
from genesis_ps.planners import Task
from genesis_ps.sampling import Prompt
from genesis_ps.settings import Settings
from genesis_ps.testing import ScriptedModel

TURNS = ("Paint the fence", "Now wash the car")


def responder(prompt: Prompt) -> str:
    text = prompt.flat_text()
    if "Your task:" in text:
        return "did: " + text.rsplit("Your task: ", 1)[1].splitlines()[0]
    request = prompt.messages[-1][1]
    return json.dumps({"tasks": [{"id": "1", "description": request, "type": "general", "depends_on": []}]})


def genesis(model: ScriptedModel | None = None, **kw: Any) -> Any:
    return build_graph(model or ScriptedModel(responder), settings=Settings(), routes=RouteRegistry(builtin={}), **kw)


def two_turns(app: Any) -> list[str]:
    config = {"configurable": {"thread_id": "chat-1"}}
    for turn in TURNS:
        out = app.invoke({"messages": [HumanMessage(turn)]}, config)
    assert [m.type for m in out["messages"]] == ["human", "ai", "human", "ai"]
    return [m.content for m in out["messages"] if m.type == "ai"]


def test_as_a_node_of_a_messages_parent_two_turns() -> None:
    model = ScriptedModel(responder)
    parent = StateGraph(MessagesState)
    parent.add_node("genesis", genesis(model))
    parent.add_edge(START, "genesis")
    parent.add_edge("genesis", END)
    replies = two_turns(parent.compile(checkpointer=InMemorySaver()))
    assert replies == ["did: Paint the fence", "did: Now wash the car"]
    assert sum("Now wash the car" in p.flat_text() for p in model.calls) == 2  # turn 2 was planned and run afresh


def test_called_from_a_parent_node_two_turns() -> None:
    g = genesis()

    def solve(state: MessagesState) -> dict[str, Any]:
        out = g.invoke({"messages": state["messages"]})
        assert out["summary"]["done"] == 1 and out["tasks"][0]["status"] == "done"
        return {"messages": [AIMessage(out["answer"])]}

    parent = StateGraph(MessagesState)
    parent.add_node("solve", solve)
    parent.add_edge(START, "solve")
    parent.add_edge("solve", END)
    assert two_turns(parent.compile(checkpointer=InMemorySaver())) == ["did: Paint the fence", "did: Now wash the car"]


def test_a_parents_own_keys_are_never_overwritten() -> None:
    class Parent(TypedDict, total=False):
        request: str
        plan: str
        dag: str
        outcomes: str
        fallbacks: list[str]
        summary: dict[str, Any]

    parent = StateGraph(Parent)
    parent.add_node("genesis", genesis())
    parent.add_edge(START, "genesis")
    parent.add_edge("genesis", END)
    app = parent.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "p"}}
    mine = {"plan": "my plan", "outcomes": "mine", "fallbacks": ["mine"]}
    out = app.invoke({"request": "Paint the fence", **mine}, config)
    assert {k: out[k] for k in mine} == mine and out["summary"]["done"] == 1
    out = app.invoke({"request": "Now wash the car"}, config)
    assert {k: out[k] for k in mine} == mine and out["summary"]["fallback_reasons"] == {"flag_off": 2}


async def test_each_new_request_on_a_thread_starts_fresh() -> None:
    model = ScriptedModel(responder)
    g = genesis(model, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    dag = {"tasks": [{"id": "x", "description": "Given step", "type": "general", "depends_on": []}]}
    first = await g.ainvoke({"request": "Paint the fence", "dag": dag, "request_id": "r-1"}, config)
    assert first["answer"] == "did: Given step" and first["summary"]["request_id"] == "r-1"
    second = await g.ainvoke({"request": "Now wash the car"}, config)
    assert second["answer"] == "did: Now wash the car"  # planned anew: not the first request's DAG or answer
    assert [t["id"] for t in second["tasks"]] == ["1"] and second["summary"]["request_id"] != "r-1"
    off = [{"where": "plan", "reason": "flag_off"}, {"where": "1", "reason": "flag_off"}]
    assert second["summary"]["fallbacks"] == off  # counted once, not added to the first request's
    third = await g.ainvoke({"messages": [HumanMessage("Feed the cat")]}, config)
    assert third["answer"] == "did: Feed the cat" and third["messages"][-1].content == "did: Feed the cat"


def _asking_routes() -> RouteRegistry:
    async def ask(task: Task, deps: Mapping[str, TaskOutcome], ctx: RouteContext) -> TaskOutcome:
        answer = interrupt({"question": f"May I {task.description.lower()}?"})
        return TaskOutcome(task_id=task.id, status="done", output=f"{task.description}: {answer}")

    routes = RouteRegistry(builtin={})
    routes.register("general", ask)
    return routes


def test_interrupt_inside_a_task_reaches_the_caller_and_resumes() -> None:
    g = build_graph(ScriptedModel(responder), settings=Settings(), routes=_asking_routes(),
                    checkpointer=InMemorySaver())  # fmt: skip
    config = {"configurable": {"thread_id": "ask"}}
    paused = g.invoke({"request": "Paint the fence"}, config)
    assert paused["__interrupt__"][0].value == {"question": "May I paint the fence?"}
    assert g.get_state(config).next  # paused, not finished, not failed
    done = g.invoke(Command(resume="yes"), config)
    assert done["answer"] == "Paint the fence: yes" and done["tasks"][0]["status"] == "done"


async def test_interrupt_inside_an_embedded_graph_reaches_the_parents_caller() -> None:
    inner = build_graph(ScriptedModel(responder), settings=Settings(), routes=_asking_routes())
    parent = StateGraph(MessagesState)
    parent.add_node("genesis", inner)
    parent.add_edge(START, "genesis")
    parent.add_edge("genesis", END)
    app = parent.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "nested"}}
    paused = await app.ainvoke({"messages": [HumanMessage("Paint the fence")]}, config)
    assert paused["__interrupt__"][0].value == {"question": "May I paint the fence?"}
    done = await app.ainvoke(Command(resume="go ahead"), config)
    assert done["messages"][-1].content == "Paint the fence: go ahead"

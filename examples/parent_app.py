"""A parent LangGraph application that embeds the genesis_ps graph.

Three ways, all shown here, each a two-turn conversation on one thread:

1. as a node of a ``MessagesState`` parent: the graph reads the conversation's last human message and
   appends its answer as an AI message (``answer``, ``tasks``, ``summary`` come back too, for parents
   that declare them);
2. called from inside a parent node, with its own input (``genesis.invoke({"messages": ...})``);
3. with the application's own LangChain chat model as the single-shot fallback (``chat_model=``), so a
   fallback answers with a different model.

The graph's working state stays under its own ``genesis_ps`` key: a parent's keys are never read or
overwritten, and each new request starts fresh.

Run it offline with the scripted fake model (instant) or the embedded SmolLM2 (about a minute on CPU)::

    python examples/parent_app.py --scripted
    python examples/parent_app.py            # embedded model; flags from POWER_SAMPLING_* env vars
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

from genesis_ps import Prompt, Settings, build_graph, build_model
from genesis_ps.testing import ScriptedModel

TURNS = ("Plan a small static website with a contact form, then deploy it.", "Now write the launch announcement.")


def scripted_model() -> ScriptedModel:
    """Plans two tasks for each request; answers each task with 'Done: <task>'."""

    def respond(prompt: Prompt) -> str:
        text = prompt.flat_text()
        if "Your task:" in text:
            return "Done: " + text.rsplit("Your task: ", 1)[1].splitlines()[0]
        request = prompt.messages[-1][1]
        return json.dumps({"tasks": [
            {"id": "1", "description": f"Draft: {request}", "type": "writing", "depends_on": []},
            {"id": "2", "description": f"Check: {request}", "type": "general", "depends_on": ["1"]},
        ]})  # fmt: skip

    return ScriptedModel(respond)


def as_a_node(genesis: Any) -> Any:
    """Way 1: the compiled graph is a node of the parent (it shares the parent's ``messages``)."""
    app = StateGraph(MessagesState)
    app.add_node("genesis", genesis)
    app.add_edge(START, "genesis")
    app.add_edge("genesis", END)
    return app.compile(checkpointer=InMemorySaver())  # the subgraph checkpoints with the parent


def from_a_node(genesis: Any) -> Any:
    """Way 2: a parent node calls the graph with its own input and turns the answer into a message."""

    def solve(state: MessagesState) -> dict[str, Any]:
        out = genesis.invoke({"messages": state["messages"]})
        s = out["summary"]
        return {"messages": [AIMessage(f"{out['answer']}\n({s['done']}/{s['tasks']} tasks, cost ×{s['cost_multiplier']})")]}

    app = StateGraph(MessagesState)
    app.add_node("solve", solve)
    app.add_edge(START, "solve")
    app.add_edge("solve", END)
    return app.compile(checkpointer=InMemorySaver())


def converse(app: Any, thread: str) -> list[str]:
    """Two turns on one thread; the AI replies, in order."""
    config = {"configurable": {"thread_id": thread}}
    for turn in TURNS:
        out = app.invoke({"messages": [HumanMessage(turn)]}, config)
    return [m.content for m in out["messages"] if m.type == "ai"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scripted", action="store_true", help="use the offline scripted model (no weights)")
    args = ap.parse_args()
    settings = Settings.from_env()
    model: Any = scripted_model() if args.scripted else build_model("embedded")
    genesis = build_graph(model, settings=settings, task_max_new_tokens=64, plan_max_new_tokens=128, temperature=0.3)

    for way, app in (("1 (as a node)", as_a_node(genesis)), ("2 (from a node)", from_a_node(genesis))):
        replies = converse(app, thread=f"way-{way[0]}")
        print(f"way {way}: {len(replies)} replies")
        for reply in replies:
            print("  AI:", reply.replace("\n", " | "))

    # way 3: the application's chat model serves the single-shot fallback (here: every generation, since
    # the flags are off by default) — a different model, so fallbacks answer even if `model` is down.
    chat = FakeListChatModel(responses=["1. List the pages\n2. Deploy the site", "pages listed", "site deployed"])
    out = build_graph(model, chat_model=chat, settings=settings).invoke({"request": TURNS[0]})
    print(f"way 3 (chat model fallback): {out['answer']!r} via {out['summary']['fallback_model']}")


if __name__ == "__main__":
    main()

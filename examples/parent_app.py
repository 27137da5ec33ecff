"""A parent LangGraph application that embeds the genesis_ps graph.

Three ways to embed it, all shown here:

1. as a node of the parent graph, sharing state keys (``request`` in, ``summary`` out);
2. from inside a parent node, with its own state (``await genesis.ainvoke({...})``);
3. with the application's own LangChain chat model serving single-shot generation (``chat_model=``).

Run it offline with the scripted fake model (instant) or the embedded SmolLM2 (about a minute on CPU)::

    python examples/parent_app.py --scripted
    python examples/parent_app.py            # embedded model; flags from POWER_SAMPLING_* env vars
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from genesis_ps.graph import GraphContext, build_graph
from genesis_ps.sampling import Prompt
from genesis_ps.settings import Settings
from genesis_ps.testing import ScriptedModel

PLAN = json.dumps(
    {
        "tasks": [
            {"id": "1", "description": "List the pages the site needs", "type": "writing", "depends_on": []},
            {"id": "2", "description": "Write the contact form handler", "type": "code", "depends_on": []},
            {"id": "3", "description": "Deploy the site", "type": "general", "depends_on": ["1", "2"]},
        ]
    }
)


def scripted_model() -> ScriptedModel:
    def respond(prompt: Prompt) -> str:
        text = prompt.flat_text()
        if "Your task:" not in text:
            return PLAN
        return "Done: " + text.rsplit("Your task: ", 1)[1].splitlines()[0]

    return ScriptedModel(respond)


class AppState(TypedDict, total=False):
    """The parent's state. ``request`` and ``summary`` are shared with the genesis_ps graph."""

    user_message: str
    request: str
    summary: dict[str, Any]
    reply: str


def build_app(model: Any, settings: Settings) -> Any:
    genesis = build_graph(model, settings=settings, task_max_new_tokens=64, plan_max_new_tokens=128)

    def intake(state: AppState) -> dict[str, Any]:
        return {"request": state["user_message"].strip()}

    def respond(state: AppState) -> dict[str, Any]:
        s = state["summary"]
        return {"reply": f"{s['done']}/{s['tasks']} tasks done (cost ×{s['cost_multiplier']}):\n{s['answer']}"}

    app = StateGraph(AppState)
    app.add_node("intake", intake)
    app.add_node("genesis", genesis)  # way 1: a node sharing state keys
    app.add_node("respond", respond)
    app.add_edge(START, "intake")
    app.add_edge("intake", "genesis")
    app.add_edge("genesis", "respond")
    app.add_edge("respond", END)
    return app.compile(checkpointer=InMemorySaver())  # the subgraph checkpoints with the parent


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scripted", action="store_true", help="use the offline scripted model (no weights)")
    ap.add_argument("message", nargs="?", default="Plan a small static website with a contact form, then deploy it.")
    args = ap.parse_args()
    settings = Settings.from_env()
    if args.scripted:
        model: Any = scripted_model()
    else:
        from genesis_ps.providers.registry import build_model

        model = build_model("embedded")

    app = build_app(model, settings)
    out = await app.ainvoke({"user_message": args.message}, {"configurable": {"thread_id": "demo"}})
    print("way 1 (shared keys):", out["reply"], sep="\n")

    # way 2: call the graph from inside your own node / function, with its own state and a context
    genesis = build_graph(model, settings=settings, task_max_new_tokens=64, plan_max_new_tokens=128)
    res = await genesis.ainvoke({"request": args.message}, context=GraphContext(request_id="user-42"))
    print("\nway 2 (own state): fallbacks taken:", [f["reason"] for f in res["fallbacks"]])

    # way 3: the application's LangChain chat model serves single-shot generation
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    chat = FakeListChatModel(responses=[PLAN, "pages listed", "handler written", "deployed"])
    res = await build_graph(chat_model=chat, settings=settings).ainvoke({"request": args.message})
    print("\nway 3 (chat model):", res["summary"]["answer"])


if __name__ == "__main__":
    asyncio.run(main())

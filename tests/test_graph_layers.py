"""Every layer is a node or a subgraph that ``get_graph(xray=True)`` draws, with the power_sample →
single_shot fallback edge in each; ``stream(subgraphs=True)`` shows every step; the schemas introspect;
sync ``invoke`` / ``stream`` work; registered handlers and subgraphs are the extension point."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from genesis_ps import build_graph
from genesis_ps.evaluators import CodeEvaluator, SandboxLimits
from genesis_ps.graph import RouteRegistry, TaskOutcome
from genesis_ps.graph.routes import RouteContext
from genesis_ps.planners import Task
from genesis_ps.sampling import Prompt
from genesis_ps.settings import Settings
from genesis_ps.testing import ScriptedModel

ROOT = Path(__file__).resolve().parents[1]
PLAN = json.dumps({"tasks": [
    {"id": "1", "description": "Work out 2 + 2", "type": "reasoning", "depends_on": []},
    {"id": "2", "description": "Write add(a, b)", "type": "code", "depends_on": []},
    {"id": "3", "description": "Summarise both", "type": "general", "depends_on": ["1", "2"]},
]})  # fmt: skip
BUGGY = "STRATEGY: subtract\n```python\ndef add(a, b):\n    return a - b\n```"
FIXED = "STRATEGY: use +\n```python\ndef add(a, b):\n    return a + b\n```"


def responder(prompt: Prompt) -> str:
    text = prompt.flat_text()
    if "Your task:" not in text and "Task:" not in text:
        return PLAN
    if "Critique the proposed answer" in text:
        return "SCORE: 9\nVERDICT: PASS" if "is 4" in text else "SCORE: 2\nVERDICT: REVISE\nISSUES:\n- 2 + 2 is 4"
    if "Write add(a, b)" in text:
        return FIXED if "failed" in text else BUGGY  # the revision operator fixes the first candidate
    if "Previous answer" in text:
        return "2 + 2 is 4."
    return "2 + 2 is 5." if "Work out" in text else "Both done."


def graph(**kw: Any) -> Any:
    return build_graph(ScriptedModel(responder), settings=Settings(), **kw)


LAYERS = {
    "plan": ["plan_prompt", "plan_validate", "plan_repair", "plan_expand", "plan_heuristic", "plan_done"],
    "sica": ["sica_draft", "sica_critique", "sica_refine", "sica_done"],
    "darwin": ["darwin_population", "darwin_select", "darwin_done", "darwin_operator:darwin_propose",
               "darwin_operator:darwin_evaluate"],
    "default": ["default_generate", "default_evaluate"],
}  # fmt: skip
PAIRS = ("plan", "sica", "darwin:darwin_operator", "default")


def test_xray_draws_every_layer_with_its_fallback_edge() -> None:
    drawn = graph().get_graph(xray=True)
    names = set(drawn.nodes)
    assert {"start", "schedule", "finish"} <= names
    for layer, steps in LAYERS.items():
        assert {f"{layer}:{s}" for s in steps} <= names, layer
    sica = {n for n in names if n.startswith("sica:")}
    darwin = {n for n in names if n.startswith("darwin:")}
    assert all("sica" in n.split(":")[-1] for n in sica - {"sica:power_sample", "sica:single_shot"})
    assert all("darwin" in n.split(":")[-1] for n in darwin if not n.endswith(("power_sample", "single_shot")))
    edges = {(e.source, e.target): e.conditional for e in drawn.edges}
    for layer in PAIRS:  # every layer has the pair, and the fallback edge between them
        assert {f"{layer}:power_sample", f"{layer}:single_shot"} <= names
        assert edges[(f"{layer}:power_sample", f"{layer}:single_shot")] is True, layer
    # the SICA loop: critique → refine → (generation) → critique, until the stop rule → done
    for e in [("sica:sica_draft", "sica:power_sample"), ("sica:sica_critique", "sica:sica_refine"),
              ("sica:sica_refine", "sica:single_shot"), ("sica:single_shot", "sica:sica_critique"),
              ("sica:sica_critique", "sica:sica_done")]:  # fmt: skip
        assert e in edges, e
    # SE-Darwin: operators fanned out, evaluated in the sandbox, selected, and again
    for e in [("darwin:darwin_population", "darwin:darwin_operator:darwin_propose"),
              ("darwin:darwin_operator:single_shot", "darwin:darwin_operator:darwin_evaluate"),
              ("darwin:darwin_operator:darwin_evaluate", "darwin:darwin_select"),
              ("darwin:darwin_select", "darwin:darwin_operator:darwin_propose"),
              ("darwin:darwin_select", "darwin:darwin_done")]:  # fmt: skip
        assert e in edges, e
    # plan: validation, repair, heuristic fallback; waves from the scheduler into each task subgraph
    for e in [("plan:plan_validate", "plan:plan_repair"), ("plan:plan_validate", "plan:plan_heuristic"),
              ("schedule", "sica:sica_draft"), ("schedule", "darwin:darwin_population"),
              ("schedule", "default:default_generate"), ("schedule", "finish")]:  # fmt: skip
        assert e in edges, e


def test_docs_show_the_graph_as_it_is_drawn() -> None:
    doc = (ROOT / "docs" / "graph.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```mermaid\n(.*?)```", doc, re.S)
    assert blocks, "docs/graph.md has no mermaid block"
    assert blocks[0].strip() == graph().get_graph(xray=True).draw_mermaid().strip()


async def test_stream_with_subgraphs_shows_every_step() -> None:
    ev = CodeEvaluator("def test_add():\n    assert add(2, 3) == 5\n", limits=SandboxLimits(timeout_s=5.0))
    seen: set[str] = set()
    async for ns, update in graph(evaluators={"code": ev}).astream(
        {"request": "Add and explain"}, stream_mode="updates", subgraphs=True
    ):
        layer = ns[-1].split(":")[0] if ns else ""
        seen |= {f"{layer}:{node}" if layer else node for node in update}
    for expected in ("start", "plan:plan_prompt", "plan:single_shot", "plan:plan_validate", "plan:plan_done",
                     "schedule", "sica:sica_draft", "sica:single_shot", "sica:sica_critique", "sica:sica_refine",
                     "sica:sica_done", "darwin:darwin_population", "darwin_operator:darwin_propose",
                     "darwin_operator:single_shot", "darwin_operator:darwin_evaluate", "darwin:darwin_select",
                     "darwin:darwin_done", "default:default_generate", "default:default_evaluate",
                     "finish"):  # fmt: skip
        assert expected in seen, expected


def test_schemas_introspect_and_keep_the_working_state_private() -> None:
    g = graph()
    inp, out = g.get_input_jsonschema(), g.get_output_jsonschema()
    assert {"request", "messages", "request_id", "dag"} <= set(inp["properties"])
    assert {"answer", "tasks", "summary", "messages"} <= set(out["properties"])
    assert "genesis_ps" not in inp["properties"] and "genesis_ps" not in out["properties"]


def test_sync_invoke_and_stream() -> None:
    ev = CodeEvaluator("def test_add():\n    assert add(2, 3) == 5\n", limits=SandboxLimits(timeout_s=5.0))
    g = graph(evaluators={"code": ev})
    out = g.invoke({"request": "Add and explain"})
    tasks = {t["id"]: t for t in out["tasks"]}
    assert [t["status"] for t in out["tasks"]] == ["done"] * 3
    assert tasks["1"]["route"] == "sica" and tasks["1"]["output"] == "2 + 2 is 4."
    assert tasks["1"]["extra"]["sica"]["stop_reason"] == "threshold" and tasks["1"]["extra"]["sica"]["iterations"] == 2
    assert tasks["2"]["route"] == "se_darwin" and tasks["2"]["score"] == 1.0
    assert tasks["2"]["extra"]["se_darwin"]["stop_reason"] == "target"  # the revision passed the sandbox tests
    steps = [next(iter(u)) for u in g.stream({"request": "Add and explain"}, stream_mode="updates")]
    assert steps[0] == "start" and steps[-1] == "finish" and "plan" in steps


def test_registered_handler_and_subgraph_routes() -> None:
    class Sub(TypedDict, total=False):
        task_text: str
        output: str

    def shout(state: Sub) -> dict[str, Any]:
        return {"output": state["task_text"].rsplit("Your task: ", 1)[1].splitlines()[0].upper()}

    b = StateGraph(Sub)
    b.add_node("shout", shout)
    b.add_edge(START, "shout")
    b.add_edge("shout", END)

    async def echo(task: Task, deps: Mapping[str, TaskOutcome], ctx: RouteContext) -> TaskOutcome:
        g = await ctx.generate(Prompt.user(f"Your task: {task.description}"), layer="sica")
        out = TaskOutcome(task_id=task.id, status="done", output=f"handled: {g.text}")
        out.add_generation(g)
        return out

    routes = RouteRegistry()
    routes.register("code", b.compile())
    routes.register("reasoning", echo)
    g = graph(routes=routes)
    names = set(g.get_graph(xray=True).nodes)
    assert {"route_code:code_run:shout", "route_code:code_record", "handler"} <= names
    out = g.invoke({"request": "Add and explain"})
    tasks = {t["id"]: t for t in out["tasks"]}
    assert tasks["2"]["output"] == "WRITE ADD(A, B)" and tasks["2"]["route"] == "code"
    assert tasks["1"]["output"] == "handled: 2 + 2 is 5." and tasks["1"]["fallbacks"] == ["flag_off"]

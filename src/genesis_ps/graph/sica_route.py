"""The ``sica`` subgraph: the route of ``reasoning`` tasks, the SICA loop as nodes.

``sica_draft`` asks for the first answer through the generation pair (power-sampled when the ``sica``
layer is enabled — the power variant is the same nodes with the flag on; otherwise single-shot);
``sica_critique`` scores each answer (the task's evaluator, else the model's own critique, re-asked
when malformed) and applies the stop rule; ``sica_refine`` asks for an improved answer, and the loop
goes back to ``sica_critique`` until the rule stops it; ``sica_done`` records the outcome. Every step
is a super-step with its own checkpoint, so a run killed inside the loop resumes at its last step.
The steps are :class:`~genesis_ps.loops.sica_steps.SicaMachine`'s.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy

from genesis_ps.graph.env import GraphEnv
from genesis_ps.graph.generation import add_generation_pair, gen_request, result_of
from genesis_ps.graph.outcome import TaskOutcome, finished
from genesis_ps.graph.state import TaskIn, TaskOut, TaskState
from genesis_ps.graph.wire import State, anode, emit, read_route, snode
from genesis_ps.loops.sica_steps import SicaAction, SicaMachine

__all__ = ["SicaState", "build_sica_graph"]


class SicaState(TaskState, total=False):
    sica: dict[str, Any]
    """The :class:`~genesis_ps.loops.sica_steps.SicaMachine` state."""
    gens: list[dict[str, Any]]
    error: str | None


def build_sica_graph(env: GraphEnv, *, retry: RetryPolicy | None = None) -> Any:
    """Compile the SICA subgraph over ``env``."""

    def ask(state: State, m: SicaMachine, action: SicaAction) -> dict[str, Any]:
        assert action.prompt is not None
        p = env.layer_params("sica")
        upd = gen_request(action.prompt, p if action.power else p.with_(method="single"), then="sica_critique",
                          layer="sica", step=action.step, power=None if action.power else False,
                          request_id=str(state.get("request_id") or ""),
                          spent_tokens=int(state.get("spent_tokens", 0)) + m.res.tokens_generated)  # fmt: skip
        return {**upd, "sica": m.to_dict()}

    def sica_draft(state: State) -> dict[str, Any]:
        emit({"event": "task_start", "task_id": state["task"]["id"], "route": "sica"})
        mode = "power" if env.current_settings().layer("sica").enabled else "iterative"
        m = SicaMachine(str(state["task_text"]), mode=mode, config=env.sica_config)
        return {**ask(state, m, m.start()), "gens": [], "error": None}

    async def sica_critique(state: State) -> dict[str, Any]:
        m, g = SicaMachine.from_dict(state["sica"]), result_of(state)
        gens = [*state.get("gens", []), *([state["gen_result"]] if g is not None else [])]
        if state.get("gen_error") or g is None:
            return {"gens": gens, "error": str(state.get("gen_error") or "no answer"), "route": "sica_done"}
        m.record(SicaAction("generate", str(state["gen"]["step"])), g)
        task = state["task"]
        context = {"task": task["description"], "request": state.get("request", "")}
        action = await asyncio.to_thread(m.advance, env.evaluator(str(task.get("type"))), context)
        if action.kind == "generate":
            return {**ask(state, m, action), "gens": gens}
        return {"sica": m.to_dict(), "gens": gens, "route": "sica_refine" if action.kind == "refine" else "sica_done"}

    def sica_refine(state: State) -> dict[str, Any]:
        m = SicaMachine.from_dict(state["sica"])
        return ask(state, m, m.refine())

    def sica_done(state: State) -> dict[str, Any]:
        res = SicaMachine.from_dict(state["sica"]).result()
        out = TaskOutcome(task_id=str(state["task"]["id"]), status="done", output=res.text.strip(), route="sica",
                          score=res.score)  # fmt: skip
        for g in state.get("gens", []):
            out.add_generation(g)
        out.score_details = {"source": res.score_source, "stop_reason": res.stop_reason or "generation_failed"}
        stop = res.stop_reason or "generation_failed"
        out.extra["sica"] = {"mode": res.mode, "iterations": res.iterations, "model_calls": res.model_calls,
                             "requests": res.requests, "stop_reason": stop}  # fmt: skip
        if state.get("error"):
            out.status, out.error = "failed", str(state["error"])
        elif not out.output:
            out.status, out.error = "failed", "the model returned empty text"
        return finished(out)

    g = StateGraph(SicaState, input_schema=TaskIn, output_schema=TaskOut)
    g.add_node("sica_draft", snode("sica_draft", sica_draft, layer="sica"))
    g.add_node("sica_critique", anode("sica_critique", sica_critique, layer="sica"))
    g.add_node("sica_refine", snode("sica_refine", sica_refine, layer="sica"))
    g.add_node("sica_done", snode("sica_done", sica_done, layer="sica"))
    add_generation_pair(g, env, ["sica_critique"], retry=retry)
    g.add_edge(START, "sica_draft")
    g.add_conditional_edges("sica_draft", read_route, ["power_sample", "single_shot"])
    g.add_conditional_edges("sica_critique", read_route, ["single_shot", "sica_refine", "sica_done"])
    g.add_conditional_edges("sica_refine", read_route, ["single_shot"])
    g.add_edge("sica_done", END)
    return g.compile(name="sica")

"""The ``plan`` subgraph: HTDAG decomposition as nodes.

``plan_prompt`` asks for a decomposition through the generation pair (``power_sample`` → fallback edge
→ ``single_shot``); ``plan_validate`` parses and validates the answer; an unusable one goes to
``plan_repair`` (a retry with the problems as feedback, or in the other answer format), complex tasks
to ``plan_expand`` (when ``max_depth`` > 0), and when every attempt failed ``plan_heuristic`` uses the
rule-based decomposition (counted in ``genesis_ps_plan_fallbacks_total``). ``plan_done`` types the tasks
the model left untyped by keyword rules (``type_sources`` says which decided), scores the plan, and
hands the DAG to the scheduler. The steps are :class:`~genesis_ps.planners.steps.PlanMachine`'s.
"""

from __future__ import annotations

from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy
from typing_extensions import TypedDict

from genesis_ps import observability as obs
from genesis_ps.graph.env import GraphEnv
from genesis_ps.graph.generation import add_generation_pair, gen_request, result_of
from genesis_ps.graph.state import GenKeys, merge_work
from genesis_ps.graph.wire import State, emit, read_route, snode
from genesis_ps.planners.steps import PlanAction, PlanMachine

__all__ = ["PlanIn", "PlanState", "build_plan_graph"]


class PlanIn(TypedDict, total=False):
    """What the scheduler's ``start`` sends the plan."""

    request: str
    request_id: str
    trace: dict[str, Any]


class PlanState(PlanIn, GenKeys, total=False):
    plan: dict[str, Any]
    """The :class:`~genesis_ps.planners.steps.PlanMachine` state."""
    genesis_ps: Annotated[dict[str, Any], merge_work]


class _PlanOut(TypedDict, total=False):
    genesis_ps: Annotated[dict[str, Any], merge_work]


_NEXT = {"repair": "plan_repair", "expand": "plan_expand", "attempt": "plan_repair"}


def build_plan_graph(env: GraphEnv, *, retry: RetryPolicy | None = None) -> Any:
    """Compile the plan subgraph over ``env``."""
    opts = dict(env.planner_options)

    def params() -> Any:
        p = env.current_settings().layer("htdag").params.with_(max_new_tokens=env.plan_max_new_tokens)
        return p.with_(temperature=env.temperature) if env.temperature is not None else p

    def ask(state: State, m: PlanMachine, action: PlanAction) -> dict[str, Any]:
        assert action.prompt is not None
        upd = gen_request(action.prompt, params(), then="plan_validate", layer="htdag", step=action.step, power=None,
                          request_id=str(state.get("request_id") or ""),
                          tilt=str(state["request"]) if env.plan_lam > 0 else None)  # fmt: skip
        return {**upd, "plan": m.to_dict()}

    def plan_prompt(state: State) -> dict[str, Any]:
        emit({"event": "plan_start", "request_id": state.get("request_id")})
        m = PlanMachine(str(state["request"]), method=params().method, style=str(opts.get("style", "json")),
                        retry_style="worfbench", instructions=opts.get("instructions"),
                        max_attempts=int(opts.get("max_attempts", 2)), max_depth=int(opts.get("max_depth", 0)),
                        max_total_tasks=int(opts.get("max_total_tasks", 16)), classify=True)  # fmt: skip
        return ask(state, m, m.next_action())

    def plan_validate(state: State) -> dict[str, Any]:
        m = PlanMachine.from_dict(state["plan"])
        g, err = result_of(state), state.get("gen_error")
        action = m.record_error(str(err), str(err).split(":", 1)[0]) if err or g is None else m.record(g)
        if action.kind == "generate":
            route = _NEXT[action.step]
        else:
            route = "plan_heuristic" if m.needs_heuristic else "plan_done"
        return {"plan": m.to_dict(), "route": route}

    def plan_repair(state: State) -> dict[str, Any]:
        m = PlanMachine.from_dict(state["plan"])
        return ask(state, m, m.next_action())

    def plan_heuristic(state: State) -> dict[str, Any]:
        m = PlanMachine.from_dict(state["plan"])
        m.apply_heuristic()
        obs.record_plan_fallback(str(m.fallback))
        return {"plan": m.to_dict()}

    def plan_done(state: State) -> dict[str, Any]:
        d = PlanMachine.from_dict(state["plan"]).finish()
        record = d.to_dict()
        tasks = record.pop("tasks")
        emit({"event": "plan_end", "tasks": tasks, "fallback": d.fallback})
        return {"genesis_ps": {"dag": {"tasks": tasks}, "plan": record}}

    g = StateGraph(PlanState, input_schema=PlanIn, output_schema=_PlanOut)
    for name, fn in (("plan_prompt", plan_prompt), ("plan_validate", plan_validate), ("plan_repair", plan_repair),
                     ("plan_expand", plan_repair), ("plan_heuristic", plan_heuristic), ("plan_done", plan_done)):
        g.add_node(name, snode(name, fn, layer="htdag"))  # fmt: skip
    add_generation_pair(g, env, ["plan_validate"], retry=retry)
    g.add_edge(START, "plan_prompt")
    for asker in ("plan_prompt", "plan_repair", "plan_expand"):
        g.add_conditional_edges(asker, read_route, ["power_sample", "single_shot"])
    g.add_conditional_edges("plan_validate", read_route, ["plan_repair", "plan_expand", "plan_heuristic", "plan_done"])
    g.add_edge("plan_heuristic", "plan_done")
    g.add_edge("plan_done", END)
    return g.compile(name="plan")

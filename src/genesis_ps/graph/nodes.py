"""The top-level nodes: ``start`` (read the request, start fresh, open the run's trace), ``schedule``
(skip what a failure blocks, fan the ready tasks out with ``Send``), ``finish`` (the answer, the task
records, the summary)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from langgraph.types import Send

from genesis_ps import observability as obs
from genesis_ps.errors import ConfigError
from genesis_ps.graph.env import GraphEnv
from genesis_ps.graph.outcome import TaskOutcome, task_text_for
from genesis_ps.graph.rollout import request_id_for
from genesis_ps.graph.routes import RouteRegistry
from genesis_ps.graph.state import NAMESPACE
from genesis_ps.graph.wire import State
from genesis_ps.planners.dag import Task, TaskDAG
from genesis_ps.planners.planner import check_request

__all__ = ["dispatch", "finish", "schedule", "start", "task_record"]


def _request_of(state: State) -> tuple[str, bool]:
    if state.get("request"):
        return check_request(state["request"]), False
    for msg in reversed(state.get("messages") or []):
        if getattr(msg, "type", None) == "human":
            content = msg.content if isinstance(msg.content, str) else " ".join(
                str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in msg.content)  # fmt: skip
            return check_request(content), True
    raise ConfigError("request", "give `request`, or `messages` ending with a human message")


def _thread_id() -> str | None:
    try:
        from langgraph.config import get_config

        tid = (get_config().get("configurable") or {}).get("thread_id")
    except RuntimeError:
        return None
    return None if tid is None else str(tid)


def start(env: GraphEnv, state: State) -> dict[str, Any]:
    """Read the request (``request``, else the last human message), reset the working state, open the run
    span. Bad input raises :class:`~genesis_ps.errors.ConfigError` here, before any model call."""
    request, from_messages = _request_of(state)
    rid = str(state.get("request_id") or env.context_request_id() or request_id_for(request))
    dag = state.get("dag")
    if dag:
        TaskDAG.from_dict(dag).validate()
    trace = obs.start_run(request_id=rid, thread_id=_thread_id())
    with obs.node_span("start", parent=trace):
        pass
    work = {"reset": True, "request": request, "request_id": rid, "trace": trace, "dag": dag or None, "plan": {},
            "outcomes": {}, "from_messages": from_messages, "started": time.time()}  # fmt: skip
    # the inputs are consumed: a later request on this thread must not see them
    return {NAMESPACE: work, "request": None, "request_id": None, "dag": None}


def after_start(state: State) -> list[Send] | str:
    w = state[NAMESPACE]
    if w.get("dag"):
        return "schedule"
    return [Send("plan", {"request": w["request"], "request_id": w["request_id"], "trace": w["trace"]})]


def schedule(state: State) -> dict[str, Any]:
    """Mark every task downstream of a failed or skipped one as skipped (it never runs)."""
    w = state[NAMESPACE]
    dag, outcomes = TaskDAG.from_dict(w["dag"]), w.get("outcomes") or {}
    bad = [i for i, o in outcomes.items() if o["status"] in ("failed", "skipped")]
    skipped = {tid: TaskOutcome(task_id=tid, status="skipped", route="none",
                                error="a dependency failed or was skipped").to_dict()
               for tid in sorted(dag.blocked_by_failure(bad)) if tid not in outcomes}  # fmt: skip
    return {NAMESPACE: {"outcomes": skipped}} if skipped else {}


def _spent(w: Mapping[str, Any]) -> int:
    plan = w.get("plan") or {}
    outs = w.get("outcomes") or {}
    return int(plan.get("tokens_generated", 0)) + sum(TaskOutcome.from_dict(o).tokens_generated for o in outs.values())


def dispatch(env: GraphEnv, routes: RouteRegistry, state: State) -> list[Send] | str:
    """Fan out every ready task (up to ``max_concurrency``) to its route with ``Send``; ``finish`` when
    none is ready."""
    w = state[NAMESPACE]
    dag, outcomes = TaskDAG.from_dict(w["dag"]), w.get("outcomes") or {}
    done = [i for i, o in outcomes.items() if o["status"] == "done"]
    bad = [i for i, o in outcomes.items() if o["status"] != "done"]
    excluded = set(outcomes) | dag.blocked_by_failure(bad)
    ready = dag.ready(done, excluded=excluded)[: env.current_settings().max_concurrency]
    if not ready:
        return "finish"
    spent, sends = _spent(w), []
    for tid in ready:
        t = dag.get(tid)
        deps = {d: outcomes[d] for d in t.depends_on}
        payload = {"task": t.to_dict(), "task_text": task_text_for(w["request"], t, deps), "request": w["request"],
                   "request_id": w["request_id"], "deps": deps, "spent_tokens": spent, "trace": w["trace"]}  # fmt: skip
        sends.append(Send(routes.get(t.type)[0], payload))
    return sends


def task_record(task: Task, outcome: Mapping[str, Any], type_source: str | None) -> dict[str, Any]:
    """One task as the output reports it: what ran, what it produced, what it cost, every fallback."""
    o = TaskOutcome.from_dict(outcome) if outcome else TaskOutcome(task_id=task.id, status="not run")
    gens = o.generations
    acc = [float(g["acceptance_rate"]) for g in gens if g.get("acceptance_rate") is not None]
    models = sorted({str(g["extra"]["fallback_model"]) for g in gens if (g.get("extra") or {}).get("fallback_model")})
    cost = round(o.tokens_generated / max(o.tokens_returned, 1), 4)
    return {"id": task.id, "description": task.description, "type": task.type, "type_source": type_source,
            "depends_on": list(task.depends_on), "status": o.status, "route": o.route, "output": o.output,
            "score": o.score, "error": o.error, "methods": sorted({str(g.get("method")) for g in gens}),
            "acceptance": (sum(acc) / len(acc)) if acc else None, "tokens_generated": o.tokens_generated,
            "tokens_returned": o.tokens_returned, "cost_multiplier": cost, "fallbacks": list(o.fallbacks),
            "fallback_models": models, "score_details": o.score_details, "extra": o.extra,
            "generations": gens}  # fmt: skip


def finish(env: GraphEnv, state: State) -> dict[str, Any]:
    """The answer (the finished sink tasks' outputs), a record per task, and the summary; ends the run span."""
    w = state[NAMESPACE]
    dag, outcomes, plan = TaskDAG.from_dict(w["dag"]), w.get("outcomes") or {}, w.get("plan") or {}
    sources = plan.get("type_sources") or {}
    tasks = [task_record(t, outcomes.get(t.id, {}), sources.get(t.id)) for t in dag.tasks]
    fallbacks = [{"where": "plan", "reason": g["fallback"]} for g in plan.get("generations") or [] if g.get("fallback")]
    if plan.get("fallback"):
        fallbacks.append({"where": "plan", "reason": plan["fallback"]})
    fallbacks += [{"where": t["id"], "reason": r} for t in tasks for r in t["fallbacks"]]
    reasons: dict[str, int] = {}
    for f in fallbacks:
        reasons[f["reason"]] = reasons.get(f["reason"], 0) + 1
    gen = int(plan.get("tokens_generated", 0)) + sum(t["tokens_generated"] for t in tasks)
    ret = int(plan.get("tokens_returned", 0)) + sum(t["tokens_returned"] for t in tasks)
    status = {s: sum(1 for t in tasks if t["status"] == s) for s in ("done", "failed", "skipped")}
    sinks = [t.id for t in dag.tasks if not dag.dependents(t.id)]
    answer = "\n\n".join(outcomes[s]["output"] for s in sinks if outcomes.get(s, {}).get("status") == "done")
    scores = [t["score"] for t in tasks if t["score"] is not None]
    summary = {"request_id": w["request_id"], "tasks": len(tasks), **status, "tokens_generated": gen,
               "tokens_returned": ret, "cost_multiplier": round(gen / max(ret, 1), 4), "fallbacks": fallbacks,
               "fallback_reasons": reasons, "fallback_model": env.fallback_name(),
               "plan_fallback": plan.get("fallback"), "plan_quality": plan.get("quality"),
               "mean_task_score": (sum(scores) / len(scores)) if scores else None,
               "latency_s": round(time.time() - float(w.get("started", time.time())), 3), "plan": plan}  # fmt: skip
    obs.end_run(w.get("trace"), tasks=len(tasks), done=status["done"], failed=status["failed"],
                skipped=status["skipped"], cost_multiplier=summary["cost_multiplier"])  # fmt: skip
    out: dict[str, Any] = {"answer": answer, "tasks": tasks, "summary": summary}
    if w.get("from_messages"):
        from langchain_core.messages import AIMessage

        text = answer or f"No task succeeded ({status['failed']} failed, {status['skipped']} skipped)."
        out["messages"] = [AIMessage(content=text, name="genesis_ps")]
    return out

"""Every other route: the ``default`` subgraph (``default_generate`` → generation pair →
``default_evaluate``), the ``handler`` node that runs registered async handlers, and the wrapper that
runs a registered subgraph for a task type (``route_<type>``).

A registered subgraph receives the task's keys (``task``, ``task_text``, ``request``, ``request_id``,
``deps``) and answers with ``output`` (and optionally ``score``), or with ``outcome``, a whole
:class:`~genesis_ps.graph.routes.TaskOutcome` dict. ``interrupt()`` anywhere in a handler or a
subgraph pauses the whole run; ``Command(resume=...)`` continues it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy

from genesis_ps.errors import ProviderError
from genesis_ps.evaluators.base import safe_evaluate
from genesis_ps.graph.env import GraphEnv
from genesis_ps.graph.generation import GenerationPair, add_generation_pair, gen_request, result_of
from genesis_ps.graph.outcome import Handler, RouteContext, TaskOutcome, finished
from genesis_ps.graph.state import TaskIn, TaskOut, TaskState
from genesis_ps.graph.wire import State, anode, emit, read_route, snode
from genesis_ps.observability import record_evaluation
from genesis_ps.planners.dag import Task
from genesis_ps.planners.prompts import task_prompt
from genesis_ps.sampling.params import SamplerParams
from genesis_ps.sampling.protocol import Prompt
from genesis_ps.sampling.result import GenerationResult

__all__ = ["build_default_graph", "build_subgraph_route", "handler_node", "layer_for_type"]

_TYPE_LAYER = {"reasoning": "sica", "code": "se_darwin"}


def layer_for_type(task_type: str) -> str:
    """The settings layer whose flag governs a task type's generation (``htdag`` for most)."""
    return _TYPE_LAYER.get(task_type, "htdag")


def build_default_graph(env: GraphEnv, *, retry: RetryPolicy | None = None) -> Any:
    """Compile the default route: generate the task's answer, then score it with the type's evaluator."""

    def default_generate(state: State) -> dict[str, Any]:
        task = state["task"]
        emit({"event": "task_start", "task_id": task["id"], "route": "default"})
        deps = state.get("deps") or {}
        context = [(d, str(deps[d].get("output", ""))) for d in task.get("depends_on", []) if d in deps]
        prompt = task_prompt(str(state.get("request", "")), str(task["description"]), context)
        layer = layer_for_type(str(task.get("type")))
        return gen_request(prompt, env.layer_params(layer), then="default_evaluate", layer=layer, step="answer",
                           power=None, request_id=str(state.get("request_id") or ""),
                           spent_tokens=int(state.get("spent_tokens", 0)))  # fmt: skip

    async def default_evaluate(state: State) -> dict[str, Any]:
        task, g = state["task"], result_of(state)
        out = TaskOutcome(task_id=str(task["id"]), status="done", output="" if g is None else g.text.strip(),
                          route="default")  # fmt: skip
        if state.get("gen_result"):
            out.add_generation(state["gen_result"])
        if state.get("gen_error") or g is None:
            out.status, out.error = "failed", str(state.get("gen_error") or "no answer")
        elif not out.output:
            out.status, out.error = "failed", "the model returned empty text"
        ev = env.evaluator(str(task.get("type")))
        if ev is not None and out.status == "done":
            ctx = {"task": task["description"], "request": state.get("request", "")}
            s = await asyncio.to_thread(safe_evaluate, ev, out.output, ctx)
            out.score, out.score_details = s.value, {**dict(s.details), "evaluator": s.evaluator, "error": s.error}
            layer = layer_for_type(str(task.get("type")))
            record_evaluation(s.evaluator or getattr(ev, "name", "?"), s.value, layer=layer)
        return finished(out)

    g = StateGraph(TaskState, input_schema=TaskIn, output_schema=TaskOut)
    g.add_node("default_generate", snode("default_generate", default_generate))
    g.add_node("default_evaluate", anode("default_evaluate", default_evaluate))
    add_generation_pair(g, env, ["default_evaluate"], retry=retry)
    g.add_edge(START, "default_generate")
    g.add_conditional_edges("default_generate", read_route, ["power_sample", "single_shot"])
    g.add_edge("default_evaluate", END)
    return g.compile(name="default")


def handler_node(env: GraphEnv, handlers: dict[str, Handler]) -> Any:
    """The node that runs a registered async handler for its task type. Handler errors become a failed
    task; retryable provider errors and LangGraph's interrupts propagate."""
    pairs: dict[int, GenerationPair] = {}

    async def handler(state: State) -> dict[str, Any]:
        task = Task.from_dict(state["task"])
        settings = env.current_settings()
        if id(settings) not in pairs:
            pairs[id(settings)] = GenerationPair(env.model, settings=settings, fallback_model=env.fallback_model,
                                                 sampler_kwargs=env.sampler_kwargs)  # fmt: skip
        pair = pairs[id(settings)]
        rid, spent = str(state.get("request_id") or ""), int(state.get("spent_tokens", 0))

        async def gen(prompt: Prompt, *, layer: str = "htdag", params: SamplerParams | None = None,
                      power: bool | None = None) -> GenerationResult:  # fmt: skip
            p = params if params is not None else ctx.layer_params(layer)
            return await pair(prompt, layer=layer, params=p, power=power, request_id=rid, spent_tokens=spent)

        ctx = RouteContext(request=str(state.get("request", "")), request_id=rid, model=env.model, generate=gen,
                           settings=settings, max_new_tokens=env.task_tokens(), temperature=env.temperature,
                           evaluators=env.evaluators, emit=lambda e: emit({**e, "task_id": task.id}))  # fmt: skip
        emit({"event": "task_start", "task_id": task.id, "route": task.type})
        deps = {k: TaskOutcome.from_dict(v) for k, v in (state.get("deps") or {}).items()}
        t0 = time.perf_counter()
        try:
            outcome = await handlers[task.type](task, deps, ctx)
        except GraphBubbleUp:  # interrupt(): pause the run, let the caller resume it
            raise
        except ProviderError as exc:
            if exc.retryable:
                raise
            outcome = _failed(task, exc)
        except Exception as exc:  # a handler bug or bad output: a failed task, the run goes on
            outcome = _failed(task, exc)
        outcome.task_id = task.id
        if outcome.route in ("", "default"):
            outcome.route = task.type
        outcome.extra.setdefault("latency_s", round(time.perf_counter() - t0, 3))
        return finished(outcome)

    return anode("handler", handler)


def _failed(task: Task, exc: BaseException) -> TaskOutcome:
    return TaskOutcome(task_id=task.id, status="failed", route=task.type, error=f"{type(exc).__name__}: {exc}")


def build_subgraph_route(task_type: str, graph: Any) -> Any:
    """Wrap a registered subgraph: ``<type>_run`` (the subgraph itself) → ``<type>_record``."""

    def record(state: State) -> dict[str, Any]:
        task_id = str(state["task"]["id"])
        if state.get("outcome"):
            out = TaskOutcome.from_dict({**state["outcome"], "task_id": task_id})
        else:
            text = str(state.get("output") or "").strip()
            out = TaskOutcome(task_id=task_id, status="done" if text else "failed", output=text, route=task_type,
                              score=state.get("score"),
                              error=None if text else "the subgraph gave no output")  # fmt: skip
        return finished(out)

    g = StateGraph(TaskState, input_schema=TaskIn, output_schema=TaskOut)
    g.add_node(f"{task_type}_run", graph)
    g.add_node(f"{task_type}_record", snode(f"{task_type}_record", record))
    g.add_edge(START, f"{task_type}_run")
    g.add_edge(f"{task_type}_run", f"{task_type}_record")
    g.add_edge(f"{task_type}_record", END)
    return g.compile(name=f"route_{task_type}")

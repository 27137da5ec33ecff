"""Thin node functions: translate graph state into calls to the planner, the routes and the generation
pair, and their results back into state."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Send

from genesis_ps.errors import ProviderError
from genesis_ps.graph.generation import GenerationPair
from genesis_ps.graph.rollout import request_id_for
from genesis_ps.graph.routes import RouteContext, RouteRegistry, TaskOutcome
from genesis_ps.graph.state import GraphContext, GraphState, TaskInput
from genesis_ps.planners.dag import Task, TaskDAG
from genesis_ps.planners.planner import check_request, decompose
from genesis_ps.sampling.params import SamplerParams
from genesis_ps.sampling.protocol import Prompt, TokenModel
from genesis_ps.sampling.result import GenerationResult
from genesis_ps.settings import Settings

__all__ = ["Nodes"]


@dataclass
class Nodes:
    """The graph's nodes, bound to the models and options ``build_graph`` received."""

    model: TokenModel
    settings: Settings
    routes: RouteRegistry
    fallback_model: TokenModel | None = None
    evaluators: Mapping[str, Any] = field(default_factory=dict)
    planner_options: Mapping[str, Any] = field(default_factory=dict)
    plan_max_new_tokens: int = 192
    task_max_new_tokens: int = 96
    temperature: float | None = None
    plan_lam: float = 0.0
    sampler_kwargs: Mapping[str, Any] = field(default_factory=dict)
    _pairs: dict[int, GenerationPair] = field(default_factory=dict)

    # ---- helpers ------------------------------------------------------------------------------------
    def _ctx(self, runtime: Runtime[Any] | None) -> GraphContext:
        c = getattr(runtime, "context", None)
        return c if isinstance(c, GraphContext) else GraphContext()

    def _settings(self, runtime: Runtime[Any] | None) -> Settings:
        return self._ctx(runtime).settings or self.settings

    def pair(self, settings: Settings) -> GenerationPair:
        key = id(settings)
        if key not in self._pairs:
            self._pairs[key] = GenerationPair(
                self.model,
                settings=settings,
                fallback_model=self.fallback_model,
                sampler_kwargs=dict(self.sampler_kwargs),
            )
        return self._pairs[key]

    @staticmethod
    def _emit(runtime: Runtime[Any] | None, event: dict[str, Any]) -> None:
        writer = getattr(runtime, "stream_writer", None)
        if writer is not None:
            writer(event)

    # ---- plan ---------------------------------------------------------------------------------------
    async def plan(self, state: GraphState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
        """Decompose the request (skipped when the state already holds a DAG), inside a node span."""
        from genesis_ps.observability import layer_scope, node_span

        with node_span("plan"), layer_scope("htdag"):
            return await self._plan(state, runtime)

    async def _plan(self, state: GraphState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
        ctx = self._ctx(runtime)
        request = check_request(state.get("request"))
        rid = state.get("request_id") or ctx.request_id or request_id_for(request)
        if state.get("dag"):
            TaskDAG.from_dict(state["dag"]).validate()
            return {"request": request, "request_id": rid}
        settings = self._settings(runtime)
        pair = self.pair(settings)
        self._emit(runtime, {"event": "plan_start", "request_id": rid})

        tilt: dict[str, Any] = {}
        if self.plan_lam > 0:  # tilt power sampling towards well-formed decompositions
            from genesis_ps.evaluators.base import as_reward
            from genesis_ps.planners.quality import DecompositionEvaluator

            tilt = {"reward": as_reward(DecompositionEvaluator(), {"request": request}), "lam": self.plan_lam}

        plan_params = settings.layer("htdag").params.with_(max_new_tokens=self.plan_max_new_tokens)
        if self.temperature is not None:
            plan_params = plan_params.with_(temperature=self.temperature)

        async def gen(prompt: Prompt, *, power: bool, params: SamplerParams | None = None) -> GenerationResult:
            return await pair(prompt, layer="htdag", params=params or plan_params, power=None if power else False,
                              request_id=rid, sampler_kwargs=tilt)  # fmt: skip

        d = await decompose(request, generator=gen, params=plan_params, power=True, **dict(self.planner_options))
        record = d.to_dict()
        record.pop("tasks")
        fallbacks = [{"where": "plan", "reason": r} for r in d.generation_fallbacks]
        if d.fallback:
            fallbacks.append({"where": "plan", "reason": d.fallback})
        self._emit(runtime, {"event": "plan_end", "tasks": d.dag.to_dict()["tasks"], "fallback": d.fallback})
        return {"request": request, "request_id": rid, "dag": d.dag.to_dict(), "plan": record, "fallbacks": fallbacks}

    # ---- schedule -----------------------------------------------------------------------------------
    def schedule(self, state: GraphState) -> dict[str, Any]:
        """Mark tasks downstream of a failure as skipped (they never run)."""
        dag = TaskDAG.from_dict(state["dag"])
        outcomes = state.get("outcomes") or {}
        bad = [i for i, o in outcomes.items() if o["status"] in ("failed", "skipped")]
        skipped = {
            tid: TaskOutcome(
                task_id=tid, status="skipped", route="none", error="a dependency failed or was skipped"
            ).to_dict()
            for tid in sorted(dag.blocked_by_failure(bad))
            if tid not in outcomes
        }
        return {"outcomes": skipped} if skipped else {}

    def next_wave(self, state: GraphState) -> list[Send] | str:
        """Fan out every ready task (up to ``max_concurrency``) with ``Send``; ``finish`` when none is."""
        dag = TaskDAG.from_dict(state["dag"])
        outcomes = state.get("outcomes") or {}
        done = [i for i, o in outcomes.items() if o["status"] == "done"]
        bad = [i for i, o in outcomes.items() if o["status"] != "done"]
        excluded = set(outcomes) | dag.blocked_by_failure(bad)
        ready = dag.ready(done, excluded=excluded)[: self.settings.max_concurrency]
        if not ready:
            return "finish"
        spent = _spent(state)
        sends = []
        for tid in ready:
            t = dag.get(tid)
            inp: TaskInput = {
                "task": t.to_dict(),
                "request": state["request"],
                "request_id": state["request_id"],
                "deps": {d: outcomes[d] for d in t.depends_on},
                "spent_tokens": spent,
            }
            sends.append(Send("execute", inp))
        return sends

    # ---- execute ------------------------------------------------------------------------------------
    async def execute(self, inp: TaskInput, runtime: Runtime[GraphContext]) -> dict[str, Any]:
        """Run one task through its route. Handler errors become a failed outcome; retryable provider
        errors propagate (the node's retry policy, then the run stops and can be resumed)."""
        from genesis_ps.graph.routes import layer_for_type
        from genesis_ps.observability import layer_scope, node_span

        ttype = str(inp["task"].get("type", "general"))
        with (
            node_span("execute", task_id=str(inp["task"].get("id")), task_type=ttype),
            layer_scope(layer_for_type(ttype)),
        ):
            return await self._execute(inp, runtime)

    async def _execute(self, inp: TaskInput, runtime: Runtime[GraphContext]) -> dict[str, Any]:
        task = Task.from_dict(inp["task"])
        settings = self._settings(runtime)
        pair = self.pair(settings)
        rid, spent = inp["request_id"], inp["spent_tokens"]

        async def gen(
            prompt: Prompt, *, layer: str = "htdag", params: SamplerParams | None = None, power: bool | None = None
        ) -> GenerationResult:
            p = params if params is not None else ctx.layer_params(layer)  # the graph's limits, not 256 tokens
            return await pair(prompt, layer=layer, params=p, power=power, request_id=rid, spent_tokens=spent)

        max_new = self._ctx(runtime).task_max_new_tokens or self.task_max_new_tokens
        ctx = RouteContext(
            request=inp["request"],
            request_id=rid,
            model=self.model,
            generate=gen,
            settings=settings,
            max_new_tokens=max_new,
            temperature=self.temperature,
            evaluators=self.evaluators,
            emit=lambda e: self._emit(runtime, {**e, "task_id": task.id}),
        )
        name, handler = self.routes.get(task.type)
        deps = {k: TaskOutcome.from_dict(v) for k, v in inp["deps"].items()}
        self._emit(runtime, {"event": "task_start", "task_id": task.id, "route": name})
        t0 = time.perf_counter()
        try:
            outcome = await handler(task, deps, ctx)
        except ProviderError as exc:
            if exc.retryable:
                raise
            outcome = TaskOutcome(task_id=task.id, status="failed", route=name, error=f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a handler bug or bad output: recorded as a failed task, the run goes on
            outcome = TaskOutcome(task_id=task.id, status="failed", route=name, error=f"{type(exc).__name__}: {exc}")
        outcome.task_id = task.id
        if outcome.route in ("", "default"):
            outcome.route = name
        outcome.extra.setdefault("latency_s", round(time.perf_counter() - t0, 3))
        self._emit(
            runtime, {"event": "task_end", "task_id": task.id, "status": outcome.status, "fallbacks": outcome.fallbacks}
        )
        fallbacks = [{"where": task.id, "reason": r} for r in outcome.fallbacks]
        return {"outcomes": {task.id: outcome.to_dict()}, "fallbacks": fallbacks}

    # ---- finish -------------------------------------------------------------------------------------
    def finish(self, state: GraphState) -> dict[str, Any]:
        """Aggregate: counts, measured tokens and cost multiplier, fallbacks, the sink tasks' answer."""
        dag = TaskDAG.from_dict(state["dag"])
        outcomes = state.get("outcomes") or {}
        plan = state.get("plan") or {}
        gen = int(plan.get("tokens_generated", 0)) + sum(
            TaskOutcome.from_dict(o).tokens_generated for o in outcomes.values()
        )
        ret = int(plan.get("tokens_returned", 0)) + sum(
            TaskOutcome.from_dict(o).tokens_returned for o in outcomes.values()
        )
        status = {s: sum(1 for o in outcomes.values() if o["status"] == s) for s in ("done", "failed", "skipped")}
        reasons: dict[str, int] = {}
        for f in state.get("fallbacks") or []:
            reasons[f["reason"]] = reasons.get(f["reason"], 0) + 1
        sinks = [t.id for t in dag.tasks if not dag.dependents(t.id)]
        answer = "\n\n".join(outcomes[s]["output"] for s in sinks if outcomes.get(s, {}).get("status") == "done")
        scores = [o["score"] for o in outcomes.values() if o.get("score") is not None]
        return {
            "summary": {
                "tasks": len(dag.tasks),
                **status,
                "tokens_generated": gen,
                "tokens_returned": ret,
                "cost_multiplier": round(gen / max(ret, 1), 4),
                "fallback_reasons": reasons,
                "plan_fallback": plan.get("fallback"),
                "plan_quality": plan.get("quality"),
                "mean_task_score": (sum(scores) / len(scores)) if scores else None,
                "answer": answer,
            }
        }


def _spent(state: GraphState) -> int:
    plan = state.get("plan") or {}
    outs = state.get("outcomes") or {}
    return int(plan.get("tokens_generated", 0)) + sum(TaskOutcome.from_dict(o).tokens_generated for o in outs.values())

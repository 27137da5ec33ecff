"""The ``darwin`` subgraph: the route of ``code`` tasks, SE-Darwin evolution as nodes.

``darwin_population`` plans the initial population (the first member power-sampled when the route's
``power`` is on — a ``flag_off`` fallback while the ``se_darwin`` layer is disabled); the operators of a
generation fan out with ``Send`` to ``darwin_operator``, a subgraph per operator call —
``darwin_propose`` (the operator's prompt) → the generation pair → ``darwin_evaluate`` (the candidate
scored in the sandbox); ``darwin_select`` adds the generation to the archive, applies the stop rule
(target score, generation cap, call/token budget) and chooses the next generation's operators and
parents from the archive (score- and use-weighted); ``darwin_done`` records the best candidate.

Without an evaluator for the task (``evaluators["code"]`` or ``["*"]``) there is nothing to select on:
one candidate is made and left unscored. The steps are :mod:`genesis_ps.operators`'.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy, Send
from typing_extensions import TypedDict

from genesis_ps.evaluators.base import Score, safe_evaluate
from genesis_ps.graph.env import GraphEnv
from genesis_ps.graph.generation import add_generation_pair, gen_request, result_of
from genesis_ps.graph.outcome import TaskOutcome, finished
from genesis_ps.graph.state import GenKeys, TaskIn, TaskOut, TaskState
from genesis_ps.graph.wire import State, anode, emit, read_route, snode
from genesis_ps.observability import record_evaluation
from genesis_ps.operators.evolution import (
    EvolutionConfig,
    budget_spent,
    choose_offspring,
    generation_rng,
    initial_operator,
)
from genesis_ps.operators.ops import candidate_of, make_trajectory, operator_prompt
from genesis_ps.operators.trajectory import Archive, Trajectory

__all__ = ["DarwinState", "build_darwin_graph"]


def offspring_reducer(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    """Operator branches each add their trajectory; ``None`` clears the list (after selection)."""
    return [] if right is None else [*(left or []), *right]


class DarwinState(TaskState, total=False):
    darwin: dict[str, Any]
    """Archive (trajectories and use counts), generation, calls, tokens, fallbacks, stop reason."""
    pending: list[dict[str, Any]]
    """The operator calls of the next generation: id, operator, parent ids, generation."""
    offspring: Annotated[list[dict[str, Any]], offspring_reducer]


class OperatorIn(TypedDict, total=False):
    spec: dict[str, Any]
    parents: list[dict[str, Any]]
    task: dict[str, Any]
    task_text: str
    request: str
    request_id: str
    spent_tokens: int
    trace: dict[str, Any]


class _OperatorState(OperatorIn, GenKeys, total=False):
    offspring: Annotated[list[dict[str, Any]], offspring_reducer]


class _OperatorOut(TypedDict, total=False):
    offspring: Annotated[list[dict[str, Any]], offspring_reducer]


def _operator_graph(env: GraphEnv, retry: RetryPolicy | None) -> Any:
    """One operator call: prompt → generation pair → sandboxed evaluation."""

    def parents(state: State) -> tuple[Trajectory, ...]:
        return tuple(Trajectory.from_dict(t) for t in state.get("parents") or [])

    def darwin_propose(state: State) -> dict[str, Any]:
        spec = state["spec"]
        prompt, power, _ = operator_prompt(str(state["task_text"]), spec["operator"], parents(state))
        p = env.layer_params("se_darwin")
        return gen_request(prompt, p if power else p.with_(method="single"), then="darwin_evaluate", layer="se_darwin",
                           step=str(spec["operator"]), power=None if power else False,
                           request_id=str(state.get("request_id") or ""),
                           spent_tokens=int(state.get("spent_tokens", 0)))  # fmt: skip

    async def darwin_evaluate(state: State) -> dict[str, Any]:
        spec, g = state["spec"], result_of(state)
        if state.get("gen_error") or g is None:
            return {"offspring": [{"id": spec["id"], "error": str(state.get("gen_error") or "no answer"),
                                   "generation_record": state.get("gen_result")}]}  # fmt: skip
        task = state["task"]
        evaluator = env.evaluator(str(task.get("type")))
        candidate = candidate_of(g.text)
        if evaluator is None:
            score = Score(None, error="no evaluator configured", evaluator="none")
        else:
            ctx = {"task": task["description"], "request": state.get("request", "")}
            score = await asyncio.to_thread(safe_evaluate, evaluator, candidate, ctx)
            record_evaluation(score.evaluator or evaluator.name, score.value, layer="se_darwin")
        _, _, default = operator_prompt(str(state["task_text"]), spec["operator"], parents(state))
        t = make_trajectory(str(spec["id"]), str(spec["operator"]), parents(state), int(spec["generation"]), g,
                            candidate, score, default_strategy=default)  # fmt: skip
        return {"offspring": [{"id": t.id, "trajectory": t.to_dict(), "generation_record": state["gen_result"]}]}

    g = StateGraph(_OperatorState, input_schema=OperatorIn, output_schema=_OperatorOut)
    g.add_node("darwin_propose", snode("darwin_propose", darwin_propose, layer="se_darwin"))
    g.add_node("darwin_evaluate", anode("darwin_evaluate", darwin_evaluate, layer="se_darwin"))
    add_generation_pair(g, env, ["darwin_evaluate"], retry=retry)
    g.add_edge(START, "darwin_propose")
    g.add_conditional_edges("darwin_propose", read_route, ["power_sample", "single_shot"])
    g.add_edge("darwin_evaluate", END)
    return g.compile(name="darwin_operator")


def build_darwin_graph(env: GraphEnv, *, retry: RetryPolicy | None = None) -> Any:
    """Compile the SE-Darwin subgraph over ``env``."""

    def config(state: State) -> EvolutionConfig:
        if env.evaluator(str(state["task"].get("type"))) is not None:
            return env.darwin_config
        return EvolutionConfig(max_generations=0, initial_population=1, power=env.darwin_config.power)

    def spec(d: dict[str, Any], op: str, parents: tuple[Trajectory, ...], generation: int) -> dict[str, Any]:
        d["next_id"] += 1
        return {"id": f"t{d['next_id']}", "operator": op, "parents": [p.id for p in parents], "generation": generation}

    def darwin_population(state: State) -> dict[str, Any]:
        emit({"event": "task_start", "task_id": state["task"]["id"], "route": "se_darwin"})
        cfg = config(state)
        d: dict[str, Any] = {"archive": Archive(floor=cfg.floor).to_state(), "generations": 0, "model_calls": 0,
                             "requests": 0, "tokens": 0, "stop_reason": "", "errors": [], "gens": [],
                             "next_id": 0}  # fmt: skip
        n = cfg.initial_population if cfg.max_calls is None else min(cfg.initial_population, cfg.max_calls)
        pending = [spec(d, initial_operator(cfg, i), (), 0) for i in range(n)]
        return {"darwin": d, "pending": pending, "offspring": None}

    def darwin_select(state: State) -> dict[str, Any]:
        cfg, d = config(state), dict(state["darwin"])
        archive = Archive.from_state(d["archive"])
        hit = False
        for item in sorted(state.get("offspring") or [], key=lambda o: int(str(o["id"])[1:])):
            d["model_calls"] += 1
            if item.get("generation_record"):
                d["gens"] = [*d["gens"], item["generation_record"]]
            if "error" in item:
                d["errors"] = [*d["errors"], f"{item['id']}: {item['error']}"]
                continue
            t = archive.add(Trajectory.from_dict(item["trajectory"]))
            d["requests"] += t.requests
            d["tokens"] += t.tokens_generated
            hit = hit or (t.score is not None and t.score >= cfg.target_score)
        pending: list[dict[str, Any]] = []
        if hit:
            d["stop_reason"] = "target"
        elif d["generations"] >= cfg.max_generations:
            d["stop_reason"] = "generation_cap"
        elif budget_spent(cfg, d["model_calls"], d["tokens"]):
            d["stop_reason"] = "budget"
        elif not len(archive):
            d["stop_reason"] = "no_candidate"
        else:
            d["generations"] += 1
            rng = generation_rng(cfg.seed, d["generations"])
            left = cfg.offspring if cfg.max_calls is None else min(cfg.offspring, cfg.max_calls - d["model_calls"])
            for slot in range(left):
                op, parents = choose_offspring(archive, rng, cfg, slot)
                pending.append(spec(d, op, parents, d["generations"]))
        d["archive"] = archive.to_state()
        return {"darwin": d, "pending": pending, "offspring": None}

    def dispatch(state: State) -> list[Send] | str:
        """Fan the pending operator calls out with ``Send``; none left → ``darwin_done``."""
        pending = state.get("pending") or []
        if not pending:
            return "darwin_done"
        d = state["darwin"]
        items = {t["id"]: t for t in d["archive"]["items"]}
        base = {k: state.get(k) for k in ("task", "task_text", "request", "request_id", "trace")}
        spent = int(state.get("spent_tokens", 0)) + int(d["tokens"])
        return [Send("darwin_operator", {**base, "spec": s, "parents": [items[p] for p in s["parents"]],
                                         "spent_tokens": spent}) for s in pending]  # fmt: skip

    def darwin_done(state: State) -> dict[str, Any]:
        d = state["darwin"]
        archive = Archive.from_state(d["archive"])
        best = archive.best()
        out = TaskOutcome(task_id=str(state["task"]["id"]), status="done", route="se_darwin",
                          output=(best.candidate.strip() if best else ""),
                          score=None if best is None else best.score)  # fmt: skip
        for g in d["gens"]:
            out.add_generation(g)
        if best is not None:
            out.score_details = {**best.score_details, "trajectory": best.id, "operator": best.operator}
        out.extra["se_darwin"] = {"stop_reason": d["stop_reason"], "generations": d["generations"],
                                  "model_calls": d["model_calls"], "trajectories": len(archive),
                                  "errors": d["errors"]}  # fmt: skip
        if not out.output:
            out.status = "failed"
            out.error = "; ".join(d["errors"]) or "no candidate was produced"
        return finished(out)

    g = StateGraph(DarwinState, input_schema=TaskIn, output_schema=TaskOut)
    g.add_node("darwin_population", snode("darwin_population", darwin_population, layer="se_darwin"))
    g.add_node("darwin_operator", _operator_graph(env, retry))
    g.add_node("darwin_select", snode("darwin_select", darwin_select, layer="se_darwin"))
    g.add_node("darwin_done", snode("darwin_done", darwin_done, layer="se_darwin"))
    g.add_edge(START, "darwin_population")
    g.add_conditional_edges("darwin_population", dispatch, ["darwin_operator", "darwin_done"])
    g.add_edge("darwin_operator", "darwin_select")
    g.add_conditional_edges("darwin_select", dispatch, ["darwin_operator", "darwin_done"])
    g.add_edge("darwin_done", END)
    return g.compile(name="darwin")

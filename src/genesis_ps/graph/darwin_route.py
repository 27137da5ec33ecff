"""Graph route for ``code`` tasks: SE-Darwin evolution (see :mod:`genesis_ps.graph.routes`).

Generations go through the graph's generation pair. The first candidate is a power request (power-
sampled when the ``se_darwin`` layer is enabled, otherwise a recorded ``flag_off`` fallback), later
operators sample once. With an evaluator for the task (``ctx.evaluators["code"]`` or ``["*"]``; a
:class:`~genesis_ps.evaluators.CodeEvaluator` needs ``tests``) the population evolves up to the route's
limits; without one there is nothing to select on, so one candidate is made and left unscored.
"""

from __future__ import annotations

from collections.abc import Mapping

from genesis_ps.graph.outcome import RouteContext, TaskOutcome, pair_generator, task_text
from genesis_ps.operators.evolution import EvolutionConfig, evolve
from genesis_ps.planners.dag import Task
from genesis_ps.sampling.result import GenerationResult

__all__ = ["ROUTE_CONFIG", "darwin_handler"]

ROUTE_CONFIG = EvolutionConfig(max_generations=2, initial_population=1, offspring=2, max_calls=6, power=True)


async def darwin_handler(task: Task, deps: Mapping[str, TaskOutcome], ctx: RouteContext) -> TaskOutcome:
    """Evolve code for the task and return a ``TaskOutcome`` whose output is the best candidate."""
    gens: list[GenerationResult] = []
    evaluator = ctx.evaluators.get(task.type) or ctx.evaluators.get("*")
    cfg = ROUTE_CONFIG if evaluator is not None else EvolutionConfig(max_generations=0, initial_population=1)
    res = await evolve(
        task_text(task, deps, ctx),
        pair_generator(ctx, "se_darwin", gens),
        evaluator,
        eval_context={"task": task.description, "request": ctx.request},
        config=cfg,
    )
    best = res.best
    out = TaskOutcome(
        task_id=task.id,
        status="done",
        route="se_darwin",
        output=(best.candidate.strip() if best else ""),
        score=res.score,
    )
    for g in gens:
        out.add_generation(g)
    if best is not None:
        out.score_details = {**best.score_details, "trajectory": best.id, "operator": best.operator}
    out.extra["se_darwin"] = {
        "stop_reason": res.stop_reason,
        "generations": res.generations,
        "model_calls": res.model_calls,
        "trajectories": len(res.archive),
    }
    if not out.output:
        out.status, out.error = "failed", "no candidate was produced"
    return out

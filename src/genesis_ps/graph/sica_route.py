"""Graph route for ``reasoning`` tasks: the SICA loop (see :mod:`genesis_ps.graph.routes`).

Every generation goes through the graph's generation pair (``ctx.generate``), so flags, rollout, budget
and fallbacks apply and are recorded. With the ``sica`` layer enabled the loop runs in ``power`` mode
(power-sampled draft, then the critique check); otherwise in ``iterative`` mode (single-shot draft,
critique, refine). The task's evaluator (``ctx.evaluators["reasoning"]`` or ``["*"]``) scores answers;
without one the model's own critique decides.
"""

from __future__ import annotations

from collections.abc import Mapping

from genesis_ps.graph.outcome import RouteContext, TaskOutcome, pair_generator, task_text
from genesis_ps.loops.sica import Mode, SicaConfig, run_sica
from genesis_ps.planners.dag import Task
from genesis_ps.sampling.result import GenerationResult

__all__ = ["ROUTE_CONFIG", "sica_handler"]

ROUTE_CONFIG = SicaConfig(max_iterations=3, power_max_iterations=2)


async def sica_handler(task: Task, deps: Mapping[str, TaskOutcome], ctx: RouteContext) -> TaskOutcome:
    """Run SICA on a reasoning task and return a ``TaskOutcome`` with every generation recorded."""
    gens: list[GenerationResult] = []
    evaluator = ctx.evaluators.get(task.type) or ctx.evaluators.get("*")
    mode: Mode = "power" if ctx.settings.layer("sica").enabled else "iterative"
    res = await run_sica(
        task_text(task, deps, ctx),
        pair_generator(ctx, "sica", gens),
        evaluator=evaluator,
        context={"task": task.description, "request": ctx.request},
        mode=mode,
        config=ROUTE_CONFIG,
    )
    out = TaskOutcome(task_id=task.id, status="done", output=res.text.strip(), route="sica", score=res.score)
    for g in gens:
        out.add_generation(g)
    out.score_details = {"source": res.score_source, "stop_reason": res.stop_reason}
    out.extra["sica"] = {
        "mode": res.mode,
        "iterations": res.iterations,
        "model_calls": res.model_calls,
        "requests": res.requests,
        "stop_reason": res.stop_reason,
    }
    if not out.output:
        out.status, out.error = "failed", "the model returned empty text"
    return out

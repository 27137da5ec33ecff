"""The SICA reasoning loop: draft → critique → refine, until the score reaches a threshold or a cap.

Two modes, reporting the same record (:class:`SicaResult`) so they can be compared on one task:

- ``iterative`` — a single-shot draft; then, while the score is below ``threshold`` and fewer than
  ``max_iterations`` answers were drafted, a critique and a refinement.
- ``power`` — one power-sampled draft (``generate(power=True)``; a fallback is recorded). With
  ``power_verify`` the same check follows: below the threshold, critique and refine up to
  ``power_max_iterations`` answers in all.

The score is the evaluator's when one is given (``score_source="evaluator"``); without one it is the
model's own critique score (``"critique"``; a bare PASS verdict passes but leaves ``score`` None — no
number is invented), and a critique that stays malformed after
``critique_retries`` re-asks is recorded as a failure (``stop_reason="critique_failed"``), never turned
into a number. ``model_calls`` counts the loop's generations (draft, critique, repair, refine);
``requests`` and ``tokens_generated`` are what the provider measured, power-sampling proposals included.

The steps and the stop rule live in :class:`~genesis_ps.loops.sica_steps.SicaMachine`; :func:`run_sica`
drives it with a generator, the graph's ``sica`` subgraph drives it node by node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from genesis_ps import observability as obs
from genesis_ps.evaluators.base import Evaluator
from genesis_ps.generation import Generator
from genesis_ps.loops.sica_state import Mode, SicaConfig, SicaResult, SicaStep
from genesis_ps.loops.sica_steps import SicaMachine

__all__ = ["Mode", "SicaConfig", "SicaResult", "SicaStep", "compare_modes", "run_sica"]


async def run_sica(
    task: str,
    generate: Generator,
    *,
    evaluator: Evaluator | None = None,
    context: Mapping[str, Any] | None = None,
    mode: Mode = "iterative",
    config: SicaConfig | None = None,
) -> SicaResult:
    """Run the loop on ``task`` (see the module docstring). ``context`` goes to the evaluator."""
    m = SicaMachine(task, mode=mode, config=config)
    cfg = m.cfg
    with (
        obs.layer_scope("sica"),
        obs.span("genesis_ps.sica", mode=mode, threshold=cfg.threshold, cap=cfg.cap(mode)) as sp,
    ):
        action = m.start()
        while action.kind != "done":
            if action.kind == "refine":
                action = m.refine()
            assert action.prompt is not None
            g = await generate(action.prompt, power=action.power)
            m.record(action, g)
            if evaluator is None:
                action = m.advance(None, context)
            else:  # evaluators may block (a sandbox): off the event loop
                action = await asyncio.to_thread(m.advance, evaluator, context)
        res = m.result()
        obs.set_attributes(sp, stop_reason=res.stop_reason, iterations=res.iterations, calls=res.model_calls,
                           score=res.score, tokens_generated=res.tokens_generated)  # fmt: skip
    return res


async def compare_modes(
    task: str,
    generate: Generator,
    *,
    evaluator: Evaluator | None = None,
    context: Mapping[str, Any] | None = None,
    config: SicaConfig | None = None,
) -> dict[str, SicaResult]:
    """Run both modes on the same task (one after the other) and return ``{"iterative": …, "power": …}``:
    score, model calls, requests and tokens side by side, each measured on its own run."""
    return {
        mode: await run_sica(task, generate, evaluator=evaluator, context=context, mode=mode, config=config)
        for mode in ("iterative", "power")
    }

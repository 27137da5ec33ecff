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
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from genesis_ps import observability as obs
from genesis_ps.errors import ConfigError
from genesis_ps.evaluators.base import Evaluator, safe_evaluate
from genesis_ps.generation import Generator
from genesis_ps.loops.critique import (
    Critique,
    critique_prompt,
    draft_prompt,
    parse_critique,
    refine_prompt,
    repair_prompt,
)
from genesis_ps.sampling.protocol import Prompt
from genesis_ps.sampling.result import GenerationResult

__all__ = ["Mode", "SicaConfig", "SicaResult", "SicaStep", "compare_modes", "run_sica"]

Mode = Literal["iterative", "power"]


@dataclass(frozen=True, kw_only=True)
class SicaConfig:
    """Stopping rules and retries of the loop."""

    max_iterations: int = 4
    """Answers drafted at most (the first draft plus refinements), iterative mode."""
    threshold: float = 0.8
    critique_retries: int = 1
    """Re-asks when a critique is malformed."""
    power_verify: bool = True
    """Power mode: follow the power-sampled draft with the critique check (and refinement if needed)."""
    power_max_iterations: int = 2
    """Power mode with ``power_verify``: answers drafted at most (the power draft included)."""

    def __post_init__(self) -> None:
        for name, low in (("max_iterations", 1), ("critique_retries", 0), ("power_max_iterations", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ConfigError(name, f"must be an integer >= {low}, got {v!r}")
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= t <= 1.0:
            raise ConfigError("threshold", f"must be in [0, 1], got {t!r}")


@dataclass
class SicaStep:
    """One model call of the loop (``kind``: draft, power_draft, critique, critique_repair, refine)."""

    kind: str
    iteration: int
    text: str
    method: str
    tokens_generated: int
    requests: int
    fallback: str | None = None
    score: float | None = None
    score_details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class SicaResult:
    """What the loop produced and what it cost; every figure measured on this run."""

    text: str
    score: float | None
    score_source: str | None
    iterations: int
    model_calls: int
    requests: int
    tokens_generated: int
    mode: str
    stop_reason: str
    fallbacks: list[str] = field(default_factory=list)
    history: list[SicaStep] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Run:
    def __init__(
        self,
        task: str,
        gen: Generator,
        evaluator: Evaluator | None,
        context: Mapping[str, Any] | None,
        cfg: SicaConfig,
        mode: str,
    ) -> None:
        self.task, self.gen, self.evaluator, self.context, self.cfg = task, gen, evaluator, context, cfg
        self.res = SicaResult(
            text="",
            score=None,
            score_source=None,
            iterations=0,
            model_calls=0,
            requests=0,
            tokens_generated=0,
            mode=mode,
            stop_reason="",
        )

    async def call(self, kind: str, prompt: Prompt, *, power: bool = False) -> SicaStep:
        g: GenerationResult = await self.gen(prompt, power=power)
        step = SicaStep(
            kind=kind,
            iteration=self.res.iterations,
            text=g.text,
            method=g.method,
            tokens_generated=g.tokens_generated,
            requests=g.requests,
            fallback=g.fallback,
        )
        r = self.res
        r.model_calls += 1
        r.requests += g.requests
        r.tokens_generated += g.tokens_generated
        if g.fallback:
            r.fallbacks.append(g.fallback)
        r.history.append(step)
        return step

    async def critique(self, answer: str) -> Critique:
        step = await self.call("critique", critique_prompt(self.task, answer))
        c = parse_critique(step.text)
        for _ in range(self.cfg.critique_retries):
            if c.ok:
                break
            step.error = "malformed critique"
            step = await self.call("critique_repair", repair_prompt(self.task, answer, step.text))
            c = parse_critique(step.text)
        if not c.ok:
            step.error = "malformed critique (after retries)"
        step.score = c.score
        return c

    async def check(self, answer: str, step: SicaStep, last: bool) -> tuple[bool, str | None]:
        """Score ``answer``: (passed, feedback for a refinement — None when there is none)."""
        threshold = self.cfg.threshold
        if self.evaluator is not None:
            s = await asyncio.to_thread(safe_evaluate, self.evaluator, answer, self.context)
            obs.record_evaluation(s.evaluator or self.evaluator.name, s.value, layer="sica")
            step.score, step.score_details = s.value, {**dict(s.details), "error": s.error}
            self.res.score, self.res.score_source = s.value, "evaluator"
            passed = s.value is not None and s.value >= threshold
            if passed or last:
                return passed, None
            reason = s.details.get("reason") or s.error
            parts = [f"- automatic check: {reason}"] if reason else []
            c = await self.critique(answer)
            if c.raw.strip():
                parts.append(c.feedback)
            return False, ("\n".join(parts) or None)
        c = await self.critique(answer)
        self.res.score, self.res.score_source = c.score, "critique"
        if not c.ok:
            return False, None
        passed = c.score >= threshold if c.score is not None else c.verdict == "pass"
        return passed, c.feedback


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
    if not isinstance(task, str) or not task.strip():
        raise ConfigError("task", "must be a non-empty string")
    if mode not in ("iterative", "power"):
        raise ConfigError("mode", f"must be 'iterative' or 'power', got {mode!r}")
    cfg = config or SicaConfig()
    run = _Run(task, generate, evaluator, context, cfg, mode)
    res = run.res
    cap = cfg.max_iterations if mode == "iterative" else (cfg.power_max_iterations if cfg.power_verify else 1)
    with obs.layer_scope("sica"), obs.span("genesis_ps.sica", mode=mode, threshold=cfg.threshold, cap=cap) as sp:
        step = await run.call("power_draft" if mode == "power" else "draft", draft_prompt(task), power=mode == "power")
        res.iterations, res.text = 1, step.text
        while True:
            last = res.iterations >= cap
            if mode == "power" and not cfg.power_verify:
                if evaluator is not None:
                    await run.check(res.text, step, last=True)
                res.stop_reason = "power_only"
                break
            passed, feedback = await run.check(res.text, step, last)
            if passed:
                res.stop_reason = "threshold"
                break
            if last:
                res.stop_reason = "cap"
                break
            if feedback is None:
                res.stop_reason = "critique_failed"
                break
            res.iterations += 1
            step = await run.call("refine", refine_prompt(task, res.text, feedback))
            res.text = step.text
        obs.set_attributes(
            sp,
            stop_reason=res.stop_reason,
            iterations=res.iterations,
            calls=res.model_calls,
            score=res.score,
            tokens_generated=res.tokens_generated,
        )
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

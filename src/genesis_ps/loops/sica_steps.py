"""The SICA loop as steps: :class:`SicaMachine` says which model call comes next, records what came
back, and decides — by the stop rule — whether to critique, refine or stop.

:func:`~genesis_ps.loops.sica.run_sica` drives it with a :class:`~genesis_ps.generation.Generator`; the
graph's ``sica`` subgraph drives the same machine from its ``sica_draft`` / ``sica_critique`` /
``sica_refine`` nodes, checkpointing :meth:`SicaMachine.to_dict` (plain JSON) between steps, so a run
killed inside the loop resumes at its last step.

The stop rule: an answer whose score reaches ``threshold`` stops the loop (``threshold``); the last
allowed answer is only scored (``cap``); a critique that stays malformed after ``critique_retries``
re-asks, with no evaluator to fall back on, stops it (``critique_failed``). In power mode without
``power_verify`` the power-sampled draft is the answer (``power_only``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from genesis_ps import observability as obs
from genesis_ps.errors import ConfigError
from genesis_ps.evaluators.base import Evaluator, safe_evaluate
from genesis_ps.loops.critique import critique_prompt, draft_prompt, parse_critique, refine_prompt, repair_prompt
from genesis_ps.loops.sica_state import SicaConfig, SicaResult, SicaStep
from genesis_ps.sampling.protocol import Prompt
from genesis_ps.sampling.result import GenerationResult

__all__ = ["SicaAction", "SicaMachine"]

_ANSWERS = ("draft", "power_draft", "refine")


@dataclass(frozen=True)
class SicaAction:
    """What the loop wants next: a model call (``kind="generate"``: ``step``, ``prompt``, ``power``), a
    refinement (``kind="refine"``: call :meth:`SicaMachine.refine` for its prompt), or nothing more
    (``kind="done"``; the reason is in the result's ``stop_reason``)."""

    kind: Literal["generate", "refine", "done"]
    step: str = ""
    prompt: Prompt | None = None
    power: bool = False


_DONE = SicaAction("done")


class SicaMachine:
    """One SICA loop over ``task`` (see the module docstring)."""

    def __init__(self, task: str, *, mode: str = "iterative", config: SicaConfig | None = None) -> None:
        if not isinstance(task, str) or not task.strip():
            raise ConfigError("task", "must be a non-empty string")
        if mode not in ("iterative", "power"):
            raise ConfigError("mode", f"must be 'iterative' or 'power', got {mode!r}")
        self.task, self.mode, self.cfg = task, mode, config or SicaConfig()
        self.res = SicaResult(text="", score=None, score_source=None, iterations=0, model_calls=0, requests=0,
                              tokens_generated=0, mode=mode, stop_reason="")  # fmt: skip
        self.answer_at = -1
        """Index in ``history`` of the answer being checked."""
        self.tries = 0
        """Critique re-asks made for the current answer."""
        self.feedback: list[str] = []
        """The evaluator's reason for the current answer, when it has one."""
        self.pending: str | None = None
        """The refinement feedback waiting for :meth:`refine`."""

    # ---- the steps ------------------------------------------------------------------------------------
    def start(self) -> SicaAction:
        """The first call: the draft (power-sampled in power mode)."""
        power = self.mode == "power"
        return SicaAction("generate", "power_draft" if power else "draft", draft_prompt(self.task), power)

    def record(self, action: SicaAction, g: GenerationResult) -> SicaStep:
        """Record the generation ``action`` asked for."""
        r = self.res
        step = SicaStep(kind=action.step, iteration=r.iterations, text=g.text, method=g.method,
                        tokens_generated=g.tokens_generated, requests=g.requests, fallback=g.fallback)  # fmt: skip
        r.model_calls += 1
        r.requests += g.requests
        r.tokens_generated += g.tokens_generated
        if g.fallback:
            r.fallbacks.append(g.fallback)
        r.history.append(step)
        if action.step in _ANSWERS:
            r.iterations = max(r.iterations, 1)
            r.text, self.answer_at, self.tries, self.feedback = g.text, len(r.history) - 1, 0, []
        return step

    def advance(self, evaluator: Evaluator | None = None, context: Mapping[str, Any] | None = None) -> SicaAction:
        """After :meth:`record`: the next call, or done. ``evaluator`` runs here (synchronously)."""
        last_step = self.res.history[-1]
        if last_step.kind in _ANSWERS:
            return self._after_answer(evaluator, context)
        return self._after_critique(evaluator is not None)

    def refine(self) -> SicaAction:
        """The refinement the last :meth:`advance` asked for (``kind == "refine"``)."""
        if self.pending is None:
            raise ConfigError("refine", "no refinement is pending")
        self.res.iterations += 1
        feedback, self.pending = self.pending, None
        return SicaAction("generate", "refine", refine_prompt(self.task, self.res.text, feedback))

    def result(self) -> SicaResult:
        return self.res

    # ---- the stop rule --------------------------------------------------------------------------------
    @property
    def last(self) -> bool:
        return self.res.iterations >= self.cfg.cap(self.mode)

    def _stop(self, reason: str) -> SicaAction:
        self.res.stop_reason = reason
        return _DONE

    def _critique(self) -> SicaAction:
        return SicaAction("generate", "critique", critique_prompt(self.task, self.res.text))

    def _after_answer(self, evaluator: Evaluator | None, context: Mapping[str, Any] | None) -> SicaAction:
        answer = self.res.history[self.answer_at]
        power_only = self.mode == "power" and not self.cfg.power_verify
        if evaluator is not None:
            s = safe_evaluate(evaluator, self.res.text, context)
            obs.record_evaluation(s.evaluator or evaluator.name, s.value, layer="sica")
            answer.score, answer.score_details = s.value, {**dict(s.details), "error": s.error}
            self.res.score, self.res.score_source = s.value, "evaluator"
            if power_only:
                return self._stop("power_only")
            if s.value is not None and s.value >= self.cfg.threshold:
                return self._stop("threshold")
            if self.last:
                return self._stop("cap")
            reason = s.details.get("reason") or s.error
            self.feedback = [f"- automatic check: {reason}"] if reason else []
        elif power_only:
            return self._stop("power_only")
        return self._critique()

    def _after_critique(self, with_evaluator: bool) -> SicaAction:
        step = self.res.history[-1]
        c = parse_critique(step.text)
        if not c.ok and self.tries < self.cfg.critique_retries:
            step.error = "malformed critique"
            self.tries += 1
            return SicaAction("generate", "critique_repair", repair_prompt(self.task, self.res.text, step.text))
        if not c.ok:
            step.error = "malformed critique (after retries)"
        step.score = c.score
        if with_evaluator:
            parts = [*self.feedback, *([c.feedback] if c.raw.strip() else [])]
            passed, feedback = False, ("\n".join(parts) or None)
        else:
            self.res.score, self.res.score_source = c.score, "critique"
            passed = c.ok and (c.score >= self.cfg.threshold if c.score is not None else c.verdict == "pass")
            feedback = c.feedback if c.ok else None
        if passed:
            return self._stop("threshold")
        if self.last:
            return self._stop("cap")
        if feedback is None:
            return self._stop("critique_failed")
        self.pending = feedback
        return SicaAction("refine", "refine")

    # ---- checkpointable state -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The whole state as plain JSON values."""
        return {"task": self.task, "mode": self.mode, "config": asdict(self.cfg), "result": self.res.to_dict(),
                "answer_at": self.answer_at, "tries": self.tries, "feedback": list(self.feedback),
                "pending": self.pending}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SicaMachine:
        m = cls(str(d["task"]), mode=str(d["mode"]), config=SicaConfig(**d["config"]))
        m.res = SicaResult.from_dict(d["result"])
        m.answer_at, m.tries = int(d["answer_at"]), int(d["tries"])
        m.feedback, m.pending = list(d["feedback"]), d.get("pending")
        return m

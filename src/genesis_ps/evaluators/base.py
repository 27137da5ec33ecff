"""The evaluator protocol: text + context → a score in [0, 1] with details.

An evaluator that raises is a *failed evaluation* (``Score.value is None`` with the error), never a
silent 0: :func:`safe_evaluate` is the one place that translation happens.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from genesis_ps.errors import EvaluationError
from genesis_ps.sampling.target import Reward

__all__ = ["Evaluator", "Score", "as_reward", "safe_evaluate"]


@dataclass(frozen=True)
class Score:
    """``value`` in [0, 1], or None when the evaluation itself failed (``error`` says why)."""

    value: float | None
    details: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    evaluator: str = ""

    def __post_init__(self) -> None:
        if self.value is not None and not (math.isfinite(self.value) and 0.0 <= self.value <= 1.0):
            raise ValueError(f"Score.value must be in [0, 1] or None, got {self.value!r}")

    @property
    def ok(self) -> bool:
        return self.value is not None


@runtime_checkable
class Evaluator(Protocol):
    name: str

    def evaluate(self, text: str, context: Mapping[str, Any] | None = None) -> Score: ...


def safe_evaluate(evaluator: Evaluator, text: str, context: Mapping[str, Any] | None = None) -> Score:
    """Run ``evaluator``; an exception becomes a failed :class:`Score` that names it."""
    try:
        score = evaluator.evaluate(text, context)
    except Exception as exc:  # an evaluator bug must not crash the graph; it is recorded, not hidden
        return Score(None, error=f"{type(exc).__name__}: {exc}", evaluator=getattr(evaluator, "name", "?"))
    return score


def as_reward(evaluator: Evaluator, context: Mapping[str, Any] | None = None) -> Reward:
    """An evaluator as a reward tilt for :class:`~genesis_ps.sampling.Target`. A failed evaluation raises
    :class:`EvaluationError` (the sampler must not treat it as a low score)."""

    def reward(text: str) -> float:
        s = safe_evaluate(evaluator, text, context)
        if s.value is None:
            raise EvaluationError(f"evaluator {evaluator.name} failed: {s.error}")
        return s.value

    return reward

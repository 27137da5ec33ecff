"""A weighted combination of evaluators.

Each component runs through :func:`~genesis_ps.evaluators.base.safe_evaluate`. A failed component is
never counted as 0: with ``on_failure="fail"`` (default) the composite evaluation fails and names it;
with ``"skip"`` the remaining weights are renormalised and ``details["failed"]`` lists what was skipped
(the composite fails only when every component failed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from genesis_ps.errors import ConfigError
from genesis_ps.evaluators.base import Evaluator, Score, safe_evaluate

__all__ = ["CompositeEvaluator"]


class CompositeEvaluator:
    """Weighted mean of component scores: ``Σ wᵢ·sᵢ / Σ wᵢ`` over the components that succeeded."""

    def __init__(
        self,
        components: Sequence[tuple[Evaluator, float]] | Mapping[str, tuple[Evaluator, float]],
        *,
        on_failure: Literal["fail", "skip"] = "fail",
        name: str = "composite",
    ) -> None:
        items = list(components.values()) if isinstance(components, Mapping) else list(components)
        if not items:
            raise ConfigError("components", "needs at least one (evaluator, weight) pair")
        for ev, w in items:
            if not hasattr(ev, "evaluate"):
                raise ConfigError("components", f"{ev!r} is not an evaluator (no evaluate method)")
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise ConfigError("components", f"weight of {getattr(ev, 'name', ev)!r} must be >= 0, got {w!r}")
        if sum(w for _, w in items) <= 0:
            raise ConfigError("components", "weights must not all be 0")
        if on_failure not in ("fail", "skip"):
            raise ConfigError("on_failure", f"must be 'fail' or 'skip', got {on_failure!r}")
        self.components = items
        self.on_failure = on_failure
        self.name = name

    def evaluate(self, text: str, context: Mapping[str, Any] | None = None) -> Score:
        parts: dict[str, Any] = {}
        failed: dict[str, str] = {}
        num = den = 0.0
        for i, (ev, w) in enumerate(self.components):
            label = getattr(ev, "name", f"component{i}")
            if label in parts or label in failed:
                label = f"{label}#{i}"
            s = safe_evaluate(ev, text, context)
            if s.value is None:
                failed[label] = s.error or "failed"
                continue
            parts[label] = {"value": s.value, "weight": w, "details": dict(s.details)}
            num += w * s.value
            den += w
        details: dict[str, Any] = {"components": parts, "failed": failed}
        if failed and (self.on_failure == "fail" or den <= 0):
            msg = "; ".join(f"{k}: {v}" for k, v in failed.items())
            return Score(None, details=details, error=f"component evaluation failed: {msg}", evaluator=self.name)
        if den <= 0:  # every succeeding component had weight 0
            return Score(
                None, details=details, error="no component with positive weight succeeded", evaluator=self.name
            )
        return Score(min(1.0, max(0.0, num / den)), details=details, evaluator=self.name)

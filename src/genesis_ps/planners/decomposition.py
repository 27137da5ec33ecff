"""The record of one decomposition: the DAG and everything it cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genesis_ps.evaluators.base import Score
from genesis_ps.planners.dag import TaskDAG
from genesis_ps.sampling.result import GenerationResult

__all__ = ["Decomposition"]


@dataclass
class Decomposition:
    """A decomposition and everything it cost. ``fallback`` is None when the model's DAG was used."""

    dag: TaskDAG
    request: str
    method: str
    """Requested generation method (``single``, ``mh``, ``smc``, ``imh``)."""
    generations: list[GenerationResult] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    """Per attempt: form, repairs, problems, which generation."""
    fallback: str | None = None
    """None, or ``heuristic:<why>`` when the rule-based decomposition was used."""
    quality: Score | None = None
    repairs: list[str] = field(default_factory=list)
    depth_reached: int = 0
    latency_s: float = 0.0
    type_sources: dict[str, str] = field(default_factory=dict)
    """Task id → ``model`` or ``rules``: who typed the task (filled when types were classified)."""

    @property
    def tokens_generated(self) -> int:
        return sum(g.tokens_generated for g in self.generations)

    @property
    def tokens_returned(self) -> int:
        return sum(g.tokens_returned for g in self.generations)

    @property
    def cost_multiplier(self) -> float:
        """Measured over every generation this decomposition made."""
        return self.tokens_generated / max(self.tokens_returned, 1)

    @property
    def generation_fallbacks(self) -> list[str]:
        return [g.fallback for g in self.generations if g.fallback]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.dag.to_dict(),
            "method": self.method,
            "methods_used": sorted({g.method for g in self.generations}),
            "fallback": self.fallback,
            "quality": None if self.quality is None else self.quality.value,
            "quality_details": None if self.quality is None else dict(self.quality.details),
            "cost_multiplier": round(self.cost_multiplier, 4),
            "tokens_generated": self.tokens_generated,
            "tokens_returned": self.tokens_returned,
            "generation_fallbacks": self.generation_fallbacks,
            "attempts": self.attempts,
            "generations": [g.to_dict() for g in self.generations],
            "repairs": self.repairs,
            "depth_reached": self.depth_reached,
            "latency_s": round(self.latency_s, 3),
            "type_sources": dict(self.type_sources),
        }

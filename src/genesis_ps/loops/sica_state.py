"""The SICA loop's records: its configuration (:class:`SicaConfig`), one model call (:class:`SicaStep`)
and the outcome (:class:`SicaResult`). Plain values, so a loop's state survives a JSON checkpoint."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from genesis_ps.errors import ConfigError

__all__ = ["Mode", "SicaConfig", "SicaResult", "SicaStep"]

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

    def cap(self, mode: str) -> int:
        """Answers drafted at most in ``mode``."""
        if mode == "iterative":
            return self.max_iterations
        return self.power_max_iterations if self.power_verify else 1


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

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SicaResult:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["fallbacks"] = list(kw.get("fallbacks") or [])
        kw["history"] = [s if isinstance(s, SicaStep) else SicaStep(**s) for s in kw.get("history") or []]
        return cls(**kw)

"""The record every generation returns, power-sampled or not."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["GenerationResult"]


@dataclass(kw_only=True)
class GenerationResult:
    """What was generated, how, and what it cost — every figure measured on this run."""

    text: str
    method: str
    """The method that produced ``text`` (``mh``, ``smc``, ``imh``, ``single``)."""
    provider: str
    model: str
    alpha: float | None
    tokens_generated: int
    """Every token sampled to produce this result: all proposals, particles and blocks."""
    tokens_returned: int
    """Tokens in the returned text (EOS included when it ended on EOS)."""
    latency_s: float
    seed: int | None
    fallback: str | None = None
    """None, or why a fallback (single-shot) produced the text instead of the requested method."""
    requested_method: str | None = None
    acceptance_rate: float | None = None
    proposals: int = 0
    accepted: int = 0
    ess_history: list[float] = field(default_factory=list)
    resamples: int = 0
    requests: int = 0
    selection: str = "last"
    logp_sum: float | None = None
    """Σ log p of the returned tokens under the base model (None if the provider gives no log-probs)."""
    log_target: float | None = None
    """α·Σ log p (+ λ·reward) of the returned text."""
    reward: float | None = None
    eos: bool = False
    budget_exhausted: bool = False
    approx_logprobs: bool = False
    """True when log q came from a top-k approximation (never silently)."""
    tokens: list[int] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cost_multiplier(self) -> float:
        """Measured: tokens generated over tokens returned."""
        return self.tokens_generated / max(self.tokens_returned, 1)

    def to_dict(self, *, with_tokens: bool = False) -> dict[str, Any]:
        d = asdict(self)
        d["cost_multiplier"] = round(self.cost_multiplier, 4)
        if not with_tokens:
            d.pop("tokens")
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GenerationResult:
        """The inverse of :meth:`to_dict` (derived keys such as ``cost_multiplier`` are ignored), so a
        result can travel through JSON-only state such as a graph checkpoint."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

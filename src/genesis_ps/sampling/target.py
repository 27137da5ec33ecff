"""The distribution power sampling aims at: log π(x) = α·Σ log p(x) + λ·reward(x)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from genesis_ps.errors import ConfigError

__all__ = ["Reward", "Target"]

Reward = Callable[[str], float]
"""A cheap score of a (partial or complete) text; larger is better."""


@dataclass(frozen=True)
class Target:
    """``λ = 0`` (or no reward) is pure power sampling. With λ > 0 the chain targets
    p(x)^α · exp(λ·reward(x)): an evaluator tilts the distribution, in a principled way."""

    alpha: float
    reward: Reward | None = None
    lam: float = 0.0

    def __post_init__(self) -> None:
        a = self.alpha
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not (math.isfinite(a) and a > 0):
            raise ConfigError("alpha", f"must be a finite number > 0, got {a!r}")
        if not math.isfinite(self.lam) or self.lam < 0:
            raise ConfigError("lam", f"must be a finite number >= 0, got {self.lam!r}")
        if self.lam > 0 and self.reward is None:
            raise ConfigError("reward", "lam > 0 needs a reward function")

    @property
    def tilted(self) -> bool:
        return self.reward is not None and self.lam > 0

    def reward_term(self, text: str) -> float:
        """λ·reward(text), or 0 without a tilt. A non-finite reward is an error, never a silent 0."""
        if not self.tilted:
            return 0.0
        assert self.reward is not None
        r = float(self.reward(text))
        if not math.isfinite(r):
            raise ValueError(f"reward returned a non-finite value {r!r}")
        return self.lam * r

    def log_density(self, logp_sum: float, text: str | None = None) -> float:
        """log π up to its normaliser."""
        return self.alpha * logp_sum + (self.reward_term(text) if text is not None else 0.0)

"""Sampler parameters, validated at the edge before any model work starts."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from genesis_ps.errors import ConfigError

__all__ = [
    "MAX_ALPHA",
    "MAX_TEMPERATURE",
    "METHODS",
    "MIN_TEMPERATURE",
    "SELECTIONS",
    "Budget",
    "Method",
    "SamplerParams",
    "Selection",
    "check_int",
    "check_positive",
    "check_seed",
    "check_temperature",
]

Method = Literal["mh", "smc", "imh", "single"]
Selection = Literal["last", "best_target", "best_evaluator"]
METHODS: tuple[str, ...] = ("mh", "smc", "imh", "single")
MAX_ALPHA = 1e4
"""Largest power α. The default proposal temperature is 1/α, so this keeps it >= ``MIN_TEMPERATURE``."""
MIN_TEMPERATURE = 1e-4
"""Smallest non-zero temperature. Logits are fp32: divided by 1e-38 they overflow to inf, and the sampler
returned an index past the vocabulary; 1e-4 already makes a logit gap of 0.01 a factor of e^100."""
MAX_TEMPERATURE = 1e4
SELECTIONS: tuple[str, ...] = ("last", "best_target", "best_evaluator")


@dataclass(frozen=True, kw_only=True)
class SamplerParams:
    """How to power-sample. Defaults are the paper's (α = 4, N_MCMC = 10, B = T/16 for T = 1024 is 64;
    here T defaults to 256, so B = 16 would be T/16 — we default to 32 to keep CPU runs short)."""

    method: Method = "mh"
    """``mh`` block-wise Metropolis–Hastings; ``smc`` Sequential Monte Carlo; ``imh`` whole-sequence
    independence MH; ``single`` plain sampling at ``temperature``."""
    alpha: float = 4.0
    """Power of the target p(x)^α; 0 < α <= ``MAX_ALPHA`` (α = 1 is the base model itself)."""
    n_mcmc: int = 10
    """MH steps after each block (mh), or proposals in all (imh)."""
    block_size: int = 32
    """Tokens per block (mh, smc)."""
    max_new_tokens: int = 256
    """Length limit T of generated sequences."""
    n_particles: int = 8
    """Particles (smc)."""
    seed: int | None = None
    """Seed of the sampler's random generator; None draws one from the OS (recorded in the result)."""
    proposal_temperature: float | None = None
    """Temperature the proposals are sampled at, in [``MIN_TEMPERATURE``, ``MAX_TEMPERATURE``]; None means
    1/α, the paper's choice."""
    ess_threshold: float = 0.5
    """SMC resamples when the effective sample size falls below ``ess_threshold · n_particles``."""
    temperature: float = 1.0
    """Sampling temperature of method ``single``: 0 (greedy) or in [``MIN_TEMPERATURE``,
    ``MAX_TEMPERATURE``]."""
    selection: Selection = "last"
    """Which state to return: the chain's last (or SMC's draw by weight), the best under the target
    seen, or the best by a given evaluator."""
    anneal_steps: int = 0
    """SMC only: raise α linearly over this many blocks (0 = no annealing). The weights carry the
    correction, so the final target is exactly p^α."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError("method", f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        _positive_float("alpha", self.alpha)
        if self.alpha > MAX_ALPHA:
            raise ConfigError("alpha", f"must be <= {MAX_ALPHA:g} (the proposal temperature 1/alpha would fall "
                                       f"below {MIN_TEMPERATURE:g}, past what fp32 logits carry), got {self.alpha!r}")
        _at_least("n_mcmc", self.n_mcmc, 1)
        _at_least("block_size", self.block_size, 1)
        _at_least("max_new_tokens", self.max_new_tokens, 1)
        _at_least("n_particles", self.n_particles, 1)
        _at_least("anneal_steps", self.anneal_steps, 0)
        if self.proposal_temperature is not None:
            _positive_float("proposal_temperature", self.proposal_temperature)
            check_temperature(self.proposal_temperature, "proposal_temperature")
        check_temperature(self.temperature)
        if not (isinstance(self.ess_threshold, (int, float)) and 0.0 < self.ess_threshold <= 1.0):
            raise ConfigError("ess_threshold", f"must be in (0, 1], got {self.ess_threshold!r}")
        if self.selection not in SELECTIONS:
            raise ConfigError(
                "selection", f"unknown selection {self.selection!r}; choose one of {', '.join(SELECTIONS)}"
            )
        check_seed(self.seed)

    @property
    def tau(self) -> float:
        """The proposal temperature actually used."""
        return self.proposal_temperature if self.proposal_temperature is not None else 1.0 / self.alpha

    def with_(self, **changes: object) -> SamplerParams:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True)
class Budget:
    """Spending limits for one power sample. When the next model call would exceed one, the sampler
    stops early and returns its current state with ``budget_exhausted`` set, rather than overspend."""

    max_tokens: int | None = None
    """Tokens generated (all proposals and particles counted)."""
    max_requests: int | None = None
    """Model calls (``extend`` / ``generate``)."""

    def __post_init__(self) -> None:
        if self.max_tokens is not None:
            _at_least("max_tokens", self.max_tokens, 1)
        if self.max_requests is not None:
            _at_least("max_requests", self.max_requests, 1)


def check_temperature(value: object, name: str = "temperature") -> float:
    """A sampling temperature: 0 (greedy) or a number in [``MIN_TEMPERATURE``, ``MAX_TEMPERATURE``];
    :class:`ConfigError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
        raise ConfigError(name, f"must be a finite number >= 0 (0 = greedy), got {value!r}")
    if value != 0 and not MIN_TEMPERATURE <= value <= MAX_TEMPERATURE:
        raise ConfigError(name, f"must be 0 (greedy) or in [{MIN_TEMPERATURE:g}, {MAX_TEMPERATURE:g}] (fp32 logits "
                                f"divided by it must stay finite), got {value!r}")  # fmt: skip
    return float(value)


def check_seed(value: object, name: str = "seed") -> int | None:
    """None, or a non-negative integer seed; :class:`ConfigError` naming ``name``."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ConfigError(name, f"must be a non-negative integer, got {value!r}")
    return value


def check_int(name: str, value: object, low: int) -> int:
    """An integer >= ``low``; :class:`ConfigError` naming ``name``."""
    _at_least(name, value, low)
    assert isinstance(value, int)
    return value


def check_positive(name: str, value: object) -> float:
    """A finite number > 0; :class:`ConfigError` naming ``name``."""
    _positive_float(name, value)
    return float(value)  # type: ignore[arg-type]


def _positive_float(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(name, f"must be a finite number > 0, got {value!r}")


def _at_least(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(name, f"must be an integer >= {low}, got {value!r}")

"""Sampler parameters, validated at the edge before any model work starts."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from genesis_ps.errors import ConfigError

__all__ = [
    "CUTS",
    "DECISION_SHARE",
    "MAX_ALPHA",
    "MAX_TEMPERATURE",
    "METHODS",
    "MIN_TEMPERATURE",
    "MOVES",
    "RESAMPLERS",
    "SELECTIONS",
    "Budget",
    "Cuts",
    "Method",
    "Moves",
    "Resampler",
    "SamplerParams",
    "Selection",
    "check_int",
    "check_positive",
    "check_seed",
    "check_temperature",
    "default_proposal_temperature",
]

Method = Literal["mh", "smc", "imh", "tps", "single"]
Selection = Literal["last", "best_target", "best_evaluator", "consensus"]
Cuts = Literal["uniform", "entropy"]
Resampler = Literal["systematic", "stratified", "chopthin"]
Moves = Literal["plain", "differ", "decision"]
METHODS: tuple[str, ...] = ("mh", "smc", "imh", "tps", "single")
SELECTIONS: tuple[str, ...] = ("last", "best_target", "best_evaluator", "consensus")
CUTS: tuple[str, ...] = ("uniform", "entropy")
RESAMPLERS: tuple[str, ...] = ("systematic", "stratified", "chopthin")
MOVES: tuple[str, ...] = ("plain", "differ", "decision")

DECISION_SHARE = 0.3
"""``moves="decision"``: the share of steps that change the token before an entropy jump (the rest are
``differ`` moves). Chosen on the exactness benchmark's toys with throwaway probes: at 0.5 the random table
at α = 4 saved 29% of uniform-cut MH's tokens (at 0.3, 61% in ``genesis-ps bench exactness``'s effort
section); below it the sharp toy loses the first-token changes it needs."""

MAX_ALPHA = 1e4
"""Largest power α (fp32 logits carry no more sharpening than this usefully)."""
MIN_TEMPERATURE = 1e-4
"""Smallest non-zero temperature. Logits are fp32: divided by 1e-38 they overflow to inf, and the sampler
returned an index past the vocabulary; 1e-4 already makes a logit gap of 0.01 a factor of e^100."""
MAX_TEMPERATURE = 1e4

TAU_FLOOR = 1.0 / 3.0
"""The coldest default proposal temperature (see :func:`default_proposal_temperature`)."""


def default_proposal_temperature(alpha: float) -> float:
    """The rule behind ``proposal_temperature=None``: τ = max(1/α, 1/3).

    τ = 1/α is the token-level sharpening the paper proposes at (and the prefix-only proposal of least
    SMC weight variance), but as α grows q_{1/α} becomes nearly deterministic: a chain can then no longer
    propose the first token of the sequences p^α prefers when that token is not the likeliest, and it
    stops mixing (``genesis-ps bench exactness --toy trap``: TV 0.40 at α = 8, 0.96 at α = 16 with
    τ = 1/α). Proposals are therefore never colder than 1/3. The MH ratio and the SMC weights use the
    log q of whatever τ was sampled at, so the target stays exactly p^α for any τ.
    """
    return max(1.0 / alpha, TAU_FLOOR)


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
    """Temperature the proposals are sampled at, in [``MIN_TEMPERATURE``, ``MAX_TEMPERATURE``]; None means the
    rule of :func:`default_proposal_temperature` (max(1/α, 1/3))."""
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
    cuts: Cuts = "uniform"
    """MH: where a step cuts. ``uniform`` over the state's positions; ``entropy`` favours decision points,
    positions where the base model's next-token entropy jumps up (the acceptance ratio carries the forward
    and reverse cut probabilities, so the chain stays exact)."""
    change_at_cut: float = 0.0
    """MH: the probability ρ that a step redraws the token at its cut from the proposal *without* the current
    token (a Metropolised-Gibbs move at the cut, Liu 1996), so that step takes another branch where it cuts;
    otherwise the token is drawn as before. The ratio carries the mixture's density, so the chain stays exact
    for any ρ in [0, 1] (0 = off). Needs ``n_tries = 1`` and a model with ``capabilities.exclude_first``
    (the local backend, the toys)."""
    moves: Moves = "plain"
    """MH: what a step proposes. ``plain`` regenerates the suffix from the cut (with ``change_at_cut``, if
    set). ``differ`` proposes a suffix that always differs from the current one — the first difference
    drawn from the current suffix's own proposal probabilities, only the tokens from there on generated —
    a Metropolised-Gibbs move over suffixes (Liu 1996) that never wastes a step on re-drawing the current
    state. ``decision`` (decision-point MH) mixes two moves: with probability ``DECISION_SHARE`` the token
    right before an entropy jump (the choice that led into an uncertain future) is redrawn without the
    current one, otherwise a ``differ`` move at a ``cuts`` cut. Every move's ratio carries its proposal
    densities, so the chain targets p^α exactly (:mod:`genesis_ps.sampling.cuts`). ``differ`` and
    ``decision`` need ``n_tries = 1``, ``change_at_cut = 0`` and a model with
    ``capabilities.exclude_first``; ``decision`` also next-token entropies."""
    n_tries: int = 1
    """MH: suffixes proposed at each cut in one batched call (multiple-try Metropolis when > 1)."""
    block_tries: int = 1
    """MH: continuations drawn for each new block in one batched call, one kept with probability ∝ its
    importance weight p^α/q (sampling-importance-resampling), so each block's chain starts nearer p^α given
    the prefix; 1 draws one, as the paper does. It changes where each block's chain starts, never its
    steps, so the chain's target stays p^α (``bench exactness`` row ``mh_decision_bt2``)."""
    adaptive: bool = False
    """MH: end the steps of every block but the last once ``patience`` steps in a row left the state
    unchanged (the last block always runs ``n_mcmc`` steps: stopping there on the chain's own path biased
    the toys' TV by up to 0.3). SMC: add rounds of ``n_particles`` fresh particles (up to ``max_rounds``)
    until the rounds' bottleneck ESS (each round's smallest over its blocks) add up to
    ``ess_threshold · n_particles``. The bias either rule
    costs is measured by ``bench exactness`` (rows ``mh_adaptive``, ``smc_adaptive``)."""
    early_reject: bool = False
    """MH: draw each step's uniform before its suffix and stop generating a proposal as soon as no
    completion could be accepted (exact: the same accept/reject decision, fewer tokens; applies with exact
    log-probs, one try per cut, no reward tilt and 1/α ≤ τ ≤ 1; see :mod:`genesis_ps.sampling.early`).
    Off by default: it saves tokens (15% in ``bench speed``'s MH run) but generates each proposal in
    several calls, which on the local CPU backend cost as much wall time as the tokens saved (or more)."""
    patience: int = 3
    """Adaptive MH: unchanged steps in a row that end a block's MH steps."""
    max_rounds: int = 4
    """Adaptive SMC: the most rounds of particles."""
    resampler: Resampler = "systematic"
    """SMC resampling scheme: ``systematic``, ``stratified`` or ``chopthin`` (Gandy & Lau 2016: keeps
    non-uniform weights, bounded within a factor ``4`` of each other)."""
    ramp_tokens: int = 0
    """SMC: raise α linearly from 1 with the number of tokens generated, reaching α at this many tokens
    (0 = no ramp). The weights carry the correction; a ramp longer than ``max_new_tokens`` is allowed and
    the result says the final block made up the rest."""
    candidates: int = 3
    """TPS: next tokens considered at a decision point (the likeliest ones)."""
    rollouts: int = 2
    """TPS: rollouts per candidate estimating the future's power mass (2 is the least the jackknife needs)."""
    horizon: int = 4
    """TPS: tokens per rollout (the future beyond it is not seen)."""
    reuse_rollouts: bool = True
    """TPS: the tokens after a chosen candidate, up to the next decision point, come from one of its
    rollouts (picked in proportion to its importance weight) instead of being drawn again; ``False`` draws
    them afresh at the proposal temperature (one more model call per decision point)."""
    decision_entropy: float = 4.0
    """TPS: positions whose base next-token entropy (nats) is at least this get rollouts; the others are
    sampled at the proposal temperature. The defaults (3 candidates, 2 rollouts of 4 tokens, 4 nats:
    about one position in twenty of the embedded model's text) aim at no more than twice single-shot's wall
    time on a 2-core CPU (``bench speed`` measures it: ``tps_vs_single``); on a GPU, where rollouts batch
    almost for free, lower the threshold and raise the rest."""

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
        _check_extensions(self)

    @property
    def tau(self) -> float:
        """The proposal temperature actually used."""
        if self.proposal_temperature is not None:
            return self.proposal_temperature
        return default_proposal_temperature(self.alpha)

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


def _check_extensions(p: SamplerParams) -> None:
    """Validation of the decision-point, adaptive, SMC-upgrade and TPS fields."""
    if p.cuts not in CUTS:
        raise ConfigError("cuts", f"unknown cuts {p.cuts!r}; choose one of {', '.join(CUTS)}")
    if p.resampler not in RESAMPLERS:
        raise ConfigError("resampler", f"unknown resampler {p.resampler!r}; choose one of {', '.join(RESAMPLERS)}")
    rho = p.change_at_cut
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not 0.0 <= rho <= 1.0:
        raise ConfigError("change_at_cut", f"must be a probability in [0, 1] (0 = off), got {rho!r}")
    for flag in ("adaptive", "early_reject", "reuse_rollouts"):
        if not isinstance(getattr(p, flag), bool):
            raise ConfigError(flag, f"must be true or false, got {getattr(p, flag)!r}")
    _at_least("n_tries", p.n_tries, 1)
    _at_least("block_tries", p.block_tries, 1)
    _at_least("patience", p.patience, 1)
    _at_least("max_rounds", p.max_rounds, 1)
    _at_least("ramp_tokens", p.ramp_tokens, 0)
    _at_least("candidates", p.candidates, 1)
    _at_least("rollouts", p.rollouts, 1)
    _at_least("horizon", p.horizon, 1)
    d = p.decision_entropy
    if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d) or d < 0:
        raise ConfigError("decision_entropy", f"must be a finite number >= 0 (nats), got {d!r}")
    if p.change_at_cut and p.n_tries > 1:
        raise ConfigError("change_at_cut", "needs n_tries = 1 (multiple tries need a proposal that does not depend "
                                           "on the current token)")
    if p.moves not in MOVES:
        raise ConfigError("moves", f"unknown moves {p.moves!r}; choose one of {', '.join(MOVES)}")
    if p.moves != "plain" and p.change_at_cut:
        raise ConfigError("change_at_cut", f"applies to moves='plain' only (moves={p.moves!r} already changes "
                                           "the state at every step); use change_at_cut=0")  # fmt: skip
    if p.moves != "plain" and p.n_tries > 1:
        raise ConfigError("moves", f"moves={p.moves!r} needs n_tries = 1 (multiple tries need a proposal that does "
                                   "not depend on the current suffix)")  # fmt: skip
    if p.ramp_tokens and p.anneal_steps:
        raise ConfigError("ramp_tokens", "choose one schedule: ramp_tokens (by tokens) or anneal_steps (by blocks)")


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

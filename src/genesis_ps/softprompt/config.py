"""Settings of one soft-prompt run, validated once at the edge (each error names its command-line flag)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from genesis_ps.errors import ConfigError

__all__ = ["HOSTED", "MODES", "SCHEDULES", "STAGES", "SoftPromptConfig"]

MODES = ("token", "learned")
SCHEDULES = ("constant", "cosine", "linear")
STAGES = ("1", "2", "3", "4", "all")
HOSTED = ("openai", "openai-compatible", "gemini", "anthropic")


def _int(name: str, value: object, lo: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(name, f"must be an integer >= {lo}, got {value!r}")


def _pos(name: str, value: object, *, zero: bool = False) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigError(name, f"must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not zero):
        raise ConfigError(name, f"must be a finite number {'>=' if zero else '>'} 0, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class SoftPromptConfig:
    """What to optimise and how. Losses are mean nats per target token."""

    k: int = 32
    """Content vectors per pair (``--k``)."""
    restarts: int = 5
    """Independent random initialisations per pair; the best final loss is kept (``--restarts``)."""
    steps: int = 500
    """Most Adam steps per restart (``--steps``)."""
    lr: float = 0.1
    """Adam learning rate (``--lr``); token-embedding entries of SmolLM2 have a standard deviation of ~0.14."""
    schedule: str = "cosine"
    """Learning-rate schedule over ``steps``: constant, cosine (to 10%) or linear (to 10%) (``--schedule``)."""
    patience: int = 50
    """Stop a restart after this many steps without a 1% improvement of its best loss (``--patience``)."""
    stop_loss: float = 0.1
    """Stop a restart once greedy decoding would reproduce every target *and* each target's loss is below
    this (``--stop-loss``)."""
    weight_q: float = 1.0
    """Weight of L(Q | Q_mode, c) in the joint loss (``--weight-q``)."""
    weight_a: float = 1.0
    """Weight of L(A | A_mode, c) in the joint loss (``--weight-a``)."""
    mode: str = "token"
    """``token``: Q_mode / A_mode are the fixed embeddings of the first token of "Question" / "Answer";
    ``learned``: both are learned once per run on a calibration sample, then frozen (``--mode``)."""
    calibration: int = 8
    """Pairs used to learn the mode embeddings when ``mode="learned"`` (``--calibration``)."""
    progressive: bool = False
    """Grow each target one token at a time: the loss covers the first l tokens and l grows once greedy
    decoding reproduces them (``--progressive``)."""
    gate: float = 0.7
    """Stage 1 decision gate: with ``--stage all``, stop after stage 1 if fewer targets converge (``--gate``)."""
    sample: int = 20
    """Pairs in the stage-1 diagnostic sample (``--sample``)."""
    k_sweep: tuple[int, ...] = (4, 8, 16, 32, 64, 128)
    """K values of the stage-4 ablation (``--k-sweep``)."""
    sweep_pairs: int = 10
    """Pairs in the stage-4 ablations (``--sweep-pairs``)."""
    batch: int = 16
    """Restarts optimised together in one forward (each contributes its Q and A sequences) (``--batch``)."""
    first_success: bool = False
    """Stop a pair's other restarts once one reproduces both targets (``--first-success``)."""
    baseline_draws: int = 3
    """Random draws averaged into each random / single-token baseline (``--baseline-draws``)."""
    eos: bool = True
    """Append the tokenizer's EOS to each target, so greedy decoding knows where to stop."""
    seed: int = 0
    """Seed of every random draw (initialisations, baselines) (``--seed``)."""

    def __post_init__(self) -> None:
        for name, flag, lo in (
            ("k", "--k", 1), ("restarts", "--restarts", 1), ("steps", "--steps", 1), ("patience", "--patience", 1),
            ("calibration", "--calibration", 1), ("sample", "--sample", 1), ("sweep_pairs", "--sweep-pairs", 1),
            ("batch", "--batch", 1), ("seed", "--seed", 0), ("baseline_draws", "--baseline-draws", 1),
        ):
            _int(flag, getattr(self, name), lo)
        _pos("--lr", self.lr)
        _pos("--stop-loss", self.stop_loss)
        _pos("--weight-q", self.weight_q, zero=True)
        _pos("--weight-a", self.weight_a, zero=True)
        if self.weight_q + self.weight_a <= 0:
            raise ConfigError("--weight-q", "at least one of --weight-q / --weight-a must be > 0")
        _pos("--gate", self.gate, zero=True)
        if self.gate > 1:
            raise ConfigError("--gate", f"is a fraction in [0, 1], got {self.gate!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError("--schedule", f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if self.mode not in MODES:
            raise ConfigError("--mode", f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if not self.k_sweep:
            raise ConfigError("--k-sweep", "needs at least one K")
        for k in self.k_sweep:
            _int("--k-sweep", k, 1)

    def lr_at(self, step: int) -> float:
        """Learning rate of (0-based) ``step``."""
        frac = min(step / max(self.steps - 1, 1), 1.0)
        if self.schedule == "cosine":
            return self.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        if self.schedule == "linear":
            return self.lr * (1.0 - 0.9 * frac)
        return self.lr

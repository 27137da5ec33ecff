"""The SE-Darwin evolution loop: generations of operator applications over an archive.

Generation 0 is the initial population (the first member power-sampled when ``power`` is on). Each
later generation makes ``offspring`` trajectories, one operator call each:

- the power-sampling operator improves the current best (first slot, when ``power`` is on);
- otherwise a parent is drawn from the archive (weighted by score and by how often it was used): a
  parent scoring below ``failure_below`` gets a :func:`revision` (new strategy); else the other slots
  alternate: :func:`refinement` of the current best (polish and prune), then :func:`recombination` of
  the drawn parent with a second drawn one, and so on. Each trajectory used as a parent counts a use.

The loop stops at the first of: a trajectory reaching ``target_score`` (``target``), ``max_generations``
(``generation_cap``), or the token / call budget being spent (``budget``; checked before each operator
call, so the last call may overshoot by at most one generation's tokens). Operator calls run one after
another so that budget checks are exact in calls.

The steps (:func:`initial_operator`, :func:`choose_offspring`, :func:`budget_spent`,
:func:`generation_rng`) are shared with the graph's ``darwin`` subgraph, which runs a generation's
operators in parallel (``Send``), each chosen from the archive as it stood when the generation began.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from genesis_ps import observability as obs
from genesis_ps.errors import ConfigError
from genesis_ps.evaluators.base import Evaluator
from genesis_ps.generation import Generator
from genesis_ps.operators.ops import DarwinContext, apply_operator
from genesis_ps.operators.trajectory import Archive, Trajectory

__all__ = [
    "EvolutionConfig",
    "EvolutionResult",
    "budget_spent",
    "choose_offspring",
    "evolve",
    "generation_rng",
    "initial_operator",
]


@dataclass(frozen=True, kw_only=True)
class EvolutionConfig:
    """Limits and knobs of one evolution."""

    max_generations: int = 3
    """Generations after the initial population."""
    initial_population: int = 2
    offspring: int = 2
    """Trajectories per generation."""
    target_score: float = 1.0
    failure_below: float = 0.5
    """A parent scoring below this is revised (new strategy) rather than refined or recombined."""
    max_tokens: int | None = None
    """Budget: tokens generated over all operator calls."""
    max_calls: int | None = None
    """Budget: operator (model) calls."""
    power: bool = True
    """Use the power-sampling operator (first initial member and first slot of each generation)."""
    seed: int = 0
    """Seed of parent selection."""
    floor: float = 0.05
    """Selection weight floor (so zero-score trajectories can still be picked)."""

    def __post_init__(self) -> None:
        for name, low in (("max_generations", 0), ("initial_population", 1), ("offspring", 1), ("seed", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ConfigError(name, f"must be an integer >= {low}, got {v!r}")
        for name in ("max_tokens", "max_calls"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ConfigError(name, f"must be None or an integer >= 1, got {v!r}")
        for name in ("target_score", "failure_below"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ConfigError(name, f"must be in [0, 1], got {v!r}")


@dataclass
class EvolutionResult:
    """The outcome: the best trajectory, the whole archive, and what it cost (all measured)."""

    best: Trajectory | None
    archive: Archive
    generations: int
    stop_reason: str
    model_calls: int = 0
    requests: int = 0
    tokens_generated: int = 0
    fallbacks: list[str] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        return None if self.best is None else self.best.score

    def to_dict(self) -> dict[str, Any]:
        return {
            "best": None if self.best is None else self.best.to_dict(),
            "score": self.score,
            "generations": self.generations,
            "stop_reason": self.stop_reason,
            "model_calls": self.model_calls,
            "requests": self.requests,
            "tokens_generated": self.tokens_generated,
            "fallbacks": list(self.fallbacks),
            "archive": self.archive.to_list(),
        }


def generation_rng(seed: int, generation: int) -> np.random.Generator:
    """The parent-selection generator of one generation (seeded by ``(seed, generation)``, so a resumed
    evolution draws the same parents)."""
    return np.random.default_rng([seed, generation])


def initial_operator(cfg: EvolutionConfig, index: int) -> str:
    """The operator of the ``index``-th initial member: power sampling for the first when ``power``."""
    return "power_sampling" if cfg.power and index == 0 else "initial"


def budget_spent(cfg: EvolutionConfig, calls: int, tokens: int) -> bool:
    """Whether the call or token budget is used up."""
    return (cfg.max_calls is not None and calls >= cfg.max_calls) or (
        cfg.max_tokens is not None and tokens >= cfg.max_tokens
    )


def choose_offspring(
    archive: Archive, rng: np.random.Generator, cfg: EvolutionConfig, slot: int
) -> tuple[str, tuple[Trajectory, ...]]:
    """The operator and parents of one offspring slot (see the module docstring); every parent chosen
    counts a use in ``archive``."""
    if cfg.power and slot == 0:
        top = archive.best()
        if top is not None:
            archive.uses[top.id] += 1
        return "power_sampling", (() if top is None else (top,))
    (parent,) = archive.select(rng, record=False)
    if parent.fitness < cfg.failure_below:
        archive.uses[parent.id] += 1
        return "revision", (parent,)
    if (slot - int(cfg.power)) % 2 == 1 and len(archive) >= 2:
        others = [t for t in archive if t.id != parent.id]
        w = archive.weights()
        p = np.array([w[t.id] for t in others])
        other = others[int(rng.choice(len(others), p=p / p.sum()))]
        archive.uses[parent.id] += 1
        archive.uses[other.id] += 1
        return "recombination", (parent, other)
    best = archive.best() or parent
    archive.uses[best.id] += 1
    return "refinement", (best,)


async def evolve(
    task: str,
    generate: Generator,
    evaluator: Evaluator | None,
    *,
    eval_context: Mapping[str, Any] | None = None,
    config: EvolutionConfig | None = None,
    language: str = "python",
    extract: bool = True,
) -> EvolutionResult:
    """Evolve candidates for ``task`` until the target score, the generation cap or the budget."""
    if not isinstance(task, str) or not task.strip():
        raise ConfigError("task", "must be a non-empty string")
    cfg = config or EvolutionConfig()
    ctx = DarwinContext(
        task=task, generate=generate, evaluator=evaluator, eval_context=eval_context, language=language, extract=extract
    )
    res = EvolutionResult(best=None, archive=Archive(floor=cfg.floor), generations=0, stop_reason="")

    def keep(t: Trajectory) -> bool:
        res.archive.add(t)
        res.model_calls += 1
        res.requests += t.requests
        res.tokens_generated += t.tokens_generated
        if t.fallback:
            res.fallbacks.append(t.fallback)
        return t.score is not None and t.score >= cfg.target_score

    with obs.span("genesis_ps.darwin.evolve", max_generations=cfg.max_generations, power=cfg.power) as sp:
        for i in range(cfg.initial_population):
            if budget_spent(cfg, res.model_calls, res.tokens_generated):
                res.stop_reason = "budget"
                break
            if keep(await apply_operator(ctx, initial_operator(cfg, i), (), 0)):
                res.stop_reason = "target"
                break
        while not res.stop_reason:
            if res.generations >= cfg.max_generations:
                res.stop_reason = "generation_cap"
                break
            res.generations += 1
            rng = generation_rng(cfg.seed, res.generations)
            for slot in range(cfg.offspring):
                if budget_spent(cfg, res.model_calls, res.tokens_generated):
                    res.stop_reason = "budget"
                    break
                op, parents = choose_offspring(res.archive, rng, cfg, slot)
                if keep(await apply_operator(ctx, op, parents, res.generations)):
                    res.stop_reason = "target"
                    break
        res.best = res.archive.best()
        obs.set_attributes(
            sp,
            stop_reason=res.stop_reason,
            generations=res.generations,
            calls=res.model_calls,
            score=res.score,
            tokens_generated=res.tokens_generated,
        )
    return res

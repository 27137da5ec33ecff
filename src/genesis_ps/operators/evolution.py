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
from genesis_ps.operators.ops import DarwinContext, initial, power_sampling, recombination, refinement, revision
from genesis_ps.operators.trajectory import Archive, Trajectory

__all__ = ["EvolutionConfig", "EvolutionResult", "evolve"]


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
    rng = np.random.default_rng(cfg.seed)
    ctx = DarwinContext(
        task=task, generate=generate, evaluator=evaluator, eval_context=eval_context, language=language, extract=extract
    )
    res = EvolutionResult(best=None, archive=Archive(floor=cfg.floor), generations=0, stop_reason="")

    def spent() -> bool:
        return (cfg.max_calls is not None and res.model_calls >= cfg.max_calls) or (
            cfg.max_tokens is not None and res.tokens_generated >= cfg.max_tokens
        )

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
            if spent():
                res.stop_reason = "budget"
                break
            t = await (power_sampling(ctx, None, 0) if cfg.power and i == 0 else initial(ctx, 0))
            if keep(t):
                res.stop_reason = "target"
                break
        while not res.stop_reason:
            if res.generations >= cfg.max_generations:
                res.stop_reason = "generation_cap"
                break
            res.generations += 1
            for slot in range(cfg.offspring):
                if spent():
                    res.stop_reason = "budget"
                    break
                t = await _offspring(ctx, res.archive, rng, cfg, slot, res.generations)
                if keep(t):
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


async def _offspring(
    ctx: DarwinContext, archive: Archive, rng: np.random.Generator, cfg: EvolutionConfig, slot: int, gen: int
) -> Trajectory:
    if cfg.power and slot == 0:
        top = archive.best()
        if top is not None:
            archive.uses[top.id] += 1
        return await power_sampling(ctx, top, gen)
    (parent,) = archive.select(rng, record=False)
    if parent.fitness < cfg.failure_below:
        archive.uses[parent.id] += 1
        return await revision(ctx, parent, gen)
    if (slot - int(cfg.power)) % 2 == 1 and len(archive) >= 2:
        others = [t for t in archive if t.id != parent.id]
        w = archive.weights()
        p = np.array([w[t.id] for t in others])
        other = others[int(rng.choice(len(others), p=p / p.sum()))]
        archive.uses[parent.id] += 1
        archive.uses[other.id] += 1
        return await recombination(ctx, parent, other, gen)
    best = archive.best() or parent
    archive.uses[best.id] += 1
    return await refinement(ctx, best, gen)

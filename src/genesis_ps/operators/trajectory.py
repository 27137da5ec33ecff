"""The SE-Darwin trajectory record and the archive of every trajectory an evolution made.

Parent selection (:meth:`Archive.select`) draws with weight ``(score + floor) / (1 + uses)``: better
candidates are picked more often, and each time a trajectory serves as a parent its weight drops, so the
search keeps exploring (as in the Darwin Gödel Machine's archive). A failed evaluation counts as score 0
for selection (it is still recorded as failed in ``score_details``). The generator is injected (seeded).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from genesis_ps.errors import ConfigError

__all__ = ["OPERATORS", "Archive", "Trajectory"]

OPERATORS = ("initial", "revision", "recombination", "refinement", "power_sampling")


@dataclass
class Trajectory:
    """One candidate solution and how it came to be."""

    id: str
    candidate: str
    """The candidate (code extracted from the model's answer, or the answer itself)."""
    score: float | None
    """Evaluator score in [0, 1]; None when the evaluation itself failed (see ``score_details``)."""
    operator: str
    parent_ids: tuple[str, ...]
    strategy: str
    generation: int
    text: str = ""
    """The model's raw answer."""
    score_details: dict[str, Any] = field(default_factory=dict)
    tokens_generated: int = 0
    requests: int = 0
    method: str = ""
    fallback: str | None = None

    def __post_init__(self) -> None:
        if self.operator not in OPERATORS:
            raise ConfigError("operator", f"unknown operator {self.operator!r}; choose one of {', '.join(OPERATORS)}")
        self.parent_ids = tuple(self.parent_ids)

    @property
    def fitness(self) -> float:
        """The score, with a failed evaluation as 0 (for selection and ranking only)."""
        return 0.0 if self.score is None else self.score

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["parent_ids"] = list(self.parent_ids)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Trajectory:
        names = {f.name for f in fields(cls)}
        kw: dict[str, Any] = {k: v for k, v in d.items() if k in names}
        kw["parent_ids"] = tuple(kw.get("parent_ids") or ())
        return cls(**kw)


class Archive:
    """Every trajectory, in insertion order, with how often each served as a parent."""

    def __init__(self, *, floor: float = 0.05) -> None:
        if not (isinstance(floor, (int, float)) and floor > 0):
            raise ConfigError("floor", f"must be > 0, got {floor!r}")
        self.floor = float(floor)
        self._items: dict[str, Trajectory] = {}
        self.uses: Counter[str] = Counter()

    def add(self, t: Trajectory) -> Trajectory:
        """Add ``t``; its parents must already be in the archive (so lineage is acyclic), from its own or
        earlier generations."""
        if t.id in self._items:
            raise ConfigError("id", f"trajectory {t.id!r} is already in the archive")
        for pid in t.parent_ids:
            parent = self._items.get(pid)
            if parent is None:
                raise ConfigError("parent_ids", f"parent {pid!r} of {t.id!r} is not in the archive")
            if parent.generation > t.generation:
                raise ConfigError("generation", f"{t.id!r} (gen {t.generation}) cannot precede parent {pid!r}")
        self._items[t.id] = t
        return t

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Trajectory]:
        return iter(self._items.values())

    def __getitem__(self, tid: str) -> Trajectory:
        return self._items[tid]

    def best(self) -> Trajectory | None:
        """Highest score; ties go to the earliest (cheaper lineage)."""
        best: Trajectory | None = None
        for t in self._items.values():
            if best is None or t.fitness > best.fitness:
                best = t
        return best

    def weights(self) -> dict[str, float]:
        """Unnormalised selection weight of each trajectory."""
        return {tid: (t.fitness + self.floor) / (1 + self.uses[tid]) for tid, t in self._items.items()}

    def select(self, rng: np.random.Generator, k: int = 1, *, record: bool = True) -> list[Trajectory]:
        """Draw ``k`` distinct parents by :meth:`weights` (``k`` is capped at the archive size); with
        ``record`` each drawn parent's use count goes up, lowering its later weight."""
        if not self._items:
            raise ConfigError("archive", "cannot select a parent from an empty archive")
        w = self.weights()
        ids = list(w)
        p = np.array([w[i] for i in ids], dtype=float)
        k = min(k, len(ids))
        picks = rng.choice(len(ids), size=k, replace=False, p=p / p.sum())
        chosen = [self._items[ids[int(i)]] for i in picks]
        if record:
            for t in chosen:
                self.uses[t.id] += 1
        return chosen

    def lineage(self, tid: str) -> list[str]:
        """Every ancestor id of ``tid`` (breadth first)."""
        seen: list[str] = []
        frontier = list(self._items[tid].parent_ids)
        while frontier:
            pid = frontier.pop(0)
            if pid not in seen:
                seen.append(pid)
                frontier.extend(self._items[pid].parent_ids)
        return seen

    def to_list(self) -> list[dict[str, Any]]:
        return [t.to_dict() for t in self._items.values()]

    def to_state(self) -> dict[str, Any]:
        """Trajectories and use counts as plain JSON values (see :meth:`from_state`)."""
        return {"floor": self.floor, "items": self.to_list(), "uses": dict(self.uses)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Archive:
        a = cls(floor=float(state.get("floor", 0.05)))
        for item in state.get("items", []):
            a.add(Trajectory.from_dict(item))
        a.uses.update({str(k): int(v) for k, v in (state.get("uses") or {}).items()})
        return a

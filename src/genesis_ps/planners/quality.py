"""Decomposition quality: is a model's task graph usable? A :class:`Score` in [0, 1] with its parts.

Components (weights in :data:`WEIGHTS`), each in [0, 1] and reported in ``details``:

- ``structure``: the text parses into a valid DAG (unique ids, known deps, no self-dependency, acyclic,
  bounded size). Unparseable output scores 0 overall — a real (low) score, not a failed evaluation.
- ``fields``: share of tasks that came with an id and a known type without repair.
- ``count``: a sensible number of tasks (2–10 best; 1 or very many is penalised).
- ``descriptions``: share of meaningful descriptions (≥ 2 words, not duplicates, not the request verbatim).
- ``clean``: 1 minus 0.1 per repair the parser needed (floored at 0).

Usable as a power-sampling reward tilt (``evaluators.base.as_reward(DecompositionEvaluator())``) or as
a selection score.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genesis_ps.evaluators.base import Score
from genesis_ps.planners.dag import TaskDAG
from genesis_ps.planners.parse import parse_dag

__all__ = ["WEIGHTS", "DecompositionEvaluator", "score_dag"]

WEIGHTS: dict[str, float] = {"structure": 0.3, "fields": 0.15, "count": 0.15, "descriptions": 0.3, "clean": 0.1}


def _count_score(n: int) -> float:
    if n <= 0:
        return 0.0
    if n == 1:
        return 0.5
    if n <= 10:
        return 1.0
    if n <= 20:
        return 0.7
    return 0.4


def _meaningful(desc: str, request: str) -> bool:
    d = " ".join(desc.lower().split())
    return len(d.split()) >= 2 and len(d) >= 8 and d != " ".join(request.lower().split())


def score_dag(dag: TaskDAG, *, request: str = "", repairs: list[str] | None = None) -> Score:
    """Score an already-parsed DAG (``repairs`` as the parser listed them)."""
    repairs = list(repairs or [])
    problems = dag.problems()
    structure = 0.0 if problems else 1.0
    n = len(dag.tasks)
    repaired_ids = any("had no id" in r for r in repairs)
    typed = sum(1 for t in dag.tasks if not any(f"task {t.id!r}: type" in r for r in repairs))
    fields = 0.0 if n == 0 or repaired_ids else typed / n
    seen: set[str] = set()
    good = 0
    for t in dag.tasks:
        key = " ".join(t.description.lower().split())
        if _meaningful(t.description, request) and key not in seen:
            good += 1
        seen.add(key)
    descriptions = good / n if n else 0.0
    clean = max(0.0, 1.0 - 0.1 * len(repairs))
    parts = {
        "structure": structure,
        "fields": fields,
        "count": _count_score(n),
        "descriptions": descriptions,
        "clean": clean,
    }
    value = 0.0 if problems else sum(WEIGHTS[k] * v for k, v in parts.items())
    details: dict[str, Any] = {**parts, "n_tasks": n, "problems": problems, "repairs": repairs}
    return Score(round(min(1.0, max(0.0, value)), 6), details=details, evaluator="decomposition")


class DecompositionEvaluator:
    """The :class:`~genesis_ps.evaluators.base.Evaluator` for decompositions (text → Score)."""

    name = "decomposition"

    def evaluate(self, text: str, context: Mapping[str, Any] | None = None) -> Score:
        request = str((context or {}).get("request", ""))
        outcome = parse_dag(text, request=request)
        if outcome.dag is None:
            return Score(
                0.0,
                details={
                    "structure": 0.0,
                    "form": outcome.form,
                    "problems": outcome.problems,
                    "repairs": outcome.repairs,
                },
                evaluator=self.name,
            )
        s = score_dag(outcome.dag, request=request, repairs=outcome.repairs)
        return Score(s.value, details={**s.details, "form": outcome.form}, evaluator=self.name)

"""The problems of ``genesis-ps bench reasoning``: arithmetic word problems and MATH500 subsets.

- ``arithmetic``: the seeded problems of :mod:`genesis_ps.bench.arithmetic` (``add20`` by default), each
  asked as a question in words, ``Q: What is 7 plus 12? Reply with the number only.``, after ``shots``
  worked examples in the same words (none by default) — the SICA loop's prompts are chat prompts, not
  raw completions. (The form was picked in an uncommitted pilot on the embedded model, which answered
  ``What is 7 + 12?`` and a three-shot Q/A form near never right; benchmarks/README.md says more.)
- ``math500``: a MATH500-format JSON file (``[{"prompt" or "problem": str, "answer": str, "id"?}]``),
  ``--subset shortest`` (the ``limit`` shortest problem statements, the default: the ones a small model
  can finish within a small token budget) or ``first`` (file order).

A record of the wrong shape is an error naming the field and the record's index (:func:`check_record`),
never silently skipped. Answers are checked by the math evaluator's extraction and equivalence
(:func:`genesis_ps.bench.math500.check_answer`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genesis_ps.errors import ConfigError

__all__ = ["SUBSETS", "TASKS", "ReasoningItem", "arithmetic_items", "check_record", "math500_items"]

TASKS = ("arithmetic", "math500")
SUBSETS = ("shortest", "first")
_BOXED = "Give the final answer as \\boxed{answer}."


@dataclass(frozen=True)
class ReasoningItem:
    """One problem: the task text the loop is given, the reference answer and its checker."""

    id: str
    task: str
    answer: str
    check: Callable[[str], tuple[bool, str | None]] = field(compare=False)


def _checker(reference: str) -> Callable[[str], tuple[bool, str | None]]:
    from genesis_ps.bench.math500 import check_answer

    return lambda text: check_answer(text, reference)


def _words(question: str) -> str:
    return question.replace(" + ", " plus ").replace(" - ", " minus ")


def arithmetic_items(limit: int, *, kind: str = "add20", shots: int = 0, seed: int = 0) -> list[ReasoningItem]:
    """``limit`` seeded arithmetic problems of ``kind`` as word questions (see the module docstring)."""
    from genesis_ps.bench.arithmetic import make_problems

    out = []
    for p in make_problems(limit, seed=seed, kind=kind, shots=shots):
        examples = [ln.split(" = ") for ln in p.prompt.split("\n")[:-1]]
        lines = [f"Q: What is {_words(q)}?\nA: {a}\n" for q, a in examples]
        task = "".join(lines) + f"Q: What is {_words(p.question)}? Reply with the number only."
        out.append(ReasoningItem(p.id, task, p.answer, _checker(p.answer)))
    return out


def check_record(k: int, record: Any) -> tuple[str, str, str]:
    """(id, question, answer) of MATH500 record ``k``, or a ConfigError naming the missing field."""
    if not isinstance(record, dict):
        raise ConfigError("data", f"record {k}: must be a JSON object, got {type(record).__name__}")
    question = record.get("prompt", record.get("problem"))
    if question is None:
        raise ConfigError("data", f"record {k}: missing field 'prompt' (or 'problem')")
    if not isinstance(question, str) or not question.strip():
        raise ConfigError("data", f"record {k}: field 'prompt' must be a non-empty string")
    if "answer" not in record:
        raise ConfigError("data", f"record {k}: missing field 'answer'")
    answer = record["answer"]
    if not isinstance(answer, (str, int)) or isinstance(answer, bool) or not str(answer).strip():
        raise ConfigError("data", f"record {k}: field 'answer' must be a non-empty string")
    return str(record.get("id", k)), question, str(answer)


def math500_items(path: str | Path, limit: int, *, subset: str = "shortest") -> list[ReasoningItem]:
    """``limit`` problems of a MATH500-format file (every record is checked, see :func:`check_record`)."""
    if subset not in SUBSETS:
        raise ConfigError("subset", f"unknown subset {subset!r}; choose one of {', '.join(SUBSETS)}")
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError("data", f"cannot read MATH500 file {p}: {e}") from e
    if not isinstance(data, list) or not data:
        raise ConfigError("data", f"{p} must hold a non-empty JSON list of problems")
    records = [check_record(k, r) for k, r in enumerate(data)]
    order = sorted(range(len(records)), key=lambda k: (len(records[k][1]), k)) if subset == "shortest" else None
    chosen = [records[k] for k in (order or range(len(records)))[:limit]]
    return [ReasoningItem(i, f"{q}\n\n{_BOXED}", a, _checker(a)) for i, q, a in chosen]

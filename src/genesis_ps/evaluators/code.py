"""Score candidate code by running it against tests in the sandbox (:mod:`.sandbox`).

The score is the share of tests that pass. A candidate that loops, allocates without bound, forks,
writes outside its directory, opens a socket or floods its output scores 0 with ``details["status"]``
and ``details["reason"]`` saying which; that is a *result* of the evaluation. Only a failure of the
evaluation itself (no tests given, the sandbox could not start) is a failed :class:`Score` (value None).

Tests, from the evaluator or ``context["tests"]``: Python source whose ``test*`` functions (or, if it
has none, its top-level asserts) are the tests, a list of assert statements (MBPP style, one test each),
or HumanEval style — source defining ``check(candidate)`` with ``context["entry_point"]`` naming the
function under test. The candidate's names are visible to the tests.

The runner reports through stdout, each line prefixed with a per-run secret read from stdin before the
candidate runs, so ordinary output cannot be mistaken for a report. Code written on purpose to dig the
secret out of the runner's frames could forge one: the evaluator scores generated code, it is not a
defence against an adversary (the sandbox still contains what such code can do).
"""

from __future__ import annotations

import json
import re
import secrets
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from genesis_ps.errors import ConfigError
from genesis_ps.evaluators.base import Score
from genesis_ps.evaluators.sandbox import SandboxLimits, run_python

__all__ = ["CodeEvaluator", "extract_code"]

_FENCE = re.compile(
    r"(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+#.-]*)[^\n]*\n(?P<body>.*?)(?:\n[ \t]*(?P=fence)|\Z)", re.DOTALL
)
_CODE_LANGS = {"", "python", "py", "python3", "py3"}

_RUNNER = r"""
import sys, json, traceback
def _main(nonce):
    res = {"passed": 0, "total": 0, "failures": []}
    def fail(name, exc):
        res["failures"].append({"test": name, "error": "".join(
            traceback.format_exception_only(type(exc), exc)).strip()[-400:]})
    ns = {"__name__": "candidate", "__builtins__": __builtins__}
    try:
        with open("candidate.py", encoding="utf-8") as fh:
            exec(compile(fh.read(), "candidate.py", "exec"), ns)
    except BaseException as exc:
        fail("<candidate import>", exc)
        res["total"] = 1
        return res
    tns = dict(ns); tns["__name__"] = "tests"
    with open("tests.py", encoding="utf-8") as fh:
        tsrc = fh.read()
    try:
        exec(compile(tsrc, "tests.py", "exec"), tns)
    except BaseException as exc:
        fail("<tests module>", exc)
        res["total"] = 1
        return res
    tests = [(k, v) for k, v in tns.items() if k.startswith("test") and callable(v) and ns.get(k) is not v]
    entry = ENTRY_POINT
    if entry and callable(tns.get("check")):
        target = ns.get(entry)
        if target is None:
            fail("check", NameError("candidate defines no %r" % entry)); res["total"] = 1
            return res
        tests.append(("check", lambda: tns["check"](target)))
    if not tests:
        res["passed"] = res["total"] = 1
        return res
    for name, fn in tests:
        res["total"] += 1
        try:
            fn()
            res["passed"] += 1
        except BaseException as exc:
            fail(name, exc)
    return res
_nonce = sys.stdin.readline().strip()
_res = _main(_nonce)
sys.__stdout__.write("\n" + _nonce + json.dumps(_res) + "\n")
sys.__stdout__.flush()
"""


def extract_code(text: str, language: str = "python") -> str:
    """The code in a model's answer: the longest fenced block in ``language`` (or untagged); an
    unclosed fence is read to the end; with no fence, the text itself minus prose lines before the
    first line that looks like code. Never raises."""
    if not isinstance(text, str):
        return ""
    langs = _CODE_LANGS if language == "python" else {"", language.lower()}
    blocks = [m.group("body") for m in _FENCE.finditer(text) if m.group("lang").lower() in langs]
    if blocks:
        return max(blocks, key=len).strip("\n")
    lines = text.strip("\n").splitlines()
    starts = ("def ", "class ", "import ", "from ", "@", "#", "async def ", "if __name__")
    for i, line in enumerate(lines):
        if line.startswith(starts) or re.match(r"^[A-Za-z_]\w*\s*=", line):
            return "\n".join(lines[i:]).strip("\n")
    return text.strip()


class CodeEvaluator:
    """Run candidate code against tests in the sandbox; score = passed / total."""

    name = "code"

    def __init__(
        self,
        tests: str | Sequence[str] | None = None,
        *,
        entry_point: str | None = None,
        limits: SandboxLimits | None = None,
        extract: bool = True,
    ) -> None:
        self.tests = tests
        self.entry_point = entry_point
        self.limits = limits or SandboxLimits()
        self.extract = extract

    def evaluate(self, text: str, context: Mapping[str, Any] | None = None) -> Score:
        ctx = context or {}
        tests = ctx.get("tests", self.tests)
        if not tests:
            raise ConfigError("tests", "the code evaluator needs tests (evaluator argument or context['tests'])")
        entry = ctx.get("entry_point", self.entry_point)
        if entry is not None and not (isinstance(entry, str) and entry.isidentifier()):
            raise ConfigError("entry_point", f"must be a Python identifier, got {entry!r}")
        code = extract_code(text) if self.extract else text
        nonce = "@@GPS" + secrets.token_hex(12) + "@@"
        run = run_python(
            _RUNNER.replace("ENTRY_POINT", repr(entry)),
            files={"candidate.py": code, "tests.py": _tests_source(tests)},
            stdin=(nonce + "\n").encode(),
            limits=self.limits,
        )
        report = _find_report(run.stdout, nonce)
        details: dict[str, Any] = {
            "status": run.status,
            "reason": run.reason,
            "duration_s": round(run.duration_s, 3),
            "isolation": list(run.isolation),
            "code_chars": len(code),
        }
        if run.status not in ("ok", "error") or report is None:
            if report is None and run.status in ("ok", "error"):
                details["status"] = "no_report"
                details["reason"] = run.reason or "the candidate ended the process before the tests reported"
            details["stderr_tail"] = run.stderr[-800:]
            return Score(0.0, details=details, evaluator=self.name)
        total, passed = int(report.get("total", 0)), int(report.get("passed", 0))
        details.update(passed=passed, total=total, failures=report.get("failures", [])[:10])
        details["status"] = "passed" if total and passed == total else "failed"
        if details["status"] == "failed":
            details["reason"] = "; ".join(f["error"] for f in details["failures"][:3])[:600]
        return Score(passed / total if total else 0.0, details=details, evaluator=self.name)


def _tests_source(tests: str | Sequence[str]) -> str:
    if isinstance(tests, str):
        return tests
    if not all(isinstance(t, str) for t in tests):
        raise ConfigError("tests", "must be source text or a list of assert statements (strings)")
    return "\n".join(
        f"def test_{i}():\n{textwrap.indent(textwrap.dedent(t).strip(), '    ')}\n" for i, t in enumerate(tests)
    )


def _find_report(stdout: str, nonce: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(nonce):
            try:
                data = json.loads(line[len(nonce) :])
            except ValueError:
                return None
            return data if isinstance(data, dict) else None
    return None

"""Score candidate code by running it against tests in the sandbox (:mod:`.sandbox`).

The score is the share of tests that pass. A candidate that loops, allocates without bound, forks,
writes outside its directory, opens a socket or floods its output scores 0 with ``details["status"]``
and ``details["reason"]`` saying which; that is a *result* of the evaluation. Only a failure of the
evaluation itself (no tests given, tests that do not parse, a sandbox weaker than allowed) is a failed
:class:`Score` (value None).

Tests, from the evaluator or ``context["tests"]``: Python source whose ``test*`` functions (or, if it
has none, its top-level asserts) are the tests, a list of assert statements (MBPP style, one test each),
or HumanEval style — source defining ``check(candidate)`` with ``context["entry_point"]`` naming the
function under test. The candidate's names are visible to the tests.

The verdict cannot be forged from inside the sandbox by a candidate that was not shown the answers: the
harness (:mod:`._harness`) is loaded before the candidate and read-only, the asserts' literal expected
values stay in this process (:mod:`.verdict`), the sandbox sends out only strictly encoded plain values
over a pipe, and the comparison happens here. ``details`` counts the asserts checked that way
(``parent_checked``) and those whose both sides were computed inside (``sandbox_checked``).

A weak sandbox (no usable bubblewrap, :mod:`.isolation`) runs no code unless allowed: the argument
``allow_weak_sandbox=True``, or ``POWER_SAMPLING_ALLOW_WEAK_SANDBOX=1`` when the argument is left at None.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from genesis_ps.errors import ConfigError
from genesis_ps.evaluators.base import Score
from genesis_ps.evaluators.isolation import runtime
from genesis_ps.evaluators.sandbox import SandboxLimits, run_python
from genesis_ps.evaluators.verdict import judge, plan_tests

__all__ = ["CodeEvaluator", "extract_code"]

_FENCE = re.compile(
    r"(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+#.-]*)[^\n]*\n(?P<body>.*?)(?:\n[ \t]*(?P=fence)|\Z)", re.DOTALL
)
_CODE_LANGS = {"", "python", "py", "python3", "py3"}
_HARNESS = (Path(__file__).parent / "_harness.py").read_text(encoding="utf-8")


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
        allow_weak_sandbox: bool | None = None,
    ) -> None:
        self.tests = tests
        self.entry_point = entry_point
        self.limits = limits or SandboxLimits()
        self.extract = extract
        self.allow_weak_sandbox = allow_weak_sandbox

    def _weak_allowed(self) -> bool:
        if self.allow_weak_sandbox is not None:
            return self.allow_weak_sandbox
        from genesis_ps.settings import Settings

        return Settings.from_env().allow_weak_sandbox

    def evaluate(self, text: str, context: Mapping[str, Any] | None = None) -> Score:
        ctx = context or {}
        tests = ctx.get("tests", self.tests)
        if not tests:
            raise ConfigError("tests", "the code evaluator needs tests (evaluator argument or context['tests'])")
        entry = ctx.get("entry_point", self.entry_point)
        if entry is not None and not (isinstance(entry, str) and entry.isidentifier()):
            raise ConfigError("entry_point", f"must be a Python identifier, got {entry!r}")
        try:
            plan = plan_tests(_tests_source(tests), entry)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            return Score(None, error=f"the tests do not parse: {type(exc).__name__}: {exc}", evaluator=self.name)
        rt = runtime()
        if not rt.strong and not self._weak_allowed():
            return Score(None, evaluator=self.name, details={"status": "refused", "sandbox": rt.detail},
                         error=f"the sandbox is weaker than a boundary here ({rt.detail}); no code was run. "
                         "Install bubblewrap, or allow it with POWER_SAMPLING_ALLOW_WEAK_SANDBOX=1")  # fmt: skip
        code = extract_code(text) if self.extract else text
        config = {"candidate": code, "tests": plan.source, "names": list(plan.names), "entry": entry}
        run = run_python(
            _HARNESS,
            files={"candidate.py": code, "tests.py": plan.source, "harness.json": json.dumps(config)},
            limits=self.limits,
            channel=True,
        )
        verdict = judge(plan, run.channel)
        details: dict[str, Any] = {
            "status": run.status,
            "reason": run.reason,
            "duration_s": round(run.duration_s, 3),
            "isolation": list(run.isolation),
            "strong_sandbox": run.strong,
            "sandbox": run.sandbox,
            "code_chars": len(code),
            "parent_checked": verdict.parent_checked,
            "sandbox_checked": verdict.sandbox_checked,
        }
        if run.status not in ("ok", "error") or not verdict.complete:
            if run.status in ("ok", "error"):
                details["status"] = "no_report"
                details["reason"] = run.reason or "the candidate ended the process before the tests reported"
            details["stderr_tail"] = run.stderr[-800:]
            return Score(0.0, details=details, evaluator=self.name)
        details.update(passed=verdict.passed, total=verdict.total, failures=verdict.failures[:10])
        details["status"] = "passed" if verdict.total and verdict.passed == verdict.total else "failed"
        if details["status"] == "failed":
            details["reason"] = "; ".join(f["error"] for f in details["failures"][:3])[:600]
        return Score(verdict.passed / verdict.total if verdict.total else 0.0, details=details, evaluator=self.name)


def _tests_source(tests: str | Sequence[str]) -> str:
    if isinstance(tests, str):
        return tests
    if not all(isinstance(t, str) for t in tests):
        raise ConfigError("tests", "must be source text or a list of assert statements (strings)")
    return "\n".join(
        f"def test_{i}():\n{textwrap.indent(textwrap.dedent(t).strip(), '    ')}\n" for i, t in enumerate(tests)
    )


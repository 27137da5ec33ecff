"""Code, math-answer and composite evaluators behind the Evaluator protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genesis_ps.errors import ConfigError
from genesis_ps.evaluators import (
    CodeEvaluator,
    CompositeEvaluator,
    Evaluator,
    MathAnswerEvaluator,
    SandboxLimits,
    Score,
    answers_equivalent,
    extract_answer,
    extract_code,
    safe_evaluate,
)

FAST = SandboxLimits(timeout_s=2.5, cpu_s=2, memory_mb=256)
ADD_TESTS = "def test_small():\n    assert add(1, 2) == 3\n\ndef test_negative():\n    assert add(-1, -2) == -3\n"


def test_extract_code_handles_fences_prose_and_junk() -> None:
    text = "Here you go:\n```python\ndef f():\n    return 1\n```\nand a shell line\n```bash\nls\n```"
    assert extract_code(text) == "def f():\n    return 1"
    assert extract_code("```py\nx = 1\n") == "x = 1"  # unclosed fence read to the end
    assert extract_code("Sure! Here is the code.\ndef g(x):\n    return x") == "def g(x):\n    return x"
    two = "```\na = 1\n```\n```python\ndef longer():\n    return 2\n```"
    assert extract_code(two).startswith("def longer")
    assert extract_code(None) == ""  # type: ignore[arg-type]


def test_code_evaluator_scores_share_of_tests_passed() -> None:
    ev = CodeEvaluator(ADD_TESTS, limits=FAST)
    assert isinstance(ev, Evaluator)
    good = ev.evaluate("```python\ndef add(a, b):\n    return a + b\n```")
    assert good.value == 1.0 and good.details["status"] == "passed" and good.details["total"] == 2
    half = ev.evaluate("def add(a, b):\n    return abs(a) + abs(b)\n")
    assert half.value == 0.5 and half.details["status"] == "failed"
    assert half.details["failures"][0]["test"] == "test_negative"


def test_code_evaluator_mbpp_list_and_humaneval_check() -> None:
    ev = CodeEvaluator(limits=FAST)
    s = ev.evaluate("def sq(x):\n    return x * x", {"tests": ["assert sq(2) == 4", "assert sq(3) == 10"]})
    assert s.value == 0.5
    check = "def check(candidate):\n    assert candidate(3) == 9\n"
    assert ev.evaluate("def sq(x):\n    return x * x", {"tests": check, "entry_point": "sq"}).value == 1.0
    missing = ev.evaluate("def other(x):\n    return x", {"tests": check, "entry_point": "sq"})
    assert missing.value == 0.0 and "sq" in missing.details["reason"]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("def add(a, b):\n    while True:\n        pass\n", {"timeout", "cpu_limit"}),
        ("import socket\nsocket.socket(socket.AF_INET)\ndef add(a, b):\n    return a + b\n", {"forbidden"}),
        ("def add(a, b):\n    return a +\n", {"failed"}),  # syntax error: a test failure, not a crash
        ("import os\nos._exit(0)\n", {"no_report"}),
    ],
)
def test_misbehaving_candidates_score_zero_with_the_reason(code: str, status: set[str]) -> None:
    s = CodeEvaluator(ADD_TESTS, limits=FAST).evaluate(code)
    assert s.ok and s.value == 0.0
    assert s.details["status"] in status
    assert s.details["reason"]


def test_missing_tests_is_a_failed_evaluation_not_a_zero() -> None:
    s = safe_evaluate(CodeEvaluator(), "def f(): pass")
    assert s.value is None and not s.ok and "tests" in (s.error or "")


def test_math_extraction_order() -> None:
    assert extract_answer("so \\boxed{\\frac{1}{2}} and the answer is 3") == ("\\frac{1}{2}", "boxed")
    assert extract_answer("Thus the answer is 42.") == ("42", "phrase")
    assert extract_answer("3 apples plus 5 pears makes 8") == ("8", "last_number")
    assert extract_answer("no idea") == (None, "none")


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("\\frac{14}{3}", "14/3", True),
        ("3\\sqrt{13}", "\\sqrt{117}", True),
        ("90^\\circ", "90", True),
        ("x=5", "5", True),
        ("1,-2", "-2, 1", True),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\pi/2)", True),
        ("(3, 1)", "(1, 3)", False),
        ("x^2+2x+1", "(x+1)^2", True),
        ("\\frac{14}{3}", "14/4", False),
        ("__import__('os').system('true')", "0", False),
        ("2^{2^{2^{100}}}", "1", False),  # refused quickly, never computed
        ("9^{99999999}", "1", False),
    ],
)
def test_math_equivalence(a: str, b: str, same: bool) -> None:
    assert answers_equivalent(a, b)[0] is same


def test_math_evaluator_on_math500_answers() -> None:
    path = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "math500" / "MATH500.json"
    if path.exists():
        answers = [r["answer"] for r in json.loads(path.read_text())[:60]]
    else:
        answers = ["\\frac{14}{3}", "p - q", "3\\sqrt{13}", "6 - 5i", "\\text{Evelyn}"]
    ev = MathAnswerEvaluator()
    for ans in answers:
        assert ev.evaluate(f"Working... so the result is \\boxed{{{ans}}}.", {"answer": ans}).value == 1.0, ans
    wrong = ev.evaluate("The answer is 7", {"answer": "8"})
    assert wrong.value == 0.0 and wrong.details["extracted"] == "7"
    assert safe_evaluate(ev, "The answer is 7").error  # no reference: failed evaluation


class _Fixed:
    def __init__(self, name: str, value: float | None) -> None:
        self.name, self.value = name, value

    def evaluate(self, text: str, context: object = None) -> Score:
        if self.value is None:
            raise RuntimeError("broken evaluator")
        return Score(self.value, evaluator=self.name)


def test_composite_weights_and_failure_policy() -> None:
    comp = CompositeEvaluator([(_Fixed("a", 1.0), 3.0), (_Fixed("b", 0.0), 1.0)])
    assert comp.evaluate("x").value == pytest.approx(0.75)
    broken = [(_Fixed("a", 1.0), 1.0), (_Fixed("bad", None), 1.0)]
    failed = CompositeEvaluator(broken).evaluate("x")
    assert failed.value is None and "bad" in (failed.error or "")
    skipped = CompositeEvaluator(broken, on_failure="skip").evaluate("x")
    assert skipped.value == 1.0 and "bad" in skipped.details["failed"]
    with pytest.raises(ConfigError, match="components"):
        CompositeEvaluator([(_Fixed("a", 1.0), -1.0)])
    with pytest.raises(ConfigError, match="components"):
        CompositeEvaluator([])

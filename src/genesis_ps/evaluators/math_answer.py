"""Math answers: extract the final answer from a model's text and compare it with a reference.

Extraction, in order: the last ``\\boxed{…}`` / ``\\fbox{…}`` (nested braces balanced), a phrase such as
"the answer is …" / "Answer: …", then the last number in the text. Equivalence: normalised strings
first (LaTeX spacing, ``\\left``/``\\right``, ``\\dfrac``, degrees, ``\\text{}``, a leading ``x =``), then
sympy on a small LaTeX-to-sympy translation — parsed only after the string passes a strict allow-list of
characters and names, so model output is never evaluated as arbitrary code — then numeric comparison.
Tuples compare in order, bare comma lists as multisets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from genesis_ps.errors import ConfigError
from genesis_ps.evaluators.base import Score

__all__ = ["MathAnswerEvaluator", "answers_equivalent", "extract_answer", "normalize_answer"]

_ANSWER_PHRASE = re.compile(r"(?:final answer|the answer|answer)\s*(?:is|:|=)\s*[:]?\s*(?P<ans>[^\n]+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:\s*/\s*\d+)?")
_ALLOWED_NAMES = {"sqrt", "pi", "I", "oo", "E", "log", "ln", "sin", "cos", "tan", "exp", "Rational", "Integer"}
_SAFE = re.compile(r"^[0-9A-Za-z_+\-*/().,\s]*$")


def _balanced_after(text: str, start: int) -> str | None:
    """The contents of the brace group opening at ``text[start] == '{'``."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    return None


def extract_answer(text: str) -> tuple[str | None, str]:
    """``(answer, how)`` where ``how`` is ``boxed``, ``phrase``, ``last_number`` or ``none``."""
    if not isinstance(text, str) or not text.strip():
        return None, "none"
    for macro in ("\\boxed", "\\fbox"):
        idx = text.rfind(macro + "{")
        if idx >= 0:
            inner = _balanced_after(text, idx + len(macro))
            if inner is not None and inner.strip():
                return inner.strip(), "boxed"
        m = re.search(re.escape(macro) + r"\s+([^\s$]+)", text)
        if m:
            return m.group(1), "boxed"
    phrases = list(_ANSWER_PHRASE.finditer(text))
    if phrases:
        ans = phrases[-1].group("ans").strip()
        ans = re.split(r"(?<=[^\d\\])\.\s|\.$", ans)[0].strip().strip("$").strip()
        if ans:
            return ans, "phrase"
    nums = _NUMBER.findall(text)
    if nums:
        return nums[-1].replace(",", "").replace(" ", ""), "last_number"
    return None, "none"


def normalize_answer(ans: str) -> str:
    """A canonical string form (exact string equality after this counts as equivalent)."""
    s = ans.strip().strip("$").strip()
    s = re.sub(r"\\text\{\s*([^{}]*)\}", r"\1", s)
    s = re.sub(r"\\(?:mbox|mathrm|textbf|mathbf)\{([^{}]*)\}", r"\1", s)
    for old, new in (
        ("\\left", ""),
        ("\\right", ""),
        ("\\!", ""),
        ("\\,", ""),
        ("\\;", ""),
        ("\\ ", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("^\\circ", ""),
        ("^{\\circ}", ""),
        ("\\degree", ""),
        ("\\%", ""),
        ("%", ""),
        ("\\$", ""),
        ("dollars", ""),
        ("degrees", ""),
    ):
        s = s.replace(old, new)
    s = re.sub(r"\s+", "", s)
    s = re.sub(r"^[a-zA-Z]\w*=(?!=)", "", s)  # "x=5" → "5"
    s = s.rstrip(".")
    if re.fullmatch(r"-?\d+(?:,\d{3})+", s):
        s = s.replace(",", "")
    if re.fullmatch(r"-?\d+\.\d*?0+", s):
        s = s.rstrip("0").rstrip(".")
    return s


def _latex_to_sympy(s: str) -> str:
    for _ in range(6):  # innermost groups first, so nested \\frac / \\sqrt resolve
        before = s
        s = re.sub(r"\\sqrt\[([^\]]*)\]\{([^{}]*)\}", r"((\2)**(1/(\1)))", s)
        s = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", s)
        s = re.sub(r"\\sqrt(\d+|[a-zA-Z])", r"sqrt(\1)", s)
        s = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", s)
        s = re.sub(r"\\frac(\d)(\d)", r"((\1)/(\2))", s)
        if s == before:
            break
    for old, new in (
        ("\\pi", "pi"),
        ("\\cdot", "*"),
        ("\\times", "*"),
        ("\\infty", "oo"),
        ("^", "**"),
        ("{", "("),
        ("}", ")"),
        ("\\ln", "log"),
        ("\\log", "log"),
        ("\\sin", "sin"),
        ("\\cos", "cos"),
        ("\\tan", "tan"),
    ):
        s = s.replace(old, new)
    s = re.sub(r"(?<![A-Za-z])i(?![A-Za-z])", "I", s)
    return s


_NO_SYMPY = object()
"""What :func:`_to_sympy` returns when sympy is not installed."""


@lru_cache(maxsize=2048)
def _to_sympy(ans: str) -> Any:
    """A sympy expression, or None when the string is not a plain expression we can parse safely."""
    expr = _latex_to_sympy(ans)
    if "\\" in expr or not _SAFE.match(expr) or len(expr) > 200:
        return None
    if expr.count("**") > 2 or any(len(e) > 3 for e in re.findall(r"\*\*\s*\(*\s*(\d+)", expr)):
        return None  # towers and huge exponents would make sympy compute for ever
    names = set(re.findall(r"[A-Za-z_]\w*", expr))
    if any(len(n) > 1 and n not in _ALLOWED_NAMES for n in names) or "__" in expr:
        return None
    try:
        from sympy import Symbol  # lazy: sympy is heavy, and optional (the ``math`` extra)
        from sympy.parsing.sympy_parser import (
            implicit_multiplication_application,
            parse_expr,
            standard_transformations,
        )
    except ImportError:
        return _NO_SYMPY

    local = {n: Symbol(n) for n in names if len(n) == 1 and n not in ("I", "E")}
    try:
        return parse_expr(
            expr,
            local_dict=local,
            transformations=(*standard_transformations, implicit_multiplication_application),
            evaluate=True,
        )
    except Exception:  # malformed model output is a non-match, not a crash
        return None


def _split_top(s: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in s:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur]


def _tuple_parts(s: str) -> list[str] | None:
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]" and _split_top(s) == [s]:
        parts = _split_top(s[1:-1])
        return parts if len(parts) > 1 else None
    return None


def _scalar_equal(a: str, b: str) -> tuple[bool, str]:
    if a == b:
        return True, "string"
    ea, eb = _to_sympy(a), _to_sympy(b)
    if ea is _NO_SYMPY or eb is _NO_SYMPY:
        return False, "no_sympy"  # only exact string matches count without it: pip install 'genesis_ps[math]'
    if ea is None or eb is None:
        return False, "unparsed"
    try:
        diff = ea - eb
        if not diff.free_symbols:
            scale = 1.0 if eb.free_symbols else max(1.0, abs(complex(eb.evalf())))
            return abs(complex(diff.evalf())) <= 1e-6 * scale, "numeric"
        from sympy import simplify

        return bool(simplify(diff) == 0), "sympy"
    except Exception:
        return False, "unparsed"


def answers_equivalent(pred: str, ref: str) -> tuple[bool, str]:
    """Whether two answers are mathematically the same, and by which test (string/numeric/sympy)."""
    a, b = normalize_answer(pred), normalize_answer(ref)
    if a == b:
        return True, "string"
    ta, tb = _tuple_parts(a), _tuple_parts(b)
    if ta is not None or tb is not None:
        ok = (
            ta is not None
            and tb is not None
            and len(ta) == len(tb)
            and all(_scalar_equal(x, y)[0] for x, y in zip(ta, tb, strict=True))
        )
        return ok, "tuple"
    pa, pb = _split_top(a), _split_top(b)
    if len(pa) > 1 or len(pb) > 1:
        if len(pa) != len(pb):
            return False, "set"
        left = list(pb)
        for x in pa:
            hit = next((j for j, y in enumerate(left) if _scalar_equal(x, y)[0]), None)
            if hit is None:
                return False, "set"
            left.pop(hit)
        return True, "set"
    return _scalar_equal(a, b)


class MathAnswerEvaluator:
    """1.0 when the extracted answer is equivalent to the reference (``context["answer"]`` or the
    constructor's), else 0.0; ``details`` holds the extracted answer and how it was found and compared."""

    name = "math_answer"

    def __init__(self, answer: str | None = None) -> None:
        self.answer = answer

    def evaluate(self, text: str, context: Mapping[str, Any] | None = None) -> Score:
        ref = (context or {}).get("answer", self.answer)
        if ref is None or not str(ref).strip():
            raise ConfigError("answer", "the math evaluator needs a reference answer (context['answer'])")
        pred, how = extract_answer(text)
        details: dict[str, Any] = {"extracted": pred, "extraction": how, "reference": str(ref)}
        if pred is None:
            details["reason"] = "no answer found in the text"
            return Score(0.0, details=details, evaluator=self.name)
        ok, method = answers_equivalent(pred, str(ref))
        details["comparison"] = method
        return Score(1.0 if ok else 0.0, details=details, evaluator=self.name)

"""Tests whose expected values never enter the sandbox, and the verdict computed in the parent.

:func:`plan_tests` rewrites the tests' source with :mod:`ast`: every ``assert`` becomes a call
``__gps_check__(SITE, operand, ...)`` that sends the values of its operands out of the sandbox (through
the harness, :mod:`genesis_ps.evaluators._harness`). A literal operand (``assert f(2) == 4``: the ``4``) is
removed from the source and kept here, so code in the sandbox cannot read, change or print it; the
comparison — ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``in``, ``not in``, ``is None`` … — runs in the
parent on decoded plain values (:func:`judge`). Any other assert sends the value of its whole expression,
which must be plain and truthy (``assert not x``: falsy).

A test passes when the harness reported it returned, every assert it ran matched, and every assert written
directly in its body (not inside a loop, branch or helper) was reported at least once — so a candidate
that kills the process, or writes forged records on the channel, cannot pass an assert whose expected
value it was never shown. Asserts with no literal side compare two values computed inside the sandbox;
they are as strong as the candidate's inability to tamper with the process it runs in, and the result
counts them apart (``sandbox_checked`` vs ``parent_checked``).
"""

from __future__ import annotations

import ast
import json
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Plan", "Site", "Verdict", "decode_value", "judge", "plan_tests"]

CHECK = "__gps_check__"
_OPS: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Eq: ("==", operator.eq), ast.NotEq: ("!=", operator.ne), ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le), ast.Gt: (">", operator.gt), ast.GtE: (">=", operator.ge),
    ast.In: ("in", lambda a, b: a in b), ast.NotIn: ("not in", lambda a, b: a not in b),
    ast.Is: ("is", operator.is_), ast.IsNot: ("is not", operator.is_not),
}  # fmt: skip
_SINGLETONS = (None, True, False, Ellipsis)
_MAX_LINE = 4_000_000


@dataclass(frozen=True)
class Site:
    """One rewritten assert: its operands (literal values kept here, or sent from the sandbox) and ops."""

    id: int
    test: int
    """Index of the test whose body holds it directly; -1 the module; -3 a helper or nested scope."""
    line: int
    ops: tuple[str, ...]
    """Comparison operators between consecutive operands, or ``("truthy",)`` / ``("falsy",)``."""
    literals: tuple[tuple[bool, Any], ...]
    required: bool
    """Written directly in the test's body: the test fails unless it was reported."""

    @property
    def parent_checked(self) -> bool:
        return any(is_lit for is_lit, _ in self.literals)


@dataclass(frozen=True)
class Plan:
    source: str
    names: tuple[str, ...]
    """The tests the harness runs, in order (test functions, then ``check``); empty: the module is the test."""
    sites: dict[int, Site]


@dataclass
class Verdict:
    passed: int
    total: int
    failures: list[dict[str, str]] = field(default_factory=list)
    parent_checked: int = 0
    sandbox_checked: int = 0
    complete: bool = False
    """The harness reported the end of the run."""


def _literal(node: ast.expr) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


class _Rewriter(ast.NodeTransformer):
    def __init__(self, test_of: dict[int, int]) -> None:
        self.sites: dict[int, Site] = {}
        self.test_of = test_of  # id(stmt) -> test index, for statements directly in a test body

    def visit_Assert(self, node: ast.Assert) -> ast.stmt:
        test = self.test_of.get(id(node), -3)
        expr = node.test
        if isinstance(expr, ast.Compare) and all(
            type(op) in _OPS and (type(op) not in (ast.Is, ast.IsNot) or _singleton_pair(expr, i))
            for i, op in enumerate(expr.ops)
        ):
            operands = [expr.left, *expr.comparators]
            ops = tuple(_OPS[type(op)][0] for op in expr.ops)
        elif isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Not):
            operands, ops = [expr.operand], ("falsy",)
        else:
            operands, ops = [expr], ("truthy",)
        lits = tuple(_literal(o) for o in operands)
        sid = len(self.sites)
        self.sites[sid] = Site(id=sid, test=test, line=node.lineno, ops=ops, literals=lits,
                               required=test != -3)  # fmt: skip
        sent = [self.visit(o) for o, (is_lit, _) in zip(operands, lits, strict=True) if not is_lit]
        call = ast.Call(func=ast.Name(id=CHECK, ctx=ast.Load()), args=[ast.Constant(sid), *sent], keywords=[])
        return ast.copy_location(ast.Expr(value=call), node)


def _singleton_pair(expr: ast.Compare, i: int) -> bool:
    operands = [expr.left, *expr.comparators]
    return any(isinstance(o, ast.Constant) and any(o.value is s for s in _SINGLETONS) for o in operands[i : i + 2])


def plan_tests(source: str, entry_point: str | None) -> Plan:
    """Rewrite ``source`` (raises SyntaxError as Python would); see the module docstring."""
    tree = ast.parse(source, "tests.py")
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    names = [f.name for f in funcs if f.name.startswith("test")]
    if entry_point and any(f.name == "check" for f in funcs):
        names.append("check")
    test_of: dict[int, int] = {}
    for f in funcs:
        if f.name in names:
            test_of.update({id(s): names.index(f.name) for s in f.body})
    test_of.update({id(s): -1 for s in tree.body})
    rw = _Rewriter(test_of)
    new = ast.fix_missing_locations(rw.visit(tree))
    return Plan(source=ast.unparse(new), names=tuple(names), sites=rw.sites)


def decode_value(v: Any, depth: int = 0) -> Any:
    """A value from the harness's encoding (``["i", "0x2a"]`` …) as a plain Python value; ValueError if bad."""
    if depth > 120 or not isinstance(v, list) or not v or not isinstance(v[0], str):
        raise ValueError("bad value encoding")
    tag, rest = v[0], v[1:]
    simple: dict[str, Callable[[], Any]] = {
        "n": lambda: None, "T": lambda: True, "F": lambda: False,
        "i": lambda: int(rest[0], 16), "f": lambda: float.fromhex(rest[0]),
        "c": lambda: complex(float.fromhex(rest[0]), float.fromhex(rest[1])),
        "s": lambda: bytes.fromhex(rest[0]).decode("utf-8", "surrogatepass"), "b": lambda: bytes.fromhex(rest[0]),
    }  # fmt: skip
    if tag in simple:
        return simple[tag]()
    items = rest[0] if rest and isinstance(rest[0], list) else None
    if items is None:
        raise ValueError("bad container encoding")
    if tag == "d":
        return {decode_value(k, depth + 1): decode_value(x, depth + 1) for k, x in items}
    seq = [decode_value(x, depth + 1) for x in items]
    kinds: dict[str, Callable[[list[Any]], Any]] = {"l": list, "t": tuple, "S": set, "Z": frozenset}
    if tag not in kinds:
        raise ValueError(f"unknown value tag {tag!r}")
    return kinds[tag](seq)


def _records(channel: bytes) -> list[dict[str, Any]]:
    out = []
    for line in channel.split(b"\n"):
        if not line.strip() or len(line) > _MAX_LINE:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _text(hexed: Any) -> str:
    try:
        return bytes.fromhex(str(hexed)).decode("utf-8", "replace")
    except ValueError:
        return "<unreadable>"


def _site_result(site: Site, rec: dict[str, Any]) -> str | None:
    """None when the reported values satisfy the assert, else why not."""
    if "x" in rec:
        return _text(rec["x"])
    try:
        sent = iter([decode_value(v) for v in rec.get("v", [])])
        values = [lit if is_lit else next(sent) for is_lit, lit in site.literals]
    except (ValueError, TypeError, StopIteration, IndexError, RecursionError, OverflowError) as exc:
        return f"unreadable values ({type(exc).__name__})"
    if next(sent, _END) is not _END:
        return "more values than the assert has operands"
    try:
        if site.ops in (("truthy",), ("falsy",)):
            ok = bool(values[0]) == (site.ops[0] == "truthy")
        else:
            fns = {name: fn for name, fn in _OPS.values()}
            ok = all(bool(fns[op](a, b)) for op, a, b in zip(site.ops, values, values[1:], strict=False))
    except Exception as exc:  # comparing plain values can still fail (e.g. '<' between str and int)
        return f"{type(exc).__name__}: {exc}"
    if ok:
        return None
    shown = f" {site.ops[0]} ".join(_short(v) for v in values) if len(values) == 2 else _short(values[0])
    if site.ops[0] in ("truthy", "falsy"):
        return f"assert failed: a {site.ops[0]} value expected, got {shown}"
    return f"assert failed: {shown}"


_END = object()


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 120 else text[:117] + "..."


def judge(plan: Plan, channel: bytes) -> Verdict:
    """Score the records the harness wrote (see the module docstring)."""
    recs = _records(channel)
    n = max(len(plan.names), 1)
    failures: dict[int, str] = {}
    ended: dict[int, bool] = {}
    seen: set[tuple[int, int]] = set()
    for rec in recs:
        kind, t = rec.get("k"), rec.get("t")
        if not isinstance(t, int):
            continue
        if kind == "end":
            ok = rec.get("ok") == 1
            ended[t] = ended.get(t, True) and ok
            if not ok:
                failures.setdefault(t, _text(rec.get("x", "")))
        elif kind == "site" and isinstance(rec.get("s"), int) and rec["s"] in plan.sites:
            site = plan.sites[rec["s"]]
            seen.add((t, site.id))
            bad = _site_result(site, rec)
            if bad is not None:
                failures.setdefault(t, f"line {site.line}: {bad}")
    complete = any(r.get("k") == "done" for r in recs)
    verdict = Verdict(passed=0, total=n, complete=complete)
    verdict.parent_checked = sum(s.parent_checked for s in plan.sites.values())
    verdict.sandbox_checked = len(plan.sites) - verdict.parent_checked
    for pre, label in ((-2, "<candidate import>"), (-1, "<tests module>")):
        if not ended.get(pre, False) or pre in failures or _missing(plan, pre, seen):
            reason = failures.get(pre) or _missing(plan, pre, seen) or "the run ended before it finished"
            verdict.total = 1 if not plan.names else n
            verdict.failures.append({"test": label, "error": reason})
            return verdict
    for t, name in enumerate(plan.names):
        missing = _missing(plan, t, seen)
        if ended.get(t) is True and t not in failures and not missing:
            verdict.passed += 1
        else:
            reason = failures.get(t) or missing or "the run ended before this test finished"
            verdict.failures.append({"test": name, "error": reason})
    if not plan.names:
        verdict.passed = 1  # no test functions: the tests module ran, every assert in it held
    return verdict


def _missing(plan: Plan, t: int, seen: set[tuple[int, int]]) -> str | None:
    for s in plan.sites.values():
        if s.required and s.test == t and (t, s.id) not in seen:
            return f"line {s.line}: the assert was never reported"
    return None


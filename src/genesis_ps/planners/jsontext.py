"""Finding and loading the JSON in a model's answer, in linear time, for :mod:`.parse`.

:func:`load_json` takes the first JSON value in a text (inside prose or a code fence), strict JSON first,
else repaired by the maintained repairer `json-repair`_ (trailing commas, single quotes, unquoted keys,
Python literals; a truncated text is first cut after its last complete element). It never raises. Every
step is linear in the text: the patterns are bounded, the JSON is scanned once (depth capped at
:data:`MAX_NESTING`), and the repairer only sees texts of at most :data:`MAX_REPAIR_CHARS` with its work
capped (:data:`REPAIR_STEPS_PER_CHAR`, :data:`REPAIR_CPU_S`): some inputs make json-repair quadratic or
worse (``'{' + 'a"' * 20_000`` takes it 15 s uncapped).

.. _json-repair: https://pypi.org/project/json-repair/
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

__all__ = ["MAX_NESTING", "MAX_REPAIR_CHARS", "REPAIR_CPU_S", "REPAIR_STEPS_PER_CHAR", "LoadedJSON", "load_json"]

MAX_NESTING = 20
"""JSON nested deeper than this is refused before parsing (no recursion blow-up)."""
MAX_REPAIR_CHARS = 12_000
"""Invalid JSON longer than this is not repaired (a plan of 1,000 tokens fits twice; strict JSON of any
length still parses)."""
REPAIR_STEPS_PER_CHAR = 100
"""Work budget of one repair, in traced Python steps per character (json-repair needs 20–80)."""
REPAIR_CPU_S = 0.5
"""CPU-time budget of one repair."""


@dataclass
class LoadedJSON:
    """The loaded value (None when it could not be loaded), what the text needed, and why it failed."""

    data: Any
    repairs: list[str] = field(default_factory=list)
    problem: str | None = None


def load_json(text: str) -> LoadedJSON | None:
    """The first JSON value in ``text`` (see the module docstring); None when the text holds no ``{``/``[``."""
    repairs: list[str] = []
    fence = re.search(r"```(?:json|JSON)?[ \t]*\n?(.*?)(?:```|$)", text, re.S)
    body = text
    if fence and ("{" in fence.group(1) or "[" in fence.group(1)):
        body = fence.group(1)
        repairs.append("extracted JSON from a code fence")
    starts = [i for i in (body.find("{"), body.find("[")) if i >= 0]
    if not starts:
        return None
    start = min(starts)
    if start > 0 and body[:start].strip():
        repairs.append("ignored prose before the JSON")
    body = body[start:]
    scan = _scan(body)
    if scan.depth > MAX_NESTING:
        return LoadedJSON(None, [], f"JSON nested too deeply ({scan.depth} > {MAX_NESTING} levels)")
    data, more = _loads_repaired(body, scan)
    repairs += more
    if data is _FAIL:
        return LoadedJSON(None, repairs, "could not parse the JSON, even repaired")
    return LoadedJSON(data, repairs)


_FAIL = object()


@dataclass
class _Scan:
    """One linear pass over a JSON-ish text: nesting depth, where the first value closes (or -1), and the
    last place an inner element closed (where a truncated text is cut)."""

    depth: int = 0
    end: int = -1
    stray: int = -1
    """Where a closing bracket that matches nothing open stopped the scan (the text is cut there)."""
    last_inner: int = -1


def _scan(s: str) -> _Scan:
    out = _Scan()
    stack: list[str] = []
    in_str = esc = False
    for i, ch in enumerate(s):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
            out.depth = max(out.depth, len(stack))
            if out.depth > MAX_NESTING:
                return out
        elif ch in "}]":
            if not stack or stack[-1] != ch:
                out.stray = i
                return out
            stack.pop()
            if not stack:
                out.end = i + 1
                return out
            out.last_inner = i + 1
    return out


def _loads(s: str) -> Any:
    try:
        return json.loads(s)
    except (ValueError, RecursionError):
        return _FAIL


def _loads_repaired(body: str, scan: _Scan) -> tuple[Any, list[str]]:
    """Strict JSON first; else the maintained repairer (json-repair) on the first value, cut after its last
    complete element when the text was truncated. Linear: one scan, one ``json.loads``, and json-repair
    only on texts of at most ``MAX_REPAIR_CHARS``."""
    closed = scan.end >= 0
    cand = body[: scan.end] if closed else body[: scan.stray] if scan.stray >= 0 else body
    data = _loads(cand)
    if data is not _FAIL:
        return data, ["ignored text after the JSON"] if closed and body[scan.end :].strip() else []
    repairs = [label for label, pattern in _REPAIR_SIGNS if pattern.search(cand[:MAX_REPAIR_CHARS])]
    if not closed and scan.last_inner > 0:
        cand = cand[: scan.last_inner]
        repairs.append("closed truncated JSON after the last complete element")
    elif not closed:
        repairs.append("closed truncated JSON")
    if len(cand) > MAX_REPAIR_CHARS:
        return _FAIL, [*repairs, f"not repaired: {len(cand)} characters > {MAX_REPAIR_CHARS}"]
    try:
        data = _budgeted_repair(cand)
    except _OverBudget:
        return _FAIL, [*repairs, "repair abandoned: json-repair passed its work budget"]
    except (ValueError, RecursionError, TypeError, IndexError, AttributeError):
        return _FAIL, repairs
    if not isinstance(data, (dict, list)):
        return _FAIL, repairs
    return data, [*repairs, "repaired with json-repair"]


class _OverBudget(BaseException):
    """json-repair ran past its work budget (a BaseException, so no ``except Exception`` inside it stops it)."""


def _budgeted_repair(text: str) -> Any:
    """json-repair on ``text`` with its work capped: at most ``REPAIR_STEPS_PER_CHAR`` traced Python steps
    per character (plus a constant), and ``REPAIR_CPU_S`` of CPU, whichever comes first. Some inputs make
    json-repair quadratic or worse (``'{' + 'a"' * 20_000`` takes 15 s uncapped); with the cap none takes
    long, at the price of a slower repair (tracing) for the few texts that need one."""
    from json_repair import repair_json

    steps = [REPAIR_STEPS_PER_CHAR * len(text) + 20_000]
    deadline = time.process_time() + REPAIR_CPU_S

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        steps[0] -= 1
        if steps[0] < 0 or (steps[0] & 0x3FFF == 0 and time.process_time() > deadline):
            raise _OverBudget
        return local

    previous = sys.gettrace()
    sys.settrace(lambda frame, event, arg: local)
    try:
        return repair_json(text, return_objects=True, skip_json_loads=True)
    finally:
        sys.settrace(previous)


_REPAIR_SIGNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("converted single quotes to double quotes", re.compile(r"[\[{:,][ \t\n]*'")),
    ("quoted bare keys", re.compile(r"[{,][ \t\n]*[A-Za-z_][A-Za-z0-9_]{0,64}[ \t]*:")),
    ("replaced Python literals", re.compile(r"[:\[,][ \t\n]*(?:True|False|None)\b")),
    ("removed trailing commas", re.compile(r",[ \t\n]{0,64}[}\]]")),
)
"""What a text needed, named for the record (the repair itself is json-repair's). Bounded patterns only,
so each search is linear."""

"""The test harness that runs inside the sandbox (its source is copied in read-only; it is never imported).

It starts before the candidate: it reads its configuration, the candidate and the (rewritten) tests, and
takes its own references to every builtin it uses, so later monkeypatching by the candidate (``json``,
``builtins``, ``type``) does not reach it. Then it runs the candidate, the tests module and each test, and
writes what it saw to the result channel, one ASCII JSON record per line:

- ``{"k": "site", "t": T, "s": S, "v": [...]}``: the operand values of assert ``S`` (test ``T``), strictly
  encoded (below), or ``"x"``: why they could not be;
- ``{"k": "end", "t": T, "ok": 1}`` or ``..."ok": 0, "x": ...}``: test ``T`` returned or raised
  (T = -2 the candidate, -1 the tests module, 0… the tests);
- ``{"k": "done"}``.

The expected values of the tests' asserts are not in the sandbox: the evaluator removed the literals and
compares in the parent (:mod:`genesis_ps.evaluators.verdict`). Only plain values cross: ``None``, ``bool``,
``int``, ``float``, ``complex``, ``str``, ``bytes`` and lists, tuples, dicts, sets and frozensets of them.
A subclass of one of those is read through the base type's own C methods, and refused if any class in its
MRO overrides a comparison, hashing, conversion or arithmetic method — an object whose ``__eq__`` always
returns True never compares equal to anything. Candidate functions the tests call are wrapped so that a
returned object overriding ordering, truth or arithmetic is refused too (``abs(f(x) - 1.5) < 1e-6`` cannot
be forged by an object whose ``__sub__`` returns 0). Strings are sent as hex, so no escaping is involved.
Standard library only, no syntax newer than Python 3.8.
"""

from __future__ import annotations

import builtins
import collections
import json
import os
import sys
import traceback
import types
from collections.abc import Callable
from typing import Any


class _Reject(Exception):
    pass


_BASES = (bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset)
_VALUE_DUNDERS = frozenset(
    "__eq__ __ne__ __lt__ __le__ __gt__ __ge__ __hash__ __bool__ __len__ __iter__ __contains__ __getitem__ "
    "__int__ __float__ __complex__ __index__ __str__ __bytes__ __abs__ __neg__ __pos__ __round__ __trunc__ "
    "__floor__ __ceil__ __add__ __radd__ __sub__ __rsub__ __mul__ __rmul__ __truediv__ __rtruediv__ "
    "__floordiv__ __rfloordiv__ __mod__ __rmod__ __pow__ __rpow__ __getattribute__ __getattr__ __class__".split()
)
_RETURN_DUNDERS = frozenset(
    "__lt__ __le__ __gt__ __ge__ __bool__ __int__ __float__ __complex__ __index__ __abs__ __neg__ __pos__ "
    "__round__ __trunc__ __floor__ __ceil__ __add__ __radd__ __sub__ __rsub__ __mul__ __rmul__ __truediv__ "
    "__rtruediv__ __floordiv__ __rfloordiv__ __mod__ __rmod__ __pow__ __rpow__ __getattribute__ __getattr__ "
    "__class__".split()
)


def _make_encoder() -> tuple[Callable[[Any], str], Callable[[Any], str | None]]:
    """``encode(value) -> JSON text`` with every reference taken now, before the candidate runs."""
    _type, _hex, _fhex, _sencode, _bhex, _join = type, hex, float.hex, str.encode, bytes.hex, str.join
    _enumerate = enumerate
    bases, value_dunders, return_dunders = _BASES, _VALUE_DUNDERS, _RETURN_DUNDERS
    reject = _Reject
    tags: dict[type, str] = {list: "l", tuple: "t", set: "S", frozenset: "Z"}
    _mro = type.__dict__["__mro__"].__get__
    _vars = type.__dict__["__dict__"].__get__
    _name = type.__dict__["__name__"].__get__
    convert: dict[type, Callable[[Any], Any]] = {
        int: int.__int__, float: float.__float__, str: str.__str__, list: list.copy, dict: dict.copy,
        set: set.copy, frozenset: frozenset.copy, bytes: lambda v: bytes.__getitem__(v, slice(None)),
        tuple: lambda v: tuple.__getitem__(v, slice(None)),
    }  # fmt: skip
    dict_like = (collections.OrderedDict, collections.defaultdict, collections.Counter)
    _dict_copy, _dict_items = dict.copy, dict.items
    max_items, max_depth = 200_000, 100

    def exact(v: Any) -> tuple[Any, type]:
        t = _type(v)
        for b in bases:
            if t is b:
                return v, b
        for d in dict_like:
            if t is d:
                return _dict_copy(v), dict
        for k in _mro(t):
            base = None
            for b in bases:
                if k is b:
                    base = b
            if base is not None:
                if base is complex:
                    raise reject(f"of type {_name(t)}, a subclass of complex")
                return convert[base](v), base
            for name in value_dunders:
                if name in _vars(k):
                    raise reject(f"of type {_name(t)}, whose class {_name(k)} overrides {name}")
        raise reject(f"of type {_name(t)}, not a plain value")

    def enc(v: Any, out: list[str], depth: int, budget: list[int]) -> None:
        budget[0] -= 1
        if budget[0] < 0 or depth > max_depth:
            raise reject("too large or too deeply nested")
        if v is None:
            out.append('["n"]')
            return
        v, b = exact(v)
        if b is bool:
            out.append('["T"]' if v else '["F"]')
        elif b is int:
            out.append(f'["i","{_hex(v)}"]')
        elif b is float:
            out.append(f'["f","{_fhex(v)}"]')
        elif b is complex:
            out.append(f'["c","{_fhex(v.real)}","{_fhex(v.imag)}"]')
        elif b is str:
            out.append('["s","{}"]'.format(_bhex(_sencode(v, "utf-8", "surrogatepass"))))
        elif b is bytes:
            out.append(f'["b","{_bhex(v)}"]')
        elif b is dict:
            out.append('["d",[')
            for i, (key, val) in _enumerate(_dict_items(v)):
                out.append("," if i else "")
                out.append("[")
                enc(key, out, depth + 1, budget)
                out.append(",")
                enc(val, out, depth + 1, budget)
                out.append("]")
            out.append("]]")
        else:
            out.append('["' + tags[b] + '",[')
            for i, item in _enumerate(v):
                out.append("," if i else "")
                enc(item, out, depth + 1, budget)
            out.append("]]")

    def encode(v: Any) -> str:
        out: list[str] = []
        enc(v, out, 0, [max_items])
        return _join("", out)

    def problem(v: Any) -> str | None:
        """Why a candidate function's return value is refused (None when it is not)."""
        if v is None:
            return None  # NoneType defines __bool__ itself, and cannot be subclassed
        t = _type(v)
        for b in bases:
            if t is b:
                return None
        for k in _mro(t):
            if k is object or [b for b in bases if k is b]:
                break
            for name in return_dunders:
                if name in _vars(k):
                    return f"a value of type {_name(t)}, whose class {_name(k)} overrides {name}"
        return None

    return encode, problem


def _run(cfg: dict[str, Any], channel: int) -> None:
    write, encode_str, hexlify, fmt_exc = os.write, str.encode, bytes.hex, traceback.format_exception_only
    _type, _exec, _compile, _callable = type, exec, compile, callable
    _int, _enumerate, _getattr, _dict, _str = int, enumerate, getattr, dict, str
    encode, problem = _make_encoder()
    current = [-2]

    def emit(line: str) -> None:
        data = encode_str(line + "\n", "ascii")
        while data:
            data = data[write(channel, data):]

    def why(exc: BaseException) -> str:
        try:
            text = "".join(fmt_exc(_type(exc), exc)).strip()
        except BaseException:
            text = "<an exception that cannot be printed>"
        return hexlify(encode_str(text[-400:], "utf-8", "surrogatepass"))

    def check(site: int, *values: Any) -> None:
        try:
            body = '"v":[{}]'.format(",".join([encode(v) for v in values]))
        except _Reject as exc:
            body = '"x":"{}"'.format(hexlify(encode_str(f"the value is {exc.args[0]}", "utf-8", "surrogatepass")))
        except BaseException as exc:
            body = f'"x":"{why(exc)}"'
        emit('{"k":"site","t":' + _str(current[0]) + ',"s":' + _str(_int(site)) + "," + body + "}")

    def end(t: int, exc: BaseException | None) -> None:
        tail = '"ok":1}' if exc is None else '"ok":0,"x":"' + why(exc) + '"}'
        emit('{"k":"end","t":' + _str(t) + "," + tail)

    def guard(fn: Any) -> Any:
        if _type(fn) is not types.FunctionType:
            return fn

        def guarded(*args: Any, **kwargs: Any) -> Any:
            value = fn(*args, **kwargs)
            bad = problem(value)
            if bad is not None:
                raise TypeError("the candidate's {} returned {}".format(_getattr(fn, "__name__", "function"), bad))
            return value

        guarded.__name__ = fn.__name__
        guarded.__doc__ = fn.__doc__
        return guarded

    snapshot = _dict(vars(builtins))
    candidate, tests_src = cfg["candidate"], cfg["tests"]
    emit('{"k":"start"}')
    ns: dict[str, Any] = {"__name__": "candidate", "__builtins__": builtins}
    try:
        _exec(_compile(candidate, "candidate.py", "exec"), ns)
    except BaseException as exc:
        end(-2, exc)
        emit('{"k":"done"}')
        return
    end(-2, None)
    tns = {k: guard(v) for k, v in ns.items()}
    tns.update(__name__="tests", __builtins__=_dict(snapshot), __gps_check__=check)
    current[0] = -1
    try:
        _exec(_compile(tests_src, "tests.py", "exec"), tns)
    except BaseException as exc:
        end(-1, exc)
        emit('{"k":"done"}')
        return
    end(-1, None)
    for t, name in _enumerate(cfg["names"]):
        current[0] = t
        try:
            fn = tns.get(name)
            if not _callable(fn):
                raise NameError(f"the tests define no function {name!r}")
            if name == "check" and cfg["entry"] is not None:
                if cfg["entry"] not in ns:
                    raise NameError("the candidate defines no {!r}".format(cfg["entry"]))
                fn(tns[cfg["entry"]])
            else:
                fn()
        except BaseException as exc:
            end(t, exc)
        else:
            end(t, None)
    emit('{"k":"done"}')


if __name__ == "__main__":
    with open("harness.json", encoding="utf-8") as _fh:
        _cfg = json.load(_fh)
    _fd = globals().get("SANDBOX_CHANNEL_FD", -1)
    del _fh
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
    _run(_cfg, _fd)

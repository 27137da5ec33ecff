"""A few-shot arithmetic task set, generated from a seed, sized for a 135M model on a CPU.

Each problem is a raw (no chat template) few-shot prompt: ``k`` worked examples of the same kind, one per
line as ``a + b = c``, then the question ``a + b =``; the answer is a short integer, so ``max_new_tokens``
of 6–8 is enough and power sampling stays affordable. (A ``Q: … = ?`` / ``A: …`` layout was measured
too: the embedded model scored far lower with it — see benchmarks/README.md.) Kinds:

- ``add2``: two-digit + two-digit addition;
- ``add12``: one-digit + two-digit addition;
- ``add20``: addition of two numbers from 1 to 20;
- ``sub2``: two-digit subtraction with a non-negative result.

Which kind the quality benchmark uses by default, and why, is measured and written down in
benchmarks/README.md (the embedded model's standard sampling must land between 10% and 80%).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from genesis_ps.errors import ConfigError

__all__ = ["KINDS", "Problem", "extract_integer", "make_problems"]

KINDS = ("add2", "add12", "sub2", "add20")


@dataclass(frozen=True)
class Problem:
    id: str
    question: str
    answer: str
    prompt: str
    """The raw few-shot prompt, ending right where the answer goes."""


def _pair(rng: np.random.Generator, kind: str) -> tuple[str, int]:
    if kind == "add2":
        a, b = (int(x) for x in rng.integers(10, 100, size=2))
        return f"{a} + {b}", a + b
    if kind == "add20":
        a, b = (int(x) for x in rng.integers(1, 21, size=2))
        return f"{a} + {b}", a + b
    if kind == "add12":
        a, b = int(rng.integers(1, 10)), int(rng.integers(10, 100))
        if rng.random() < 0.5:
            a, b = b, a
        return f"{a} + {b}", a + b
    a, b = sorted((int(x) for x in rng.integers(10, 100, size=2)), reverse=True)
    return f"{a} - {b}", a - b


def make_problems(n: int, *, seed: int = 0, kind: str = "add2", shots: int = 3) -> list[Problem]:
    """``n`` problems of ``kind``, each with ``shots`` worked examples drawn from the same generator.
    The same (n, seed, kind, shots) always gives the same problems."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError("n", f"must be an integer >= 1, got {n!r}")
    if kind not in KINDS:
        raise ConfigError("kind", f"unknown arithmetic kind {kind!r}; choose one of {', '.join(KINDS)}")
    if isinstance(shots, bool) or not isinstance(shots, int) or not 0 <= shots <= 8:
        raise ConfigError("shots", f"must be an integer in [0, 8], got {shots!r}")
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    out = []
    for i in range(n):
        lines = []
        for _ in range(shots):
            q, a = _pair(rng, kind)
            lines.append(f"{q} = {a}\n")
        q, a = _pair(rng, kind)
        prompt = "".join(lines) + f"{q} ="
        out.append(Problem(id=f"{kind}-{seed}-{i}", question=q, answer=str(a), prompt=prompt))
    return out


_INT = re.compile(r"-?\d+")


def extract_integer(text: str) -> str | None:
    """The first integer of the answer's first line (``" 68\\n12 + 3 = 15"`` → ``"68"``), else None."""
    first = text.strip().split("\n", 1)[0] if text.strip() else ""
    m = _INT.search(first.replace(",", ""))
    return str(int(m.group())) if m else None


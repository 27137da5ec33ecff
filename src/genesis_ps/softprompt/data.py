"""Question–answer pairs: a JSONL file of ``{question, answer}``, built-in arithmetic, and MATH500.

A JSONL line may also carry ``question_paraphrases`` / ``answer_paraphrases`` (lists of strings) for the
paraphrase regulariser; :func:`attach_paraphrases` merges them from a separate file instead. Every problem
with a file is a :class:`~genesis_ps.errors.ConfigError` naming the flag and the line.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

from genesis_ps.errors import ConfigError

__all__ = [
    "BUILTIN",
    "QAPair",
    "arith_pairs",
    "attach_paraphrases",
    "find_math500",
    "load_pairs",
    "math500_pairs",
    "read_jsonl_pairs",
]

BUILTIN = ("arith", "math500")


@dataclass(frozen=True)
class QAPair:
    """One pair; ``source`` says where it came from (``file:LINE``, ``arith``, ``math500:ID``)."""

    id: str
    question: str
    answer: str
    source: str = ""
    question_paraphrases: tuple[str, ...] = field(default_factory=tuple)
    answer_paraphrases: tuple[str, ...] = field(default_factory=tuple)


def _strings(value: object, what: str, flag: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(s, str) and s.strip() for s in value):
        raise ConfigError(flag, f"{where}: {what} must be a list of non-empty strings")
    return tuple(value)


def _records(path: Path, flag: str) -> list[tuple[int, dict[str, object]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(flag, f"cannot read {path}: {e}") from e
    out = []
    for no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(flag, f"{path}:{no}: not valid JSON ({e.msg})") from e
        if not isinstance(rec, dict):
            raise ConfigError(flag, f"{path}:{no}: each line must be a JSON object")
        out.append((no, rec))
    if not out:
        raise ConfigError(flag, f"{path} holds no pairs (empty file)")
    return out


def read_jsonl_pairs(path: str | Path, *, flag: str = "--pairs") -> list[QAPair]:
    """Every ``{question, answer}`` line of ``path`` (blank lines skipped)."""
    p = Path(path)
    pairs = []
    for no, rec in _records(p, flag):
        q, a = rec.get("question"), rec.get("answer")
        if not isinstance(q, str) or not q.strip() or not isinstance(a, str) or not a.strip():
            raise ConfigError(flag, f"{p}:{no}: needs non-empty string fields 'question' and 'answer'")
        where = f"{p}:{no}"
        pairs.append(
            QAPair(
                id=str(rec.get("id", f"line{no}")),
                question=q,
                answer=a,
                source=where,
                question_paraphrases=_strings(rec.get("question_paraphrases"), "question_paraphrases", flag, where),
                answer_paraphrases=_strings(rec.get("answer_paraphrases"), "answer_paraphrases", flag, where),
            )
        )
    return pairs


def attach_paraphrases(pairs: list[QAPair], path: str | Path) -> list[QAPair]:
    """Merge paraphrases from a JSONL file of ``{question, question_paraphrases?, answer_paraphrases?}``
    lines, matched to pairs by the exact question text."""
    p = Path(path)
    table: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for no, rec in _records(p, "--paraphrases"):
        q = rec.get("question")
        if not isinstance(q, str) or not q.strip():
            raise ConfigError("--paraphrases", f"{p}:{no}: needs a non-empty string field 'question'")
        where = f"{p}:{no}"
        qp = _strings(rec.get("question_paraphrases"), "question_paraphrases", "--paraphrases", where)
        ap = _strings(rec.get("answer_paraphrases"), "answer_paraphrases", "--paraphrases", where)
        table[q] = (qp, ap)
    out = []
    for pair in pairs:
        qp, ap = table.get(pair.question, ((), ()))
        out.append(replace(pair, question_paraphrases=pair.question_paraphrases + qp,
                           answer_paraphrases=pair.answer_paraphrases + ap))
    return out


def arith_pairs(n: int, *, seed: int = 0) -> list[QAPair]:
    """``n`` distinct generated pairs ``"a+b=?" -> "a+b"`` with ``a, b`` in 0..99 (same seed, same pairs)."""
    rng = random.Random(seed)
    seen: set[tuple[int, int]] = set()
    out: list[QAPair] = []
    while len(out) < n:
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        if (a, b) in seen:
            continue
        seen.add((a, b))
        out.append(QAPair(id=f"arith-{len(out)}", question=f"{a}+{b}=?", answer=str(a + b), source="arith"))
    return out


def find_math500(start: Path | None = None) -> Path | None:
    """``shared/benchmarks/math500/MATH500.json`` beside the project root: tried in ``start`` (default the
    working directory) and each of its parents, as the MATH500 benchmark does for ``../shared``."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        p = d / "shared" / "benchmarks" / "math500" / "MATH500.json"
        if p.is_file():
            return p
    return None


def math500_pairs(path: str | Path | None = None) -> list[QAPair]:
    """Every MATH500 problem as a (prompt, answer) pair. Selection (``--n``, shortest first) is the
    runner's, once a tokenizer can measure lengths."""
    from genesis_ps.bench.math500 import load_math500

    p = Path(path) if path is not None else find_math500()
    if p is None:
        raise ConfigError("--math500", "MATH500.json not found in ../shared/benchmarks/math500; pass --math500 PATH")
    problems, _skipped = load_math500(p)
    return [QAPair(id=f"math500-{pr.id}", question=pr.question, answer=pr.answer, source=f"math500:{pr.id}")
            for pr in problems]


def load_pairs(spec: str, *, n: int, seed: int = 0, math500: str | Path | None = None) -> list[QAPair]:
    """Pairs for ``--pairs spec``: ``arith`` (``n`` generated), ``math500`` (all; the runner selects ``n``)
    or a JSONL path (its first ``n`` lines)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError("--n", f"must be an integer >= 1, got {n!r}")
    if spec == "arith":
        return arith_pairs(n, seed=seed)
    if spec == "math500":
        return math500_pairs(math500)
    p = Path(spec)
    if not p.is_file():
        raise ConfigError("--pairs", f"{spec!r} is neither a file nor one of {', '.join(BUILTIN)}")
    return read_jsonl_pairs(p)[:n]

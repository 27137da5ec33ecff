"""Tokenising pairs, choosing which to run, and checking they fit the model's context — before any
optimisation starts."""

from __future__ import annotations

from dataclasses import dataclass

from genesis_ps.errors import ConfigError
from genesis_ps.softprompt.data import QAPair
from genesis_ps.softprompt.lm import FrozenLM

__all__ = ["SELECTIONS", "Prepared", "prepare_pairs"]

SELECTIONS = ("first", "shortest")


@dataclass(frozen=True)
class Prepared:
    """Pairs with their token ids: targets end with EOS (when asked); ``q_prompt`` is the question
    without it, the full-context baseline's prompt; paraphrases are targets too."""

    pairs: list[QAPair]
    q: list[tuple[int, ...]]
    a: list[tuple[int, ...]]
    q_prompt: list[tuple[int, ...]]
    q_para: list[list[tuple[int, ...]]]
    a_para: list[list[tuple[int, ...]]]


def prepare_pairs(
    lm: FrozenLM, pairs: list[QAPair], *, n: int, max_k: int, eos: bool = True, select: str = "first"
) -> Prepared:
    """Tokenise ``pairs``, keep ``n`` of them (the first, or the ``shortest`` by question+answer tokens,
    ties by position), and refuse any pair whose longest sequence — ``max_k + 1`` prompt vectors plus the
    target, or question plus answer for the full-context baseline — exceeds the model's context."""
    if select not in SELECTIONS:
        raise ConfigError("--select", f"unknown selection {select!r}; choose one of {', '.join(SELECTIONS)}")
    if not pairs:
        raise ConfigError("--pairs", "no pairs to run")
    rows = []
    for i, p in enumerate(pairs):
        q, a = lm.encode(p.question, eos=eos), lm.encode(p.answer, eos=eos)
        qp = [lm.encode(s, eos=eos) for s in p.question_paraphrases]
        ap = [lm.encode(s, eos=eos) for s in p.answer_paraphrases]
        if not q or not a:
            raise ConfigError("--pairs", f"pair {p.id} ({p.source}): question or answer encodes to no token")
        rows.append((len(q) + len(a), i, p, q, a, lm.encode(p.question), qp, ap))
    if select == "shortest":
        rows.sort(key=lambda r: (r[0], r[1]))
    rows = rows[:n]
    ctx = lm.context
    if ctx is not None:
        for _, _, p, q, a, q0, qp, ap in rows:
            longest = max(len(t) for t in (q, a, *qp, *ap))
            need = max(max_k + 1 + longest, len(q0) + len(a))
            if need > ctx:
                raise ConfigError(
                    "--pairs",
                    f"pair {p.id} ({p.source}) needs {need} positions (K={max_k} + 1 mode vector + its longest "
                    f"target, or question + answer), more than the model's context of {ctx}",
                )
    return Prepared(
        pairs=[r[2] for r in rows], q=[r[3] for r in rows], a=[r[4] for r in rows], q_prompt=[r[5] for r in rows],
        q_para=[r[6] for r in rows], a_para=[r[7] for r in rows],
    )

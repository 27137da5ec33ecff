"""Compute-matched baselines for the quality and decomposition benchmarks.

Power sampling spends several times the tokens of one sample. The fair question is whether it beats
*other ways of spending the same tokens* on the same items. Two baselines, each matched per item (and
seed) to one power method's **measured** tokens:

* ``bon`` — best-of-N: N independent samples at temperature ``baseline_temperature`` (1 by default),
  the one with the highest mean log-likelihood per token under the base model is returned;
* ``self_consistency`` — the same N samples, the answer given most often is returned (Wang et al. 2022;
  an answer extractor reads each sample; ties, and samples without an answer, go to the higher mean
  log-likelihood). Where no sample has an answer it falls back to best-of-N and says so.

N is set by the samples themselves: samples are drawn one after another into a pool until their tokens
reach the power method's tokens on that item; N is the smallest prefix of the pool whose tokens come
closest to it (at least one). Every baseline matched to every power method reuses the same pool, so the
comparisons are paired sample for sample. Names in reports: ``bon[power-mh]``, ``self_consistency[power-mh]``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from genesis_ps.sampling.result import GenerationResult

__all__ = ["BASELINES", "MatchedPick", "Pool", "baseline_name", "best_of_n", "matched_n", "self_consistency"]

BASELINES = ("bon", "self_consistency")


def baseline_name(kind: str, power_method: str) -> str:
    return f"{kind}[{power_method}]"


def mean_loglik(r: GenerationResult) -> float:
    if r.logp_sum is None or not r.tokens_returned:
        return float("-inf")
    return r.logp_sum / r.tokens_returned


def matched_n(tokens: Sequence[int], target: float) -> int:
    """The N whose first-N token total is closest to ``target`` (ties to the smaller N; at least 1)."""
    best, best_gap, total = 1, float("inf"), 0
    for n, t in enumerate(tokens, start=1):
        total += t
        gap = abs(total - target)
        if gap < best_gap:
            best, best_gap = n, gap
    return best


def best_of_n(samples: Sequence[GenerationResult]) -> int:
    """Index of the sample with the highest mean log-likelihood per token (first on ties)."""
    scores = [mean_loglik(r) for r in samples]
    return max(range(len(samples)), key=lambda i: (scores[i], -i))


def self_consistency(samples: Sequence[GenerationResult], extract: Callable[[str], Any]) -> tuple[int, int]:
    """(index of the returned sample, votes for its answer): majority answer, ties and the sample carrying
    it chosen by mean log-likelihood; (best-of-N index, 0) when no sample has an answer."""
    answers = [extract(r.text) for r in samples]
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return best_of_n(samples), 0
    top = max(counts.values())
    tied = {a for a, c in counts.items() if c == top}
    idx = [i for i, a in enumerate(answers) if a in tied]
    i = max(idx, key=lambda j: (mean_loglik(samples[j]), -j))
    return i, top


@dataclass
class MatchedPick:
    """One baseline's answer for one item: the returned sample, what it cost and how it was matched."""

    result: GenerationResult
    n: int
    tokens_generated: int
    target_tokens: float
    votes: int | None = None


class Pool:
    """Samples for one item and seed, drawn lazily by ``draw(j)`` (the j-th sample), shared by every
    baseline matched to every power method."""

    def __init__(self, draw: Callable[[int], Awaitable[GenerationResult]]) -> None:
        self._draw = draw
        self.samples: list[GenerationResult] = []

    async def upto(self, target: float) -> None:
        while sum(r.tokens_generated for r in self.samples) < target:
            self.samples.append(await self._draw(len(self.samples)))

    async def pick(self, kind: str, target: float, extract: Callable[[str], Any] | None = None) -> MatchedPick:
        """The ``kind`` baseline (``bon`` / ``self_consistency``) at the N matching ``target`` tokens."""
        await self.upto(target)
        n = matched_n([r.tokens_generated for r in self.samples], target)
        used = self.samples[:n]
        votes: int | None = None
        if kind == "bon":
            i = best_of_n(used)
        else:
            if extract is None:
                raise ValueError("self_consistency needs an answer extractor")
            i, votes = self_consistency(used, extract)
        return MatchedPick(used[i], n, sum(r.tokens_generated for r in used), target, votes)

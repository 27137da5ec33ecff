"""Exact distributions of a :class:`~genesis_ps.testing.toys.ToyLM`, and distances between distributions.

A sequence generated with length limit ``T`` ends with EOS (EOS included, at most ``T`` tokens) or is cut
at exactly ``T`` tokens; its probability is the product of its next-token probabilities. From that list
this module gives the exact power distribution p^α (optionally tilted by ``exp(λ·reward)``), the exact
distribution of token-level sampling at temperature τ (what low-temperature decoding draws), total-
variation distances, and the noise floor: the expected TV of ``n`` i.i.d. exact draws.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np

from genesis_ps.sampling.target import Target
from genesis_ps.testing.toys import ToyLM

__all__ = [
    "Dist",
    "empirical",
    "enumerate_sequences",
    "noise_floor",
    "power_distribution",
    "target_distribution",
    "temperature_distribution",
    "tv_distance",
]

Dist = dict[tuple[int, ...], float]
"""A distribution over token sequences (probabilities summing to 1)."""


def _walk(toy: ToyLM, max_new_tokens: int, log_table: np.ndarray) -> Dist:
    """Every sequence within the limit with its log-probability under ``log_table`` (per node, token)."""
    out: Dist = {}
    frontier: list[tuple[tuple[int, ...], int, float]] = [((), 0, 0.0)]
    while frontier:
        seq, node, lp = frontier.pop()
        for tok in range(toy.eos + 1):
            lt = float(log_table[node, tok])
            if lt == -np.inf:
                continue
            s = (*seq, tok)
            if tok == toy.eos or len(s) == max_new_tokens:
                out[s] = lp + lt
            else:
                frontier.append((s, int(toy.child[node, tok]), lp + lt))
    return out


def enumerate_sequences(toy: ToyLM, max_new_tokens: int) -> Dist:
    """Every possible sequence under the limit, mapped to its exact log p (temperature 1)."""
    return _walk(toy, max_new_tokens, toy.logp_table)


def _normalise(logw: Mapping[tuple[int, ...], float]) -> Dist:
    keys = list(logw)
    w = np.array([logw[k] for k in keys])
    p = np.exp(w - w.max())
    p /= p.sum()
    return dict(zip(keys, p.tolist(), strict=True))


def power_distribution(toy: ToyLM, max_new_tokens: int, alpha: float) -> Dist:
    """The exact p^α distribution, normalised over all sequences within the limit."""
    return _normalise({s: alpha * lp for s, lp in enumerate_sequences(toy, max_new_tokens).items()})


def target_distribution(toy: ToyLM, max_new_tokens: int, target: Target) -> Dist:
    """The exact target: p^α · exp(λ·reward(text)) normalised (equals p^α without a tilt)."""
    return _normalise(
        {s: target.log_density(lp, toy.decode(s)) for s, lp in enumerate_sequences(toy, max_new_tokens).items()}
    )


def temperature_distribution(toy: ToyLM, max_new_tokens: int, temperature: float) -> Dist:
    """The exact distribution of token-by-token sampling at ``temperature`` (τ = 1/α is the classic
    low-temperature decoding that power sampling is compared with)."""
    logq, _ = toy.tempered(temperature)
    return {s: float(np.exp(lq)) for s, lq in _walk(toy, max_new_tokens, logq).items()}


def empirical(samples: Iterable[Iterable[int]]) -> Dist:
    """The empirical distribution of sampled sequences."""
    c = Counter(tuple(s) for s in samples)
    n = sum(c.values())
    if n == 0:
        raise ValueError("no samples")
    return {k: v / n for k, v in c.items()}


def tv_distance(p: Mapping[tuple[int, ...], float], q: Mapping[tuple[int, ...], float]) -> float:
    """Total variation: half the L1 distance, over the union of supports."""
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def noise_floor(dist: Mapping[tuple[int, ...], float], n: int, rng: np.random.Generator, reps: int = 200) -> float:
    """Expected TV between ``dist`` and the empirical distribution of ``n`` i.i.d. exact draws from it,
    estimated from ``reps`` simulated samples."""
    p = np.array(list(dist.values()))
    p = p / p.sum()
    counts = rng.multinomial(n, p, size=reps)
    return float(np.mean(0.5 * np.abs(counts / n - p).sum(axis=1)))

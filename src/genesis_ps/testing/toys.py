"""Toy language models whose sequence distribution — and so p^α — can be enumerated exactly.

A :class:`ToyLM` is a real :class:`~genesis_ps.sampling.TokenModel`: a small vocabulary of letters plus
EOS, and a next-token distribution given as a function of the prefix (tabulated once, for every prefix up
to ``max_len`` tokens). After ``max_len`` letters it emits EOS with probability 1. ``logp`` (temperature 1)
and ``logq`` (the requested temperature) are exact, and sampling is vectorised over all prefixes of a
batched ``extend`` call, so tests and the exactness benchmark can draw tens of thousands of sequences.

Each segment also carries the exact next-token entropy at every sampled position, and
:meth:`ToyLM.extend_until` (stop before a high-entropy position, report its likeliest tokens) makes a toy a
:class:`~genesis_ps.sampling.protocol.LookaheadModel` for token-level power sampling.

The prompt is ignored: a toy is an unconditional model. Four toys ship here (:func:`sharp_toy`,
:func:`eos_toy`, :func:`random_toy`, :func:`trap_toy`); see :mod:`genesis_ps.testing.exact` for the
enumeration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import numpy as np

from genesis_ps.sampling.protocol import Capabilities, Completion, Prompt, Segment

__all__ = ["TOYS", "ToyLM", "eos_toy", "random_toy", "sharp_toy", "trap_toy"]

NextProbs = Callable[[tuple[int, ...]], Sequence[float]]
"""prefix (letter ids) -> probabilities of the letters and, last, EOS (must sum to 1)."""


class ToyLM:
    """An exactly-known token model over ``letters`` + EOS (id ``len(letters)``).

    ``latency`` (seconds) makes each ``extend`` call yield to the event loop for that long, so tests can
    observe concurrency; ``calls``, ``in_flight`` and ``max_in_flight`` record it.
    """

    provider = "toy"

    def __init__(
        self,
        name: str,
        letters: str,
        next_probs: NextProbs,
        *,
        max_len: int,
        max_batch: int = 1 << 16,
        latency: float = 0.0,
    ) -> None:
        if not letters or len(set(letters)) != len(letters):
            raise ValueError("letters must be distinct characters")
        self.model = name
        self.letters = letters
        self.eos = len(letters)
        self.max_len = max_len
        self.latency = latency
        self.capabilities = Capabilities(
            logprobs="exact",
            prefix_continuation=True,
            max_batch=max_batch,
            eos_token_id=self.eos,
            context_length=None,
            notes="toy model with an exactly enumerable distribution; the prompt is ignored",
            entropy="exact",
            lookahead=True,
            exclude_first=True,
        )
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._build(next_probs)
        self._tempered: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def _build(self, next_probs: NextProbs) -> None:
        """Tabulate the trie of prefixes: node id per prefix, log-probs and child node per token."""
        v = self.eos + 1
        prefixes: list[tuple[int, ...]] = [()]
        rows: list[np.ndarray] = []
        i = 0
        while i < len(prefixes):
            pre = prefixes[i]
            if len(pre) >= self.max_len:
                row = np.zeros(v)
                row[self.eos] = 1.0
            else:
                row = np.asarray(next_probs(pre), dtype=float)
                if row.shape != (v,) or np.any(row < 0) or not np.isclose(row.sum(), 1.0):
                    raise ValueError(f"next_probs{pre!r} must be {v} probabilities summing to 1")
                row = row / row.sum()
                prefixes.extend((*pre, tok) for tok in range(self.eos) if row[tok] > 0)
            rows.append(row)
            i += 1
        self.prefixes = prefixes
        self.node = {p: n for n, p in enumerate(prefixes)}
        probs = np.stack(rows)
        with np.errstate(divide="ignore"):
            self.logp_table = np.log(probs)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.entropy_table = -np.where(probs > 0, probs * self.logp_table, 0.0).sum(axis=1)
        self.child = np.full((len(prefixes), v), -1, dtype=np.int64)
        for n, p in enumerate(prefixes):
            if len(p) >= 1:
                self.child[self.node[p[:-1]], p[-1]] = n

    def tempered(self, temperature: float) -> tuple[np.ndarray, np.ndarray]:
        """(log q table, cumulative q table) of token-level sampling at ``temperature``."""
        key = float(temperature)
        if not key > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if key not in self._tempered:
            with np.errstate(invalid="ignore"):
                z = self.logp_table / key
            z = z - z.max(axis=1, keepdims=True)
            logq = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            cdf = np.cumsum(np.exp(logq), axis=1)
            cdf[:, -1] = 1.0
            self._tempered[key] = (logq, cdf)
        return self._tempered[key]

    def node_of(self, prefix: Sequence[int]) -> int:
        try:
            n = self.node.get(prefix) if isinstance(prefix, tuple) else None  # fast path
            return n if n is not None else self.node[tuple(int(t) for t in prefix)]
        except KeyError:
            raise ValueError(f"prefix {tuple(prefix)!r} has probability 0 or contains EOS") from None

    def _sample(
        self,
        prefixes: Sequence[Sequence[int]],
        max_new: np.ndarray,
        temperature: float,
        seed: int | None,
        stop_entropy: float | None = None,
        top_n: int = 0,
        exclude_first: Sequence[int | None] | None = None,
    ) -> list[Segment]:
        n = len(prefixes)
        nodes = np.array([self.node_of(p) for p in prefixes], dtype=np.int64)
        logq_t, cdf_t = self.tempered(temperature)
        rng = np.random.default_rng(seed)
        width = int(max_new.max()) if n else 0
        toks = np.full((n, width), -1, dtype=np.int64)
        lp = np.zeros((n, width))
        lq = np.zeros((n, width))
        ent = np.zeros((n, width))
        length = np.zeros(n, dtype=np.int64)
        eos = np.zeros(n, dtype=bool)
        stop_node = np.full(n, -1, dtype=np.int64)
        active = np.nonzero(max_new > 0)[0]
        for step in range(width):
            if active.size == 0:
                break
            cur = nodes[active]
            if stop_entropy is not None:
                halt = self.entropy_table[cur] >= stop_entropy
                stop_node[active[halt]] = cur[halt]
                active, cur = active[~halt], cur[~halt]
                if active.size == 0:
                    break
            u = rng.random(active.size)
            cdf = cdf_t[cur]
            if step == 0 and exclude_first is not None:
                cdf = _without_first(cdf, logq_t[cur], [exclude_first[int(i)] for i in active])
            tok = (cdf <= u[:, None]).sum(axis=1)
            toks[active, step] = tok
            lp[active, step] = self.logp_table[cur, tok]
            lq[active, step] = logq_t[cur, tok]
            ent[active, step] = self.entropy_table[cur]
            length[active] = step + 1
            hit = tok == self.eos
            eos[active[hit]] = True
            nodes[active] = self.child[cur, tok]
            active = active[~hit & (step + 1 < max_new[active])]
        tl, pl, ql, el = toks.tolist(), lp.tolist(), lq.tolist(), ent.tolist()
        out = []
        for i, (k, e) in enumerate(zip(length.tolist(), eos.tolist(), strict=True)):
            node = int(stop_node[i])
            top: tuple[tuple[int, float], ...] = ()
            if node >= 0:
                row = self.logp_table[node]
                order = [int(t) for t in np.argsort(-row, kind="stable")[:top_n] if row[t] > -np.inf]
                top = tuple((t, float(row[t])) for t in order)
            out.append(Segment(
                tokens=tuple(tl[i][:k]), logp=tuple(pl[i][:k]), logq=tuple(ql[i][:k]), eos=e,
                entropy=tuple(el[i][:k]), next_top=top,
                next_entropy=float(self.entropy_table[node]) if node >= 0 else None,
            ))
        return out

    async def extend(
        self,
        prompt: Prompt,
        prefixes: Sequence[Sequence[int]],
        max_new_tokens: int | Sequence[int],
        temperature: float,
        *,
        seed: int | None = None,
        exclude_first: Sequence[int | None] | None = None,
    ) -> list[Segment]:
        """Sample one continuation per prefix at ``temperature`` (> 0), vectorised over prefixes; a row's
        first token is never its ``exclude_first`` entry (see ``Capabilities.exclude_first``)."""
        if not temperature > 0:
            raise ValueError("extend needs temperature > 0")
        max_new = np.broadcast_to(np.asarray(max_new_tokens, dtype=np.int64), (len(prefixes),))
        if len(prefixes) > self.capabilities.max_batch:
            raise ValueError(f"at most {self.capabilities.max_batch} prefixes per call")
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            if exclude_first is not None and len(exclude_first) != len(prefixes):
                raise ValueError("exclude_first needs one entry per prefix")
            return self._sample(prefixes, max_new, temperature, seed, exclude_first=exclude_first)
        finally:
            self.in_flight -= 1

    async def extend_until(
        self,
        prompt: Prompt,
        prefixes: Sequence[Sequence[int]],
        max_new_tokens: int | Sequence[int],
        temperature: float,
        *,
        stop_entropy: float,
        top_n: int,
        seed: int | None = None,
    ) -> list[Segment]:
        """:meth:`extend` that stops before a position of entropy ``>= stop_entropy`` and reports its
        ``top_n`` likeliest tokens (see :class:`~genesis_ps.sampling.protocol.LookaheadModel`)."""
        if not temperature > 0:
            raise ValueError("extend_until needs temperature > 0")
        max_new = np.broadcast_to(np.asarray(max_new_tokens, dtype=np.int64), (len(prefixes),))
        self.calls += 1
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        return self._sample(prefixes, max_new, temperature, seed, float(stop_entropy), int(top_n))

    async def generate(
        self, prompt: Prompt, *, max_new_tokens: int, temperature: float = 1.0, seed: int | None = None
    ) -> Completion:
        """Single-shot sampling; temperature 0 is greedy."""
        if temperature == 0:
            node, toks, lps = 0, [], []
            for _ in range(max_new_tokens):
                tok = int(np.argmax(self.logp_table[node]))
                toks.append(tok)
                lps.append(float(self.logp_table[node, tok]))
                if tok == self.eos:
                    break
                node = int(self.child[node, tok])
            eos = bool(toks) and toks[-1] == self.eos
            return Completion(
                text=self.decode(toks), tokens_generated=len(toks), logp=tuple(lps),
                finish_reason="stop" if eos else "length",
            )
        seg = (await self.extend(prompt, [()], max_new_tokens, temperature, seed=seed))[0]
        return Completion(
            text=self.decode(seg.tokens), tokens_generated=seg.n_tokens, logp=seg.logp,
            finish_reason="stop" if seg.eos else "length",
        )

    def decode(self, tokens: Sequence[int]) -> str:
        return "".join(self.letters[t] for t in tokens if t != self.eos)

    def prompt_length(self, prompt: Prompt) -> int | None:
        """None: the toy ignores its prompt, so it has no length in tokens."""
        return None


def _without_first(cdf: np.ndarray, logq: np.ndarray, exclude: Sequence[int | None]) -> np.ndarray:
    """Rows' cumulative proposal with each row's excluded token (if any) taken out and renormalised."""
    q = np.exp(logq)
    rows = [r for r, e in enumerate(exclude) if e is not None]
    if not rows:
        return cdf
    cols = [int(exclude[r]) for r in rows]  # type: ignore[arg-type]
    q[rows, cols] = 0.0
    total = q.sum(axis=1, keepdims=True)
    if np.any(total[rows] <= 0):
        raise ValueError("exclude_first removed the only token the proposal can draw")
    out = np.cumsum(q / total, axis=1)
    out[:, -1] = 1.0
    keep = np.ones(len(exclude), dtype=bool)
    keep[rows] = False
    out[keep] = cdf[keep]
    return out


def sharp_toy(**kw: object) -> ToyLM:
    """Shaped like Karan & Du's Example 1: the first token ``A`` (0.6) is likelier than ``B`` (0.4), but
    A's continuations are spread over four letters while B has one near-certain continuation. Token-level
    low-temperature sampling prefers A; p^α prefers B. Every sequence is two letters then EOS."""

    def probs(pre: tuple[int, ...]) -> list[float]:
        if len(pre) == 0:
            return [0.6, 0.4, 0.0, 0.0, 0.0]
        if len(pre) == 1:
            return [0.25, 0.25, 0.25, 0.25, 0.0] if pre[0] == 0 else [0.02, 0.02, 0.94, 0.02, 0.0]
        return [0.0, 0.0, 0.0, 0.0, 1.0]

    return ToyLM("sharp", "ABCD", probs, max_len=2, **kw)  # type: ignore[arg-type]


def eos_toy(**kw: object) -> ToyLM:
    """EOS ends sequences at varying lengths (1 to 4 letters, then EOS): after ``a`` the model likes to
    stop, after ``b`` it likes to go on, so short and long sequences compete under p^α. This is the toy
    on which the MH length correction and the stage limit matter."""

    def probs(pre: tuple[int, ...]) -> list[float]:
        if len(pre) == 0:
            return [0.55, 0.45, 0.0]
        if pre[-1] == 0:
            return [0.2, 0.2, 0.6]
        return [0.3, 0.55, 0.15]

    return ToyLM("eos", "ab", probs, max_len=4, **kw)  # type: ignore[arg-type]


def random_toy(
    seed: int = 0, *, letters: str = "xyz", max_len: int = 3, concentration: float = 0.6, **kw: object
) -> ToyLM:
    """A random next-token table drawn from a Dirichlet per prefix (EOS impossible on the empty prefix)."""
    rng = np.random.default_rng(seed)
    v = len(letters) + 1
    table: dict[tuple[int, ...], list[float]] = {}

    def probs(pre: tuple[int, ...]) -> list[float]:
        if pre not in table:
            row = np.maximum(rng.dirichlet(np.full(v, concentration)), 1e-3)
            if not pre:
                row[-1] = 0.0
            table[pre] = (row / row.sum()).tolist()
        return table[pre]

    return ToyLM(f"random{seed}", letters, probs, max_len=max_len, **kw)  # type: ignore[arg-type]


def trap_toy(**kw: object) -> ToyLM:
    """The large-α toy: the likeliest sequences do not start with the likeliest token. ``A`` (0.6) is
    followed by two letters spread evenly over four; ``B`` (0.4) by a near-certain ``C`` (0.9) and then
    ``C`` (0.55) or ``D`` (0.45). Under p^α, ``BCC`` and ``BCD`` take almost all the mass as α grows,
    while token-level proposals at τ = 1/α draw ``B`` first with probability 0.4^{1/τ}/(0.6^{1/τ}+0.4^{1/τ})
    — 0.2% at α = 16 — so a chain proposing at τ = 1/α cannot reach them. Every sequence is three
    letters then EOS."""

    def probs(pre: tuple[int, ...]) -> list[float]:
        if not pre:
            return [0.6, 0.4, 0.0, 0.0, 0.0]
        if pre[0] == 1 and len(pre) == 1:
            return [0.03, 0.03, 0.9, 0.04, 0.0]
        if pre[0] == 1 and pre[1] == 2:
            return [0.0, 0.0, 0.55, 0.45, 0.0]
        return [0.25, 0.25, 0.25, 0.25, 0.0]

    return ToyLM("trap", "ABCD", probs, max_len=3, **kw)  # type: ignore[arg-type]


TOYS: dict[str, Callable[[], ToyLM]] = {
    "sharp": sharp_toy, "eos": eos_toy, "random": random_toy, "trap": trap_toy,
}
"""The toys the exactness benchmark runs, by name."""

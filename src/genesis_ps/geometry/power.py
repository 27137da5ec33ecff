"""Power-sampled completions for the geometry steps, with MH's accepted cuts recorded.

MH: ``n`` independent chains of :func:`genesis_ps.sampling.mh.mh_chains` — the engine behind
``power_sample(method="mh")``, which runs one such chain — stepped in lockstep so each MH step is one
batched ``extend``. SMC: ``n`` separate :func:`genesis_ps.sampling.power_sample` runs (each returns one
particle drawn by weight). Both run on the :class:`~genesis_ps.providers.local.LocalModel` itself; the
hidden states of the returned texts are then read by one teacher-forced forward
(:func:`~genesis_ps.geometry.decode.decode` with ``max_new=0``), since the sampler's decode loop does not
expose them.

Recording the cuts needs no change to the sampler: a thin model wrapper sees every ``extend`` call and a
wrapper of the random generator sees the uniforms of each accept test, so the chains are replayed step
by step with the sampler's own :func:`~genesis_ps.sampling.mh.mh_log_ratio`. The replay must end in the
sampler's final states, token for token; if it ever did not, the run stops with an error.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from genesis_ps.geometry.config import PowerSetting
from genesis_ps.sampling.protocol import Prompt, Segment

__all__ = ["Cut", "PowerRun", "run_power"]


@dataclass(frozen=True)
class Cut:
    """One MH proposal: cut index, whether it was accepted, and where (if anywhere) it changed the text."""

    chain: int
    cut: int
    accepted: bool
    change: int | None
    """First token index where the proposal differs from the state it was proposed from."""
    context: tuple[int, ...] = ()
    """Accepted proposals: the tokens before ``change`` (to tell whether the change survives to the end)."""


@dataclass
class PowerRun:
    """``n`` power-sampled completions of one setting, with what they cost (measured)."""

    setting: PowerSetting
    tokens: list[list[int]]
    tokens_generated: int
    latency_s: float
    acceptance: float | None = None
    cuts: list[Cut] = field(default_factory=list)


@dataclass
class _Chain:
    tokens: tuple[int, ...] = ()
    logp: tuple[float, ...] = ()
    logq: tuple[float, ...] = ()


class _Recorder:
    """Replays ``n`` MH chains from the calls the sampler makes (see the module docstring)."""

    def __init__(self, n: int, alpha: float) -> None:
        self.chains = [_Chain() for _ in range(n)]
        self.alpha = alpha
        self.pending: list[tuple[int, Segment]] | None = None
        self.cuts: list[Cut] = []

    def on_extend(self, prefixes: Sequence[Sequence[int]], segs: Sequence[Segment]) -> None:
        pre = [tuple(int(t) for t in p) for p in prefixes]
        ch = self.chains
        mh_step = len(pre) == len(ch) and all(
            len(p) < len(c.tokens) and c.tokens[: len(p)] == p for p, c in zip(pre, ch, strict=True)
        )
        if mh_step:
            self.pending = [(len(p), s) for p, s in zip(pre, segs, strict=True)]
            return
        i = 0
        for p, s in zip(pre, segs, strict=True):  # growth: the growing chains, in index order
            while i < len(ch) and ch[i].tokens != p:
                i += 1
            if i == len(ch):
                raise RuntimeError("MH replay lost track of a chain (unexpected extend call)")
            c = ch[i]
            ch[i] = _Chain(c.tokens + s.tokens, c.logp + s.logp, c.logq + s.logq)
            i += 1

    def on_random(self, us: np.ndarray) -> None:
        from genesis_ps.sampling.mh import mh_log_ratio

        if self.pending is None:
            return
        for i, ((t, seg), u) in enumerate(zip(self.pending, np.atleast_1d(us).tolist(), strict=True)):
            x = self.chains[i]
            y = _Chain(x.tokens[:t] + seg.tokens, x.logp[:t] + seg.logp, x.logq[:t] + seg.logq)
            lr = mh_log_ratio(self.alpha, x.logp[t:], x.logq[t:], seg.logp, seg.logq,
                              cur_len=len(x.logp), prop_len=len(y.logp))  # fmt: skip
            ok = lr >= 0 or u < math.exp(lr)
            change = next((k for k, (a, b) in enumerate(zip(x.tokens, y.tokens, strict=False)) if a != b), None)
            if change is None and len(x.tokens) != len(y.tokens):
                change = min(len(x.tokens), len(y.tokens))
            ctx = y.tokens[:change] if ok and change is not None else ()
            self.cuts.append(Cut(chain=i, cut=t, accepted=ok, change=change, context=ctx))
            if ok:
                self.chains[i] = y
        self.pending = None


class _RecordingRng:
    """A numpy Generator that reports every ``random()`` draw (the accept uniforms) to the recorder."""

    def __init__(self, rng: np.random.Generator, on_random: Callable[[np.ndarray], None]) -> None:
        self._rng, self._on_random = rng, on_random

    def random(self, *args: Any, **kwargs: Any) -> Any:
        u = self._rng.random(*args, **kwargs)
        self._on_random(np.asarray(u))
        return u

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rng, name)


class _RecordingModel:
    """The wrapped model, as the sampler sees it: every ``extend`` result is shown to the recorder first."""

    def __init__(self, inner: Any, recorder: _Recorder) -> None:
        self._inner, self._rec = inner, recorder
        self.provider, self.model, self.capabilities = inner.provider, inner.model, inner.capabilities

    async def extend(self, prompt: Prompt, prefixes: Sequence[Sequence[int]], max_new_tokens: Any,
                     temperature: float, *, seed: int | None = None) -> list[Segment]:  # fmt: skip
        segs = await self._inner.extend(prompt, prefixes, max_new_tokens, temperature, seed=seed)
        self._rec.on_extend(prefixes, segs)
        return list(segs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def run_power(
    lm: Any, prompt: Prompt, setting: PowerSetting, n: int, *, seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> PowerRun:  # fmt: skip
    """``n`` completions of ``setting`` (see the module docstring); ``progress(done, total)``."""
    from genesis_ps.generation import power_sample
    from genesis_ps.sampling import SamplerParams
    from genesis_ps.sampling.mh import mh_chains
    from genesis_ps.sampling.target import Target

    t0 = time.perf_counter()
    params = SamplerParams(method=setting.method, alpha=setting.alpha, n_mcmc=setting.n_mcmc,
                           block_size=setting.block_size, max_new_tokens=setting.max_new_tokens,
                           n_particles=setting.particles, seed=seed)  # fmt: skip
    if setting.method == "mh":
        rec = _Recorder(n, setting.alpha)
        rng = _RecordingRng(np.random.default_rng(seed), rec.on_random)
        run = await mh_chains(_RecordingModel(lm, rec), prompt, params, n_chains=n, target=Target(alpha=setting.alpha),
                              rng=cast(np.random.Generator, rng), progress=progress)  # fmt: skip
        final = [list(s.tokens) for s in run.final]
        if [list(c.tokens) for c in rec.chains] != final:
            raise RuntimeError("the MH replay does not end in the sampler's final states; cuts not recorded")
        return PowerRun(setting, final, run.meter.tokens_generated, time.perf_counter() - t0,
                        acceptance=run.accepted / run.proposals if run.proposals else None, cuts=rec.cuts)  # fmt: skip
    tokens, generated = [], 0
    for i in range(n):
        r = await power_sample(lm, prompt, params.with_(seed=seed + i))
        tokens.append(list(r.tokens))
        generated += r.tokens_generated
        if progress is not None:
            progress(i + 1, n)
    return PowerRun(setting, tokens, generated, time.perf_counter() - t0)

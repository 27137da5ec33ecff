"""What every step of a run shares: the loaded model, the prompt, the layers, progress bars, seeds and the
power-sampling runs already made (a step that needs the same setting again reuses them)."""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from genesis_ps.geometry.checks import Problem
from genesis_ps.geometry.config import GeometryConfig, ModelConfig, PowerSetting
from genesis_ps.geometry.decode import Decoded, decode
from genesis_ps.geometry.pool import PoolSpec
from genesis_ps.geometry.power import Cut, PowerRun, run_power
from genesis_ps.sampling.protocol import Prompt

__all__ = ["Context", "load_model"]


def load_model(cfg: ModelConfig, seed: int = 0) -> Any:
    """The :class:`~genesis_ps.providers.local.LocalModel` the run measures."""
    if cfg.provider == "tiny":
        from genesis_ps.geometry.tiny import build_tiny
        from genesis_ps.providers.local import resolve_device

        return build_tiny(seed, device=resolve_device(cfg.device))
    kw: dict[str, Any] = {"device": cfg.device, "num_threads": cfg.threads}
    if cfg.dtype is not None:
        kw["dtype"] = cfg.dtype
    if cfg.provider == "embedded":
        from genesis_ps.providers.registry import build_model

        return build_model("embedded", **kw)
    from genesis_ps.providers.local import LocalModel

    assert cfg.path is not None
    return LocalModel.from_pretrained(cfg.path, local_files_only=True, **kw)


@dataclass
class Context:
    cfg: GeometryConfig
    lm: Any
    prompt: Prompt
    prompt_ids: list[int]
    layers: tuple[int, ...]
    plot_layer: int
    problem: Problem
    out: Path
    progress: Any = None
    """A rich ``Progress`` (None: quiet)."""
    results: dict[str, Any] = field(default_factory=dict)
    _power: dict[str, list[PowerRun]] = field(default_factory=dict)

    @property
    def model_name(self) -> str:
        return str(self.lm.model)

    @property
    def eos(self) -> set[int]:
        from genesis_ps.geometry.access import eos_ids

        return eos_ids(self.lm.hf_model, self.lm.tokenizer)

    def seed(self, *salt: object) -> int:
        """A seed derived from the run's seed and ``salt`` (stable across runs and processes)."""
        return (self.cfg.seed * 1_000_003 + zlib.crc32(repr(salt).encode())) % (2**31 - 1)

    def layer_index(self, layer: int) -> int:
        """Position of residual index ``layer`` in the latents' layer axis."""
        return self.layers.index(layer)

    @contextlib.contextmanager
    def bar(self, label: str, total: int | None) -> Iterator[Callable[..., None]]:
        """A progress bar; yields ``advance(n=1)``, which also accepts ``(done, total)``."""
        if self.progress is None:
            yield lambda *a: None
            return
        task = self.progress.add_task(label, total=total)

        def advance(*a: int) -> None:
            if len(a) == 2:
                self.progress.update(task, completed=a[0], total=a[1])
            else:
                self.progress.advance(task, a[0] if a else 1)

        try:
            yield advance
        finally:
            self.progress.remove_task(task)

    def decode(
        self, prefixes: Sequence[Sequence[int]], *, max_new: int, label: str, chunk: int = 16,
        pools: Sequence[PoolSpec] = (), temperatures: float | Sequence[float] = 0.0,
        forced: Sequence[int | None] | None = None, stats: bool = False, seed: int = 0,
    ) -> Decoded:  # fmt: skip
        """:func:`~genesis_ps.geometry.decode.decode` over all residual layers, in chunks of ``chunk`` rows."""
        n = len(prefixes)
        temps = [float(temperatures)] * n if isinstance(temperatures, (int, float)) else list(temperatures)
        parts: list[Decoded] = []
        with self.bar(label, (-(-n // chunk)) * max(max_new, 1)) as advance:
            for k, a in enumerate(range(0, n, chunk)):
                b = min(a + chunk, n)
                specs = [PoolSpec(p.stride, p.start if isinstance(p.start, int) else p.start[a:b], p.until)
                         for p in pools]  # fmt: skip
                d = decode(self.lm, self.prompt_ids, prefixes[a:b], max_new=max_new, layers=self.layers, pools=specs,
                           temperatures=temps[a:b], forced=None if forced is None else forced[a:b], stats=stats,
                           seed=seed + k, step=advance)  # fmt: skip
                parts.append(d)
                if max_new == 0:
                    advance()
        return Decoded(
            tokens=[t for d in parts for t in d.tokens], eos=[e for d in parts for e in d.eos],
            latents=[np.concatenate([d.latents[i] for d in parts]) for i in range(len(pools))],
            counts=[[c for d in parts for c in d.counts[i]] for i in range(len(pools))],
            stats=[s for d in parts for s in d.stats] if stats else [],
        )

    def power(self, setting: PowerSetting, n: int) -> PowerRun:
        """``n`` completions of ``setting``. Chains are independent, so a later request for the same setting
        reuses the earlier ones (the first ``n``, or all of them plus newly sampled ones with a fresh seed).
        ``tokens_generated`` is kept only where it covers exactly the chains returned (else -1)."""
        key = setting.model_dump_json()
        batches = self._power.setdefault(key, [])
        while sum(len(b.tokens) for b in batches) < n:
            have = sum(len(b.tokens) for b in batches)
            with self.bar(f"{setting.label} ×{n - have}", None) as advance:
                batches.append(asyncio.run(run_power(self.lm, self.prompt, setting, n - have,
                                                     seed=self.seed("power", key, len(batches)),
                                                     progress=advance)))  # fmt: skip
        tokens: list[list[int]] = []
        cuts: list[Cut] = []
        generated, latency, exact = 0, 0.0, True
        for b in batches:
            take = min(len(b.tokens), n - len(tokens))
            if take <= 0:
                break
            exact = exact and take == len(b.tokens)
            cuts += [replace(c, chain=c.chain + len(tokens)) for c in b.cuts if c.chain < take]
            tokens += b.tokens[:take]
            generated, latency = generated + b.tokens_generated, latency + b.latency_s
        acc = sum(c.accepted for c in cuts) / len(cuts) if cuts else None
        return PowerRun(setting, tokens, generated if exact else -1, latency, acceptance=acc, cuts=cuts)

    def text(self, tokens: Sequence[int]) -> str:
        return str(self.lm.decode(list(tokens)))

"""The generation methods the benchmarks compare, at one shared α, and how each one generates.

``greedy`` (temperature 0), ``single`` (standard sampling, τ = 1), ``low-temp`` (τ = 1/α — the
token-level sharpening power sampling is usually compared with), ``power-mh`` (block-wise
Metropolis–Hastings), ``power-mh-entropy`` (MH with decision-point cuts), ``power-smc`` (Sequential Monte
Carlo), ``power-imh`` (independence MH) and ``power-tps`` (token-level power sampling);
``power-mh-tilt`` / ``power-smc-tilt``, the same samplers aimed at p^α·exp(λ·reward) (a reward the
benchmark supplies: ``bench decomposition`` tilts by the plan's decomposition quality); and the
compute-matched baselines ``bon`` and ``self_consistency`` (:mod:`genesis_ps.bench.baselines`), which a
benchmark runs once per power method, matched to its measured tokens.
Power methods go through :func:`genesis_ps.generation.generate`, so a failure falls back to
single-shot *visibly* (``GenerationResult.fallback``); the benchmarks count those fallbacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from genesis_ps.errors import ConfigError
from genesis_ps.sampling.params import SamplerParams
from genesis_ps.sampling.protocol import Prompt, TokenModel
from genesis_ps.sampling.result import GenerationResult
from genesis_ps.sampling.target import Reward

__all__ = ["METHOD_NAMES", "MethodSpec", "check_capabilities", "parse_methods", "run_method", "split_by_capabilities"]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    sampler: str
    """``single``, a power-sampling method (``mh``, ``smc``, ``imh``, ``tps``) or a baseline (``bon``,
    ``self_consistency``)."""
    temperature: str = "1"
    """For ``single``: ``0``, ``1`` or ``1/alpha``."""
    overrides: tuple[tuple[str, object], ...] = ()
    """Sampler parameters this method sets (e.g. ``cuts="entropy"``)."""
    tilt: bool = False
    """Aim at p^α·exp(λ·reward): the benchmark running it passes the reward and λ to :func:`run_method`."""

    @property
    def power(self) -> bool:
        return self.sampler not in ("single", "bon", "self_consistency")

    @property
    def baseline(self) -> bool:
        return self.sampler in ("bon", "self_consistency")

    @property
    def untilted(self) -> str | None:
        """For a tilted method, the name of the same sampler without the tilt (``power-mh``)."""
        return self.name.removesuffix("-tilt") if self.tilt else None


_SPECS = {
    "greedy": MethodSpec("greedy", "single", "0"),
    "single": MethodSpec("single", "single", "1"),
    "low-temp": MethodSpec("low-temp", "single", "1/alpha"),
    "power-mh": MethodSpec("power-mh", "mh"),
    "power-mh-entropy": MethodSpec("power-mh-entropy", "mh", overrides=(("cuts", "entropy"),)),
    "power-smc": MethodSpec("power-smc", "smc"),
    "power-imh": MethodSpec("power-imh", "imh"),
    "power-tps": MethodSpec("power-tps", "tps"),
    "power-mh-tilt": MethodSpec("power-mh-tilt", "mh", tilt=True),
    "power-smc-tilt": MethodSpec("power-smc-tilt", "smc", tilt=True),
    "bon": MethodSpec("bon", "bon"),
    "self_consistency": MethodSpec("self_consistency", "self_consistency"),
}
METHOD_NAMES: tuple[str, ...] = tuple(_SPECS)
_ALIASES = {"standard": "single", "mh": "power-mh", "smc": "power-smc", "imh": "power-imh", "low_temp": "low-temp",
            "tps": "power-tps", "mh_entropy": "power-mh-entropy", "best-of-n": "bon", "self-consistency":
            "self_consistency"}  # fmt: skip


def parse_methods(text: str | Sequence[str], *, tilt: bool = False) -> list[MethodSpec]:
    """``"single,power-mh"`` → specs, in order, without duplicates; unknown names are a ConfigError, and
    so are tilted methods unless ``tilt`` (the benchmark has a reward to tilt by)."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise ConfigError("methods", "give at least one method")
    out: list[MethodSpec] = []
    for n in names:
        key = _ALIASES.get(n, n)
        if key not in _SPECS:
            raise ConfigError("methods", f"unknown method {n!r}; choose from {', '.join(METHOD_NAMES)}")
        if _SPECS[key].tilt and not tilt:
            raise ConfigError("methods", f"{n} tilts by a reward this benchmark does not have; only "
                                         "bench decomposition runs tilted methods (by plan quality)")
        if _SPECS[key] not in out:
            out.append(_SPECS[key])
    return out


def check_capabilities(model: TokenModel, methods: Sequence[MethodSpec]) -> None:
    """A provider without log-probs cannot power-sample: say so before any model work."""
    power = [m.name for m in methods if m.power]
    if power and model.capabilities.logprobs == "none":
        raise ConfigError(
            "methods",
            f"{model.provider}/{model.model} returns no log-probabilities, so {', '.join(power)} cannot run; "
            "use greedy, single or low-temp with this provider",
        )


def split_by_capabilities(
    model: TokenModel, methods: Sequence[MethodSpec]
) -> tuple[list[MethodSpec], list[dict[str, str]]]:
    """(the methods ``model`` can run, the others as ``{"method", "reason"}``): on a provider without
    log-probs the power methods cannot run, nor the baselines matched to them."""
    if model.capabilities.logprobs != "none" or not any(m.power or m.baseline for m in methods):
        return list(methods), []
    why = f"{model.provider}/{model.model} returns no log-probabilities"
    skipped = [{"method": m.name, "reason": f"{why}; power sampling needs them"} for m in methods if m.power]
    skipped += [{"method": m.name, "reason": f"{why}; it is matched to power methods, which cannot run"}
                for m in methods if m.baseline]  # fmt: skip
    return [m for m in methods if not (m.power or m.baseline)], skipped


async def run_method(
    model: TokenModel,
    prompt: Prompt,
    spec: MethodSpec,
    params: SamplerParams,
    *,
    reward: Reward | None = None,
    lam: float = 0.0,
) -> GenerationResult:
    """Generate once with ``spec`` (α, lengths, seed and sampler sizes from ``params``); a tilted method
    needs ``reward`` and ``lam`` > 0, and only a tilted method takes them."""
    from genesis_ps.generation import generate, single_shot

    if spec.baseline:
        raise ValueError(f"{spec.name} is a compute-matched baseline: run it through bench.baselines.Pool")
    if not spec.power:
        temp = {"0": 0.0, "1": 1.0, "1/alpha": 1.0 / params.alpha}[spec.temperature]
        r = await single_shot(model, prompt, max_new_tokens=params.max_new_tokens, temperature=temp, seed=params.seed)
        r.requested_method = spec.name
        r.alpha = params.alpha if spec.temperature == "1/alpha" else None
        return r
    if spec.tilt != (reward is not None and lam > 0):
        raise ConfigError("lam", f"{spec.name} {'needs' if spec.tilt else 'takes no'} reward tilt (lam = {lam!r})")
    tilt: dict[str, Any] = {"reward": reward, "lam": lam} if spec.tilt else {}
    r = await generate(model, prompt, params.with_(method=spec.sampler, **dict(spec.overrides)), power=True, **tilt)
    r.extra = {**r.extra, "bench_method": spec.name}
    return r

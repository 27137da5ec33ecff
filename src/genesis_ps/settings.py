"""Typed settings from the environment, validated once.

``Settings.from_env()`` reads every ``POWER_SAMPLING_*`` variable; a malformed value, or an unknown
``POWER_SAMPLING_*`` name (a typo would otherwise be ignored silently), raises :class:`ConfigError`
naming the variable. Feature flags are all off by default.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from genesis_ps.errors import ConfigError
from genesis_ps.sampling.params import METHODS, SamplerParams

__all__ = ["LAYERS", "LAYER_DEFAULTS", "PREFIX", "LayerSettings", "Settings", "known_env_names"]

PREFIX = "POWER_SAMPLING_"
Layer = Literal["htdag", "sica", "se_darwin"]
LAYERS: tuple[Layer, ...] = ("htdag", "sica", "se_darwin")

LAYER_DEFAULTS: dict[str, dict[str, float | int]] = {
    "htdag": {"n_mcmc": 10, "alpha": 2.0, "block_size": 32},
    "se_darwin": {"n_mcmc": 15, "alpha": 2.5, "block_size": 64},
    "sica": {"n_mcmc": 20, "alpha": 3.0, "block_size": 128},
}

_SAMPLER_KEYS: dict[str, type] = {
    "METHOD": str,
    "ALPHA": float,
    "N_MCMC": int,
    "BLOCK_SIZE": int,
    "MAX_NEW_TOKENS": int,
    "N_PARTICLES": int,
    "SEED": int,
}
_GLOBAL_KEYS: dict[str, type] = {
    "ENABLED": bool,
    "HTDAG_ENABLED": bool,
    "SICA_ENABLED": bool,
    "SE_DARWIN_ENABLED": bool,
    "ROLLOUT_PERCENT": float,
    "PROVIDER": str,
    "MODEL": str,
    "FALLBACK_PROVIDER": str,
    "FALLBACK_MODEL": str,
    "TIMEOUT_S": float,
    "MAX_RETRIES": int,
    "BREAKER_FAIL_MAX": int,
    "BREAKER_RESET_S": float,
    "MAX_CONCURRENCY": int,
    "BUDGET_TOKENS": int,
    "BUDGET_REQUESTS": int,
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def known_env_names() -> list[str]:
    """Every environment variable this package reads."""
    names = [PREFIX + k for k in (*_GLOBAL_KEYS, *_SAMPLER_KEYS)]
    for layer in LAYERS:
        names += [f"{PREFIX}{layer.upper()}_{k}" for k in _SAMPLER_KEYS if k != "SEED"]
    return names


@dataclass(frozen=True, kw_only=True)
class LayerSettings:
    """Whether one layer power-samples, and with which parameters."""

    enabled: bool
    params: SamplerParams


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the environment configures. Build with :meth:`from_env`, or directly in code."""

    enabled: bool = False
    """Master switch: no layer power-samples while this is off."""
    sampler: SamplerParams = field(default_factory=SamplerParams)
    """Global sampler defaults (``POWER_SAMPLING_ALPHA`` …), used by the CLI's ``sample``."""
    layers: Mapping[str, LayerSettings] = field(default_factory=dict)
    rollout_percent: float = 100.0
    """Share of requests (deterministic per request id) that power-sample when enabled."""
    provider: str = "embedded"
    model: str | None = None
    fallback_provider: str | None = None
    """Provider of the single-shot fallback model (None: fall back on the primary model)."""
    fallback_model: str | None = None
    timeout_s: float = 120.0
    max_retries: int = 3
    breaker_fail_max: int = 5
    breaker_reset_s: float = 30.0
    max_concurrency: int = 8
    budget_tokens: int | None = None
    budget_requests: int | None = None

    def layer(self, name: str) -> LayerSettings:
        """Settings of one layer; ``enabled`` already folds in the master switch."""
        if name not in LAYERS:
            raise ConfigError("layer", f"unknown layer {name!r}; choose one of {', '.join(LAYERS)}")
        ls = self.layers.get(name)
        if ls is None:
            ls = LayerSettings(enabled=False, params=self.sampler.with_(**LAYER_DEFAULTS[name]))
        return LayerSettings(enabled=self.enabled and ls.enabled, params=ls.params)

    def flags(self) -> dict[str, object]:
        """The feature flags in effect, for ``doctor`` and logs."""
        return {
            "enabled": self.enabled,
            "htdag_enabled": self.layer("htdag").enabled,
            "sica_enabled": self.layer("sica").enabled,
            "se_darwin_enabled": self.layer("se_darwin").enabled,
            "rollout_percent": self.rollout_percent,
            "method": self.sampler.method,
            "alpha": self.sampler.alpha,
        }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        known = set(known_env_names())
        unknown = sorted(k for k in env if k.startswith(PREFIX) and k not in known)
        if unknown:
            raise ConfigError(unknown[0], f"unknown setting; known settings are: {', '.join(sorted(known))}")
        g = {k: _parse(PREFIX + k, env[PREFIX + k], t) for k, t in _GLOBAL_KEYS.items() if PREFIX + k in env}
        base = _sampler_from(env, PREFIX, SamplerParams())
        layers: dict[str, LayerSettings] = {}
        for layer in LAYERS:
            defaults = base.with_(**LAYER_DEFAULTS[layer])
            params = _sampler_from(env, f"{PREFIX}{layer.upper()}_", defaults, seed_from=base)
            layers[layer] = LayerSettings(enabled=bool(g.get(f"{layer.upper()}_ENABLED", False)), params=params)
        rollout = float(g.get("ROLLOUT_PERCENT", 100.0))  # type: ignore[arg-type]
        if not 0.0 <= rollout <= 100.0:
            raise ConfigError(PREFIX + "ROLLOUT_PERCENT", f"must be between 0 and 100, got {rollout!r}")
        kw: dict[str, object] = {}
        for key, attr, low in (
            ("TIMEOUT_S", "timeout_s", 0.0),
            ("BREAKER_RESET_S", "breaker_reset_s", 0.0),
        ):
            if key in g:
                if not float(g[key]) > low:  # type: ignore[arg-type]
                    raise ConfigError(PREFIX + key, f"must be > {low}, got {g[key]!r}")
                kw[attr] = g[key]
        for key, attr, ilow in (
            ("MAX_RETRIES", "max_retries", 0),
            ("BREAKER_FAIL_MAX", "breaker_fail_max", 1),
            ("MAX_CONCURRENCY", "max_concurrency", 1),
            ("BUDGET_TOKENS", "budget_tokens", 1),
            ("BUDGET_REQUESTS", "budget_requests", 1),
        ):
            if key in g:
                if int(g[key]) < ilow:  # type: ignore[call-overload]
                    raise ConfigError(PREFIX + key, f"must be >= {ilow}, got {g[key]!r}")
                kw[attr] = g[key]
        return cls(
            enabled=bool(g.get("ENABLED", False)),
            sampler=base,
            layers=layers,
            rollout_percent=rollout,
            provider=str(g.get("PROVIDER", "embedded")),
            model=(str(g["MODEL"]) if "MODEL" in g else None),
            fallback_provider=(str(g["FALLBACK_PROVIDER"]) if "FALLBACK_PROVIDER" in g else None),
            fallback_model=(str(g["FALLBACK_MODEL"]) if "FALLBACK_MODEL" in g else None),
            **kw,  # type: ignore[arg-type]
        )


def _sampler_from(
    env: Mapping[str, str], prefix: str, defaults: SamplerParams, seed_from: SamplerParams | None = None
) -> SamplerParams:
    changes: dict[str, object] = {}
    for key, typ in _SAMPLER_KEYS.items():
        name = prefix + key
        if name in env and not (key == "SEED" and seed_from is not None):
            value = _parse(name, env[name], typ)
            if key == "METHOD" and value not in METHODS:
                raise ConfigError(name, f"unknown method {value!r}; choose one of {', '.join(METHODS)}")
            changes[key.lower()] = value
    try:
        return defaults.with_(**changes)
    except ConfigError as e:
        raise ConfigError(prefix + e.param.upper(), str(e).split(": ", 1)[-1]) from None


def _parse(name: str, raw: str, typ: type) -> object:
    text = raw.strip()
    if typ is bool:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(name, f"expected a boolean (true/false/1/0/yes/no/on/off), got {raw!r}")
    if typ is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(name, f"expected an integer, got {raw!r}") from None
    if typ is float:
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(name, f"expected a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise ConfigError(name, f"expected a finite number, got {raw!r}")
        return value
    if not text:
        raise ConfigError(name, "must not be empty")
    return text

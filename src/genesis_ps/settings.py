"""Typed settings from the environment (and a ``.env`` file), validated once.

``Settings.from_env()`` reads every ``POWER_SAMPLING_*`` variable through pydantic-settings (environment
variables first, then ``.env`` in the working directory, or the file named by ``env_file``); a malformed
value, or an unknown ``POWER_SAMPLING_*`` name (a typo would otherwise be ignored silently), raises
:class:`ConfigError` naming the variable. ``Settings.from_env(mapping)`` reads only that mapping (tests,
embedding apps). Feature flags are all off by default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import BeforeValidator, Field, ValidationError, create_model
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    "ALLOW_WEAK_SANDBOX": bool,
}
_BOUNDS: dict[str, dict[str, float]] = {
    "ROLLOUT_PERCENT": {"ge": 0.0, "le": 100.0},
    "TIMEOUT_S": {"gt": 0.0},
    "BREAKER_RESET_S": {"gt": 0.0},
    "MAX_RETRIES": {"ge": 0},
    "BREAKER_FAIL_MAX": {"ge": 1},
    "MAX_CONCURRENCY": {"ge": 1},
    "BUDGET_TOKENS": {"ge": 1},
    "BUDGET_REQUESTS": {"ge": 1},
}
"""Bounds of the global settings; the sampler's own are checked by :class:`SamplerParams`."""


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
    allow_weak_sandbox: bool = False
    """Run candidate code even where the sandbox is weaker than a bubblewrap boundary (see doctor)."""

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
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, env_file: str | os.PathLike[str] | None = ".env"
    ) -> Settings:
        """Settings from ``environ`` alone when given, else from the process environment and then
        ``env_file`` (skipped when it does not exist; ``None`` reads no file)."""
        if environ is None:
            file_values = _read_env_file(env_file)
            _reject_unknown([*os.environ, *file_values])
            env = _validated(lambda: _EnvModel(_env_file=env_file if file_values else None))  # type: ignore[call-arg]
        else:
            _reject_unknown(list(environ))
            values = {k[len(PREFIX):].lower(): v for k, v in environ.items() if k.startswith(PREFIX)}
            env = _validated(lambda: _EnvModel.model_validate(values))
        return cls._from_values({k.upper(): v for k, v in env.model_dump().items() if v is not None})

    @classmethod
    def _from_values(cls, g: Mapping[str, Any]) -> Settings:
        base = _sampler_from(g, "", SamplerParams())
        layers: dict[str, LayerSettings] = {}
        for layer in LAYERS:
            defaults = base.with_(**LAYER_DEFAULTS[layer])
            params = _sampler_from(g, f"{layer.upper()}_", defaults)
            layers[layer] = LayerSettings(enabled=bool(g.get(f"{layer.upper()}_ENABLED", False)), params=params)
        kw = {key.lower(): g[key] for key in _BOUNDS if key in g}
        return cls(
            enabled=bool(g.get("ENABLED", False)),
            sampler=base,
            layers=layers,
            provider=str(g.get("PROVIDER", "embedded")),
            model=(str(g["MODEL"]) if "MODEL" in g else None),
            allow_weak_sandbox=bool(g.get("ALLOW_WEAK_SANDBOX", False)),
            fallback_provider=(str(g["FALLBACK_PROVIDER"]) if "FALLBACK_PROVIDER" in g else None),
            fallback_model=(str(g["FALLBACK_MODEL"]) if "FALLBACK_MODEL" in g else None),
            **kw,
        )


def _blank_is_false(value: object) -> object:
    return False if isinstance(value, str) and not value.strip() else value


def _field_type(key: str, typ: type) -> Any:
    if typ is bool:
        return Annotated[bool | None, BeforeValidator(_blank_is_false)]
    if typ is str:
        return Annotated[str | None, Field(min_length=1)]
    bounds: dict[str, Any] = dict(_BOUNDS.get(key, {}))
    if typ is float:
        return Annotated[float | None, Field(allow_inf_nan=False, **bounds)]
    return Annotated[int | None, Field(**bounds)]


def _env_fields() -> dict[str, Any]:
    keys: dict[str, type] = {**_GLOBAL_KEYS, **_SAMPLER_KEYS}
    for layer in LAYERS:
        keys |= {f"{layer.upper()}_{k}": t for k, t in _SAMPLER_KEYS.items() if k != "SEED"}
    return {k.lower(): (_field_type(k, t), None) for k, t in keys.items()}


class _EnvBase(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", str_strip_whitespace=True,
                                      case_sensitive=False)  # fmt: skip


_EnvModel = create_model("_EnvModel", __base__=_EnvBase, **_env_fields())
"""Every ``POWER_SAMPLING_*`` variable as an optional, typed field (None = not set)."""


def _validated(build: Any) -> Any:
    try:
        return build()
    except ValidationError as e:
        err = e.errors()[0]
        name = PREFIX + str(err["loc"][0]).upper() if err.get("loc") else PREFIX.rstrip("_")
        raise ConfigError(name, f"{err['msg']}, got {err.get('input')!r}") from None


def _read_env_file(env_file: str | os.PathLike[str] | None) -> dict[str, str | None]:
    if env_file is None or not Path(env_file).is_file():
        return {}
    return dict(dotenv_values(env_file))


def _reject_unknown(names: list[str]) -> None:
    known = set(known_env_names())
    unknown = sorted({k for k in names if k.upper().startswith(PREFIX) and k.upper() not in known})
    if unknown:
        raise ConfigError(unknown[0], f"unknown setting; known settings are: {', '.join(sorted(known))}")


def _sampler_from(g: Mapping[str, Any], prefix: str, defaults: SamplerParams) -> SamplerParams:
    changes = {key.lower(): g[prefix + key] for key in _SAMPLER_KEYS if prefix + key in g}
    if "method" in changes and changes["method"] not in METHODS:
        raise ConfigError(PREFIX + prefix + "METHOD",
                          f"unknown method {changes['method']!r}; choose one of {', '.join(METHODS)}")  # fmt: skip
    try:
        return defaults.with_(**changes)
    except ConfigError as e:
        raise ConfigError(PREFIX + prefix + e.param.upper(), str(e).split(": ", 1)[-1]) from None

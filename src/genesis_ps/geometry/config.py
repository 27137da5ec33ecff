"""The configuration of a geometry run: pydantic sections with their defaults and bounds.

:func:`~genesis_ps.geometry.loading.load_config` reads one from YAML plus ``section.field=value``
overrides. Checks that need the model's shape (layer indices, context length) or the outside world
(oracle file, judge key) are in :mod:`~genesis_ps.geometry.checks`; all run before any model loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "STEPS",
    "AttributionConfig",
    "BridgeConfig",
    "ClusteringConfig",
    "GeometryConfig",
    "JudgeConfig",
    "ModelConfig",
    "OracleConfig",
    "PathConfig",
    "PowerSetting",
    "VarianceConfig",
    "default_problems_file",
]

STEPS: dict[int, str] = {1: "variance", 2: "oracle", 3: "path", 4: "attribution", 5: "clustering", 6: "bridge"}
"""Step number -> name; ``--steps`` takes either."""

_DEFAULT_PROMPT = (
    "Tom has 3 apples and buys 4 more. How many apples does he have now? Give the final answer in \\boxed{}."
)


def default_problems_file() -> str:
    """The packaged problems file: prompts with a hand-written gold solution and answer each."""
    return str(Path(__file__).with_name("data") / "problems.json")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class ModelConfig(_Section):
    provider: Literal["embedded", "local", "tiny"] = "embedded"
    """``embedded`` SmolLM2-135M, ``local`` any transformers causal LM at ``path``, ``tiny`` a random Llama."""
    path: str | None = None
    """Model directory for provider ``local``."""
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:1`` …"""
    dtype: str | None = None
    """``float32``, ``bfloat16``, ``float16`` or None (the checkpoint's)."""
    threads: int | None = Field(default=1, ge=1)
    """torch CPU threads (1 avoids OpenMP spin-waiting on a shared machine; None: torch's default)."""


class PowerSetting(_Section):
    """A power-sampling setting: MH (N independent chains) or SMC (one draw per run)."""

    method: Literal["mh", "smc"]
    alpha: float = Field(gt=0)
    n_mcmc: int = Field(default=2, ge=1)
    block_size: int = Field(default=32, ge=1)
    particles: int = Field(default=4, ge=1)
    max_new_tokens: int = Field(default=128, ge=1)

    @property
    def label(self) -> str:
        return f"{self.method} α={self.alpha:g}"


def _mh(alpha: float) -> PowerSetting:
    return PowerSetting(method="mh", alpha=alpha)


class VarianceConfig(_Section):
    n: int = Field(default=8, ge=2)
    """Completions per setting."""
    checkpoints: list[int] = Field(default_factory=lambda: [64, 128, 256], min_length=1)
    """Generation lengths at which z is read (temperature settings generate up to the largest)."""
    temperatures: list[float] = Field(default_factory=lambda: [0.25, 0.5, 1.0])
    power: list[PowerSetting] = Field(
        default_factory=lambda: [_mh(4.0), _mh(2.0), PowerSetting(method="smc", alpha=4.0)]
    )

    @field_validator("temperatures")
    @classmethod
    def _temps(cls, v: list[float]) -> list[float]:
        if any(not t > 0 for t in v):
            raise ValueError("temperatures must be > 0 (greedy decoding has no sampling variance)")
        return v


class OracleConfig(_Section):
    file: str | None = Field(default_factory=default_problems_file)
    """JSON list of ``{id, prompt, solution, answer}``; the record whose prompt (or ``id``) matches is used."""
    id: str | None = None
    provider: str | None = None
    """Generate the oracle with this provider instead (``openai``, ``openai-compatible``, ``gemini``, …)."""
    model: str | None = None
    base_url: str | None = None
    n: int = Field(default=8, ge=2)
    temperature: float = Field(default=0.8, gt=0)
    prefix_fraction: float = Field(default=0.3, gt=0, lt=1)
    max_new_tokens: int = Field(default=128, ge=1)


class PathConfig(_Section):
    max_new_tokens: int = Field(default=256, ge=1)
    """Length of the greedy baseline."""
    every: int = Field(default=32, ge=1)
    """Branch every k tokens."""
    horizon: int = Field(default=64, ge=1)
    """M: tokens decoded greedily after the forced token on both branches."""
    window_stride: int = Field(default=4, ge=1)
    """Stride of the window latents that D(t) compares."""
    top_n: int = Field(default=5, ge=1)


class AttributionConfig(_Section):
    bifurcations: str | None = None
    """A bifurcations JSON from step 3; None: this run's own (step 3 must run, or the file exist)."""
    top_n: int = Field(default=3, ge=1)


class JudgeConfig(_Section):
    provider: str
    model: str | None = None
    base_url: str | None = None
    max_pairs: int = Field(default=3, ge=1)
    max_new_tokens: int = Field(default=200, ge=1)


class ClusteringConfig(_Section):
    n: int = Field(default=16, ge=3)
    temperature: float = Field(default=0.8, gt=0)
    low_temperature: float | None = Field(default=0.25, gt=0)
    """A low-temperature set to compare with (None: none)."""
    max_new_tokens: int = Field(default=128, ge=1)
    ks: list[int] = Field(default_factory=lambda: [2, 3], min_length=1)
    power: PowerSetting | None = Field(default_factory=lambda: _mh(4.0))
    correct_only: bool = True
    """Cluster only solutions the math evaluator accepts (False: all of them)."""
    judge: JudgeConfig | None = None


class BridgeConfig(_Section):
    power: PowerSetting | None = None
    """The MH setting whose chains are examined; None: the first MH setting of ``variance.power``."""
    n: int | None = Field(default=None, ge=1)
    """Chains (None: ``variance.n``)."""
    every: int = Field(default=16, ge=1)
    horizon: int = Field(default=32, ge=1)
    window_stride: int = Field(default=4, ge=1)


class GeometryConfig(_Section):
    model: ModelConfig = Field(default_factory=ModelConfig)
    seed: int = Field(default=0, ge=0)
    prompt: str = _DEFAULT_PROMPT
    answer: str | None = None
    """Reference answer for correctness (None: the oracle file's record for the prompt)."""
    chat_template: bool = True
    stride: int = 32
    """k: the latent averages the states at generated tokens k, 2k, 3k, …"""
    layers: list[int] | Literal["all"] = "all"
    """Residual-stream indices (0 = embeddings, L = input of the final norm)."""
    plot_layer: int | None = None
    """Layer of the per-layer-free plots (None: the last)."""
    steps: list[int] = Field(default_factory=lambda: sorted(STEPS))
    variance: VarianceConfig = Field(default_factory=VarianceConfig)
    oracle: OracleConfig = Field(default_factory=OracleConfig)
    path: PathConfig = Field(default_factory=PathConfig)
    attribution: AttributionConfig = Field(default_factory=AttributionConfig)
    clustering: ClusteringConfig = Field(default_factory=ClusteringConfig)
    bridge: BridgeConfig = Field(default_factory=BridgeConfig)

    @field_validator("stride")
    @classmethod
    def _stride(cls, v: int) -> int:
        if v <= 0:
            raise ValueError(f"must be an integer > 0, got {v}")
        return v

    @field_validator("steps", mode="before")
    @classmethod
    def _steps(cls, v: Any) -> list[int]:
        items = v.split(",") if isinstance(v, str) else ([v] if isinstance(v, int) else list(v))
        names = {name: num for num, name in STEPS.items()}
        out = []
        for item in items:
            key = str(item).strip().lower()
            num = names.get(key, int(key) if key.isdigit() else None)
            if num not in STEPS:
                known = ", ".join(f"{k}/{n}" for k, n in STEPS.items())
                raise ValueError(f"unknown step {item!r}; choose from {known}")
            out.append(num)
        return sorted(set(out))

    @model_validator(mode="after")
    def _lengths(self) -> GeometryConfig:
        if not self.prompt.strip():
            raise ValueError("prompt: must not be empty")
        if any(c < self.stride for c in self.variance.checkpoints):
            cps = self.variance.checkpoints
            raise ValueError(f"variance.checkpoints: each must be >= stride ({self.stride}), got {cps}")
        if max(self.clustering.ks) >= self.clustering.n or min(self.clustering.ks) < 2:
            raise ValueError(
                f"clustering.ks: each K must be in 2..n-1 = {self.clustering.n - 1} (silhouette needs K < solutions)"
            )
        return self

    @property
    def step_names(self) -> list[str]:
        return [STEPS[s] for s in self.steps]

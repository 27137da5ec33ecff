"""Checks of a :class:`~genesis_ps.geometry.config.GeometryConfig` against the model's shape and the world.

Everything here runs before any model weights load: the model's block count and context come from its
config file alone (:func:`model_info`), the oracle file is read and matched, judge keys are looked up.
Each failure is a :class:`~genesis_ps.errors.ConfigError` naming the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genesis_ps.errors import ConfigError
from genesis_ps.geometry.config import GeometryConfig, ModelConfig, PowerSetting

__all__ = ["HOSTED", "ModelInfo", "Problem", "bridge_setting", "check_config", "model_info", "resolve_problem"]

HOSTED = ("openai", "openai-compatible", "gemini", "anthropic")
_ALL_PROVIDERS = ("embedded", "local", *HOSTED)


@dataclass(frozen=True)
class ModelInfo:
    """What the checks need to know about a model: its decoder blocks and context length."""

    name: str
    n_blocks: int
    context: int | None


@dataclass(frozen=True)
class Problem:
    """The prompt of the run with its reference answer and gold solution, when known."""

    prompt: str
    answer: str | None
    solution: str | None
    source: str


def model_info(cfg: ModelConfig) -> ModelInfo:
    """Block count and context from the model's config only (no weights)."""
    if cfg.provider == "tiny":
        from genesis_ps.geometry.tiny import TINY_CONTEXT, TINY_LAYERS

        return ModelInfo("tiny-random-llama", TINY_LAYERS, TINY_CONTEXT)
    try:
        import transformers
    except ImportError as e:  # pragma: no cover - depends on the environment
        msg = f"needs torch and transformers: pip install 'genesis_ps[local]' ({e})"
        raise ConfigError("model.provider", msg) from e
    if cfg.provider == "embedded":
        from genesis_ps.providers.local.embedded import EMBEDDED_NAME, locate_embedded
        from genesis_ps.providers.local.paths import cache_dir

        gguf = locate_embedded()
        converted = sorted(cache_dir().glob(f"{gguf.stem}-*/config.json"))  # the converted copy, when made
        if converted:
            conf = transformers.AutoConfig.from_pretrained(str(converted[-1].parent), local_files_only=True)
        else:  # reads the GGUF's metadata (several seconds)
            conf = transformers.AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
        name = EMBEDDED_NAME
    else:
        if not cfg.path:
            raise ConfigError("model.path", "provider 'local' needs a model directory")
        if not Path(cfg.path).is_dir():
            raise ConfigError("model.path", f"no such model directory: {cfg.path}")
        try:
            conf = transformers.AutoConfig.from_pretrained(cfg.path, local_files_only=True)
        except (OSError, ValueError) as e:
            raise ConfigError("model.path", f"cannot read a transformers config in {cfg.path}: {e}") from None
        name = Path(cfg.path).name
    text = conf.get_text_config(decoder=True) if hasattr(conf, "get_text_config") else conf
    ctx = getattr(text, "max_position_embeddings", None)
    return ModelInfo(name, int(text.num_hidden_layers), int(ctx) if ctx else None)


def resolve_problem(cfg: GeometryConfig, *, need_solution: bool) -> Problem:
    """The run's prompt with the oracle file's record for it (matched by ``oracle.id`` or the prompt text)."""
    o = cfg.oracle
    record: dict[str, Any] | None = None
    if o.file is not None and (need_solution or cfg.answer is None):
        path = Path(o.file)
        if not path.is_file():
            raise ConfigError("oracle.file", f"no such file: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError("oracle.file", f"{path} is not readable JSON: {e}") from None
        rows = data if isinstance(data, list) else [data]
        want = cfg.prompt.strip()
        for row in rows:
            if not isinstance(row, dict):
                continue
            by_id = o.id is not None and str(row.get("id")) == o.id
            if by_id or (o.id is None and str(row.get("prompt", "")).strip() == want):
                record = row
                break
        if record is None and o.id is not None:
            raise ConfigError("oracle.id", f"no record with id {o.id!r} in {path}")
        if record is not None and o.id is not None and str(record.get("prompt", "")).strip() != want:
            raise ConfigError("oracle.id", f"record {o.id!r} in {path} is for another prompt than the run's")
    solution = str(record["solution"]) if record and record.get("solution") else None
    if need_solution and o.provider is None and solution is None:
        where = f"{o.file}" if o.file else "no oracle file"
        raise ConfigError("oracle.file", f"{where} has no solution for the prompt {cfg.prompt[:60]!r}")
    answer = cfg.answer
    if answer is None and record and record.get("answer"):
        answer = str(record["answer"])
    from genesis_ps.geometry.config import default_problems_file

    shown = "genesis_ps/geometry/data/problems.json" if o.file == default_problems_file() else o.file
    source = f"{shown}#{record.get('id')}" if record else ("generated by " + o.provider if o.provider else "none")
    return Problem(prompt=cfg.prompt, answer=answer, solution=solution, source=source)


def _check_hosted(field: str, provider: str, base_url: str | None) -> None:
    from genesis_ps.providers.keys import KEY_ENV, key_present

    if provider not in _ALL_PROVIDERS:
        raise ConfigError(field, f"unknown provider {provider!r}; choose one of {', '.join(_ALL_PROVIDERS)}")
    if provider in HOSTED and not key_present(provider):
        raise ConfigError(field, f"provider {provider!r} needs an API key: set ${KEY_ENV[provider][0]}")
    if provider == "openai-compatible" and not base_url:
        raise ConfigError(field.rsplit(".", 1)[0] + ".base_url", "provider 'openai-compatible' needs a base_url")


def _check_bifurcations(path: str, info: ModelInfo) -> None:
    p = Path(path)
    if not p.is_file():
        raise ConfigError("attribution.bifurcations", f"no such file: {p}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError("attribution.bifurcations", f"{p} is not readable JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("points"), list) or "prompt_ids" not in data:
        raise ConfigError("attribution.bifurcations", f"{p} is not a bifurcations file from step 3")
    if data.get("model") != info.name:
        raise ConfigError("attribution.bifurcations", f"{p} was made with {data.get('model')!r}, not {info.name!r}")


def _fits(field: str, length: int, ctx: int | None) -> None:
    if ctx is not None and length > ctx:
        raise ConfigError(field, f"{length} tokens exceed the model's context of {ctx} tokens")


def bridge_setting(cfg: GeometryConfig) -> PowerSetting:
    """The MH setting step 6 examines."""
    if cfg.bridge.power is not None:
        return cfg.bridge.power
    for s in cfg.variance.power:
        if s.method == "mh":
            return s
    raise ConfigError("bridge.power", "step 6 needs an MH setting: set bridge.power or put one in variance.power")


def check_config(cfg: GeometryConfig, info: ModelInfo) -> Problem:
    """Every check that needs the model's shape or the outside world; returns the resolved problem."""
    top = info.n_blocks
    layers = list(range(top + 1)) if cfg.layers == "all" else list(cfg.layers)
    for layer in layers:
        if not 0 <= layer <= top:
            raise ConfigError(
                "layers", f"unknown layer index {layer}: {info.name} has {top} blocks, so residual indices 0..{top}"
            )
    if cfg.plot_layer is not None and cfg.plot_layer not in layers:
        msg = f"{cfg.plot_layer} is not among the layers measured ({layers[0]}..{layers[-1]})"
        raise ConfigError("plot_layer", msg)
    ctx, steps = info.context, set(cfg.step_names)
    if "variance" in steps:
        _fits("variance.checkpoints", max(cfg.variance.checkpoints), ctx)
        for s in cfg.variance.power:
            _fits("variance.power", s.max_new_tokens, ctx)
    if "oracle" in steps:
        _fits("oracle.max_new_tokens", cfg.oracle.max_new_tokens, ctx)
        if cfg.oracle.provider is not None:
            _check_hosted("oracle.provider", cfg.oracle.provider, cfg.oracle.base_url)
    if "path" in steps:
        _fits("path.max_new_tokens", cfg.path.max_new_tokens + cfg.path.horizon + 1, ctx)
    if "attribution" in steps and "path" not in steps:
        f = cfg.attribution.bifurcations
        if f is None:
            raise ConfigError("attribution.bifurcations", "step 4 needs step 3 in this run or a bifurcations file")
    if cfg.attribution.bifurcations is not None and "attribution" in steps:
        _check_bifurcations(cfg.attribution.bifurcations, info)
    if "clustering" in steps:
        c = cfg.clustering
        _fits("clustering.max_new_tokens", c.max_new_tokens, ctx)
        if c.judge is not None:
            _check_hosted("clustering.judge.provider", c.judge.provider, c.judge.base_url)
    if "bridge" in steps:
        b = bridge_setting(cfg)
        if b.method != "mh":
            raise ConfigError("bridge.power", "step 6 examines MH cuts: method must be 'mh'")
        _fits("bridge.power", b.max_new_tokens + cfg.bridge.horizon + 1, ctx)
    problem = resolve_problem(cfg, need_solution="oracle" in steps)
    if "clustering" in steps and cfg.clustering.correct_only and problem.answer is None:
        raise ConfigError("answer", "clustering.correct_only needs a reference answer (answer, or the oracle file's)")
    return problem

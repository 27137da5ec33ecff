"""Run the selected steps of a geometry configuration and write the run folder.

Order of work: the configuration is validated, then checked against the model's config file and the
oracle file (:mod:`~genesis_ps.geometry.checks`) — all before any weights load. ``dry_run`` then swaps in
the tiny random Llama with minimal lengths (:func:`dry_run_config`) and runs every selected step on it.
The folder gets ``config.yaml`` (the configuration as run), ``results.json``, the PNG plots, the step-3
``bifurcations.json`` and ``report.md``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from genesis_ps.errors import ConfigError
from genesis_ps.geometry.checks import check_config, model_info
from genesis_ps.geometry.config import STEPS, GeometryConfig, PowerSetting

__all__ = ["dry_run_config", "run_geometry"]


def _tiny_power(s: PowerSetting) -> PowerSetting:
    return s.model_copy(update={"max_new_tokens": 8, "block_size": 4, "n_mcmc": 1, "particles": 2})


def dry_run_config(cfg: GeometryConfig) -> GeometryConfig:
    """``cfg`` on the tiny random Llama with minimal lengths: same steps and settings, seconds of work.

    The random model never solves the problem, so clustering takes all solutions (``correct_only`` off)."""
    u = {
        "model": cfg.model.model_copy(update={"provider": "tiny", "path": None, "dtype": None}),
        "stride": 2, "layers": "all", "plot_layer": None,
        "variance": cfg.variance.model_copy(update={
            "n": 3, "checkpoints": [4, 8], "temperatures": cfg.variance.temperatures[:3],
            "power": [_tiny_power(s) for s in cfg.variance.power]}),
        "oracle": cfg.oracle.model_copy(update={"n": 2, "max_new_tokens": 8, "provider": None}),
        "path": cfg.path.model_copy(update={"max_new_tokens": 12, "every": 4, "horizon": 4, "window_stride": 2,
                                            "top_n": 2}),
        "attribution": cfg.attribution.model_copy(update={"bifurcations": None, "top_n": 2}),
        "clustering": cfg.clustering.model_copy(update={
            "n": 4, "max_new_tokens": 8, "ks": [2], "correct_only": False, "judge": None,
            "power": _tiny_power(cfg.clustering.power) if cfg.clustering.power else None}),
        "bridge": cfg.bridge.model_copy(update={
            "n": 2, "every": 4, "horizon": 4, "window_stride": 2,
            "power": _tiny_power(cfg.bridge.power) if cfg.bridge.power else None}),
    }  # fmt: skip
    if "attribution" in cfg.step_names and "path" not in cfg.step_names:
        u["steps"] = sorted({*cfg.steps, 3})
    return GeometryConfig.model_validate({**cfg.model_dump(), **{k: (v.model_dump() if hasattr(v, "model_dump") else v)
                                                                 for k, v in u.items()}})  # fmt: skip


def _progress(enabled: bool) -> Any:
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=True)  # fmt: skip


def run_geometry(
    cfg: GeometryConfig, out: str | Path, *, dry_run: bool = False, command: str = "", progress: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Validate, run the steps, write the run folder under ``out``; returns the results."""
    t_start = time.perf_counter()
    info = model_info(cfg.model)
    check_config(cfg, info)
    validated = cfg
    if dry_run:
        cfg = dry_run_config(cfg)
        info = model_info(cfg.model)
    problem = check_config(cfg, info)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    import torch

    from genesis_ps.geometry import report
    from genesis_ps.geometry.context import Context, load_model
    from genesis_ps.sampling.protocol import Prompt

    threads = torch.get_num_threads()
    try:
        if cfg.model.threads is not None:
            torch.set_num_threads(cfg.model.threads)
        t0 = time.perf_counter()
        lm = load_model(cfg.model, cfg.seed)
        load_s = time.perf_counter() - t0
        prompt = Prompt.user(problem.prompt) if cfg.chat_template else Prompt.text(problem.prompt)
        prompt_ids = list(lm.encode_prompt(prompt))
        _check_prompt(cfg, len(prompt_ids), info.context)
        layers = tuple(range(info.n_blocks + 1)) if cfg.layers == "all" else tuple(sorted(set(cfg.layers)))
        plot_layer = cfg.plot_layer if cfg.plot_layer is not None else layers[-1]
        bar = _progress(progress)
        ctx = Context(cfg=cfg, lm=lm, prompt=prompt, prompt_ids=prompt_ids, layers=layers, plot_layer=plot_layer,
                      problem=problem, out=out, progress=bar)  # fmt: skip
        timings: dict[str, float] = {}
        if bar is not None:
            bar.start()
        try:
            for num in cfg.steps:
                name = STEPS[num]
                t = time.perf_counter()
                ctx.results[name] = _step(name).run(ctx)
                timings[name] = round(time.perf_counter() - t, 2)
        finally:
            if bar is not None:
                bar.stop()
        meta = {
            "command": command, "dry_run": dry_run, "model": ctx.model_name, "n_blocks": info.n_blocks,
            "context": info.context, "device": str(next(lm.hf_model.parameters()).device),
            "prompt": problem.prompt, "prompt_tokens": len(prompt_ids), "answer": problem.answer,
            "problem_source": problem.source, "load_s": round(load_s, 2), "step_s": timings,
            "wall_s": round(time.perf_counter() - t_start, 2),
        }  # fmt: skip
        return report.write_run(out, cfg, validated if dry_run else None, meta, ctx.results)
    finally:
        torch.set_num_threads(threads)


def _check_prompt(cfg: GeometryConfig, n_prompt: int, ctx_len: int | None) -> None:
    """Prompt + the longest generation of each step must fit the context (checked before any sampling)."""
    if ctx_len is None:
        return
    need = {
        "variance.checkpoints": max(cfg.variance.checkpoints + [s.max_new_tokens for s in cfg.variance.power]),
        "oracle.max_new_tokens": cfg.oracle.max_new_tokens,
        "path.max_new_tokens": cfg.path.max_new_tokens + cfg.path.horizon + 1,
        "clustering.max_new_tokens": cfg.clustering.max_new_tokens,
    }  # fmt: skip
    for field, length in need.items():
        if field.split(".")[0] in cfg.step_names and n_prompt + length > ctx_len:
            raise ConfigError(field, f"{n_prompt} prompt tokens + {length} exceed the model's context of {ctx_len}")


def _step(name: str) -> Any:
    import importlib

    return importlib.import_module(f"genesis_ps.geometry.steps.{name}")

"""What the graph commands share: the model flags, loading the model, the checkpoint location, the plan
style."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

__all__ = ["add_model_args", "check_args", "checkpoint_path", "load_model", "plan_style"]


def checkpoint_path(explicit: str | None = None) -> Path:
    """Where ``run`` keeps its SQLite checkpoints."""
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("GENESIS_PS_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".genesis_ps") / "checkpoints.sqlite"


def load_model(args: argparse.Namespace, settings: Any) -> Any:
    """The TokenModel named by ``--provider/--model/--base-url`` (default: settings, i.e. embedded)."""
    from genesis_ps.providers.registry import build_model

    provider = args.provider or settings.provider
    return build_model(provider, model=args.model or settings.model, base_url=args.base_url)


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--provider", default=None, help="model provider (default: POWER_SAMPLING_PROVIDER or embedded)")
    p.add_argument("--model", default=None, help="model name or path for the provider")
    p.add_argument("--base-url", default=None, help="base URL for OpenAI-compatible servers")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--max-depth", type=int, default=0, help="recursive decomposition depth (default 0)")
    p.add_argument("--plan-max-new-tokens", type=int, default=128, help="token limit of the decomposition (128)")
    p.add_argument("--plan-lam", type=float, default=0.0,
                   help="tilt the plan's power sampling by decomposition quality: p^alpha*exp(lam*q) (0)")  # fmt: skip
    p.add_argument("--temperature", type=float, default=0.3,
                   help="single-shot temperature (0.3; power sampling samples at 1/alpha instead)")  # fmt: skip


def plan_style(args: argparse.Namespace, settings: Any) -> str:
    """The decomposition answer format: ``auto`` picks WorFBench text for the embedded model."""
    style = getattr(args, "style", "auto")
    if style != "auto":
        return str(style)
    return "worfbench" if (args.provider or settings.provider) == "embedded" else "json"


def check_args(args: argparse.Namespace, settings: Any) -> None:
    """Every flag of ``decompose`` / ``run`` checked before any model loads, naming the flag."""
    from genesis_ps.cli.checks import check_float, check_int, check_model_flags, check_temp

    check_model_flags(args.provider or settings.provider, args.model or settings.model, args.base_url)
    check_int("--max-depth", args.max_depth, 0)
    check_int("--plan-max-new-tokens", args.plan_max_new_tokens, 1)
    check_float("--plan-lam", args.plan_lam)
    check_temp("--temperature", args.temperature)
    if hasattr(args, "task_max_new_tokens"):
        check_int("--task-max-new-tokens", args.task_max_new_tokens, 1)
    if getattr(args, "metrics_port", None) is not None:
        check_int("--metrics-port", args.metrics_port, 1, 65535)

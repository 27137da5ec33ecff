"""``genesis-ps geometry run``: sampling-geometry diagnostics of a local model (see docs/geometry.md).

Configuration: ``--config FILE`` (YAML) or the defaults; every field of it is also a flag,
``--SECTION.FIELD VALUE`` (``--variance.n 12``, ``--variance.checkpoints "[64, 128]"``,
``--model.provider local --model.path DIR``); values are read as YAML scalars or lists. ``--dry-run``
validates the configuration, then runs every selected step on a tiny random Llama in seconds.
"""

from __future__ import annotations

import argparse
import shlex
import time
from typing import Any

__all__ = ["register", "run"]

_STR_FIELDS = {"prompt", "answer", "model.path", "model.device", "model.dtype", "oracle.file", "oracle.id",
               "oracle.provider", "oracle.model", "oracle.base_url", "attribution.bifurcations",
               "clustering.judge.provider", "clustering.judge.model", "clustering.judge.base_url"}  # fmt: skip


def register(sub: Any) -> None:
    from genesis_ps.geometry.loading import leaf_fields

    g = sub.add_parser("geometry", help="hidden-state geometry of a local model while it samples")
    gsub = g.add_subparsers(dest="geometry_command", required=True, metavar="ACTION")
    p = gsub.add_parser("run", help="run the geometry steps (1 variance, 2 oracle, 3 path, 4 attribution, "
                                    "5 clustering, 6 bridge)")  # fmt: skip
    p.add_argument("--config", default=None, help="YAML configuration file (default: built-in defaults)")
    p.add_argument("--out", default=None, help="run folder (default: geometry_runs/<UTC time>)")
    p.add_argument("--dry-run", action="store_true", help="validate, then run every step on a tiny random model")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    opts = p.add_argument_group("configuration fields (override the file)")
    for name, doc in leaf_fields():
        flag = "--" + name.replace("_", "-")
        opts.add_argument(flag, dest=f"cfg:{name}", default=None, metavar="VALUE", help=doc.split("\n")[0] or None)
    p.set_defaults(func=run)


def _value(name: str, raw: str) -> Any:
    import yaml

    if name in _STR_FIELDS and raw.strip().lower() not in ("null", "none", "~"):
        return raw
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    return raw if isinstance(value, dict) and name in _STR_FIELDS else value


def _command(args: argparse.Namespace, overrides: list[tuple[str, Any]], out: str) -> str:
    """The command line that reproduces this run (from the parsed arguments, not ``sys.argv``)."""
    parts = ["genesis-ps", "geometry", "run"]
    if args.config:
        parts += ["--config", args.config]
    if args.dry_run:
        parts.append("--dry-run")
    for name, _ in overrides:
        parts += ["--" + name.replace("_", "-"), getattr(args, f"cfg:{name}")]
    parts += ["--out", out]
    return " ".join(shlex.quote(str(p)) for p in parts)


def run(args: argparse.Namespace) -> int:
    from genesis_ps.geometry.loading import load_config
    from genesis_ps.geometry.pipeline import run_geometry

    overrides = [(k[4:], _value(k[4:], v)) for k, v in vars(args).items() if k.startswith("cfg:") and v is not None]
    cfg = load_config(args.config, overrides)
    out = args.out or f"geometry_runs/{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    command = _command(args, overrides, out)
    doc = run_geometry(cfg, out, dry_run=args.dry_run, command=command, progress=not args.quiet)
    plots = sum(len(r.get("plots", [])) for r in doc["results"].values())
    print(f"geometry run written to {out}/ (report.md, results.json, config.yaml, {plots} plots) "
          f"in {doc['meta']['wall_s']} s")
    return 0

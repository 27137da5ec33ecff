"""``genesis-ps bench NAME``: each benchmark module under :mod:`genesis_ps.bench` registers itself."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

__all__ = ["register"]

_BENCHES = ("exactness", "speed", "decomposition", "quality")


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="run a benchmark (exactness, speed, decomposition, quality)")
    bsub = p.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for name in _BENCHES:
        try:
            mod = importlib.import_module(f"genesis_ps.bench.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"genesis_ps.bench.{name}":
                continue
            raise
        mod.register(bsub)


def add_common(p: argparse.ArgumentParser) -> None:
    """Options every benchmark shares."""
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--out", default=None, help="directory to write JSON/Markdown/PNG reports into")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

"""``genesis-ps bench NAME``: each benchmark module under :mod:`genesis_ps.bench` registers itself."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["register"]

_BENCHES = ("exactness", "speed", "decomposition", "quality")


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="run a benchmark (exactness, speed, decomposition, quality)")
    bsub = p.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for name in _BENCHES:
        importlib.import_module(f"genesis_ps.bench.{name}").register(bsub)

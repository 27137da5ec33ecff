"""``genesis-ps bench NAME``: each benchmark module under :mod:`genesis_ps.bench` registers itself."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

from genesis_ps.cli.checks import check_out_dir

__all__ = ["register"]

_BENCHES = ("exactness", "speed", "decomposition", "quality", "reasoning", "code")


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="run a benchmark (exactness, speed, decomposition, quality, reasoning, code)")
    bsub = p.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for name in _BENCHES:
        importlib.import_module(f"genesis_ps.bench.{name}").register(bsub)
        parser = bsub.choices[name]
        parser.set_defaults(func=_out_checked(parser.get_default("func")))


def _out_checked(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``func``, after checking that ``--out`` can be written (before any model loads)."""

    def run(args: argparse.Namespace) -> int:
        check_out_dir("--out", getattr(args, "out", None))
        return func(args)

    return run

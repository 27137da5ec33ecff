"""Command-line options every ``genesis-ps bench`` subcommand shares."""

from __future__ import annotations

import argparse

__all__ = ["add_common"]


def add_common(p: argparse.ArgumentParser) -> None:
    """Options every benchmark shares."""
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--out", default=None, help="directory to write JSON/Markdown/PNG reports into")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

"""Report writers shared by the benchmarks: partial JSONL as results arrive, then JSON, Markdown and
PNG plots (matplotlib, Agg backend), a rich progress bar, and a description of the machine."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["JsonlWriter", "bar_plot", "fmt", "machine_info", "markdown_table", "progress", "scatter_plot", "write_json"]


_ISA = ("avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "neon", "asimd")
"""The CPU features that move decode speed (GGUF block kernels need AVX2/FMA/F16C; torch uses AVX-512/AMX)."""


def cpu_model() -> tuple[str | None, list[str]]:
    """The CPU's model name and which of :data:`_ISA` it has, from ``/proc/cpuinfo`` (None, [] elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return None, []
    name: str | None = None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware") and name is None:
            name = value.strip() or None
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return name, [f for f in _ISA if f in flags]


def machine_info() -> dict[str, Any]:
    """Where the figures were measured (CPU model and features, count, platform, Python, torch if loaded)."""
    cpu, isa = cpu_model()
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu": cpu,
        "cpu_features": isa,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "gpu": None,
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = getattr(torch, "__version__", None)
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


class JsonlWriter:
    """Appends one JSON object per line and flushes it at once, so an interrupted run keeps its results."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self._fh = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("w", encoding="utf-8")

    def write(self, obj: dict[str, Any]) -> None:
        if self._fh is not None:
            self._fh.write(json.dumps(obj, default=_default) + "\n")
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _default(o: Any) -> Any:
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def _clean(o: Any) -> Any:
    """NaN/inf become null so the JSON is standard."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def write_json(path: str | Path, obj: dict[str, Any]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(_clean(json.loads(json.dumps(obj, default=_default))), indent=2) + "\n", encoding="utf-8")
    return p


def fmt(x: Any, digits: int = 3) -> str:
    """A table cell: numbers rounded, None/NaN as an em dash."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


@contextmanager
def progress(total: int, description: str, *, enabled: bool = True) -> Iterator[Any]:
    """A rich progress bar on stderr; yields ``advance(n=1, note='')``. Silent when not ``enabled``."""
    if not enabled:
        yield lambda n=1, note="": None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total, note="")

        def advance(n: int = 1, note: str = "") -> None:
            bar.update(task, advance=n, note=note)

        yield advance


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def scatter_plot(
    path: str | Path,
    points: Sequence[tuple[str, float, float, float, float]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    logx: bool = True,
) -> Path:
    """One labelled point per method: (label, x, y, y_low, y_high) with vertical error bars."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    for label, x, y, lo, hi in points:
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        yerr = [[max(y - lo, 0.0)], [max(hi - y, 0.0)]] if math.isfinite(lo) and math.isfinite(hi) else None
        ax.errorbar([x], [y], yerr=yerr, fmt="o", capsize=4, label=label)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    if logx:
        from matplotlib.ticker import FuncFormatter, LogLocator

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return save_figure(fig, path)


def bar_plot(
    path: str | Path,
    groups: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    ylabel: str,
    title: str,
) -> Path:
    """Grouped bars: one group per entry of ``groups``, one bar per series (method)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6.4, 1.2 * len(groups) + 2), 4.4), dpi=110)
    k = max(len(series), 1)
    width = 0.8 / k
    for s, (name, vals) in enumerate(series.items()):
        xs = [g + (s - (k - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, [v if math.isfinite(v) else 0.0 for v in vals], width=width, label=name)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=20, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.set_ylim(0, max(1.0, max((v for vs in series.values() for v in vs if math.isfinite(v)), default=1.0)))
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return save_figure(fig, path)


def write_report_files(
    report: dict[str, Any], out_dir: str | Path, markdown: str, *, drop: Sequence[str] = ("rows", "files")
) -> list[Path]:
    """``report.json`` (the report without the ``drop`` keys) and ``report.md`` in ``out_dir``."""
    out = Path(out_dir)
    md = out / "report.md"
    files = [write_json(out / "report.json", {k: v for k, v in report.items() if k not in drop})]
    md.write_text(markdown + "\n", encoding="utf-8")
    return [*files, md]


def save_figure(fig: Any, path: str | Path) -> Path:
    """Lay ``fig`` out, write it to ``path`` (creating the folder) and close it."""
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    _plt().close(fig)
    return p


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


__all__ += ["comparisons_table", "mean_present", "now_utc", "plain_json", "save_figure", "write_report_files"]


def plain_json(obj: Any) -> Any:
    """``obj`` after a JSON round trip (as a ``rows.jsonl`` line reads back): tuples become lists,
    objects with ``to_dict`` become dicts."""
    return json.loads(json.dumps(obj, default=_default))


def mean_present(xs: Sequence[float | None]) -> float:
    """Mean of the values that are present (NaN when none is)."""
    v = [x for x in xs if x is not None]
    return sum(v) / len(v) if v else math.nan


def comparisons_table(comparisons: Sequence[dict[str, Any]]) -> str:
    """Markdown table of paired comparisons (``stats.paired_compare(...).to_dict()`` rows)."""
    rows = []
    for c in comparisons:
        ci = f"[{fmt(c['ci_low'])}, {fmt(c['ci_high'])}]"
        pair = f"{c['b']} − {c['a']}"
        rows.append([pair, c["metric"], c["n"], c["mean_diff"], ci, c["p_wilcoxon"], c["p_permutation"]])
    return markdown_table(["difference", "metric", "n", "mean", "bootstrap 95% CI", "p (Wilcoxon)", "p (perm.)"], rows)

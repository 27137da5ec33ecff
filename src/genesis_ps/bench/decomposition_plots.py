"""The decomposition benchmark's plots: f1 against measured tokens (overall, 95% intervals), f1_graph
against the measured cost multiplier, and f1 per domain and method (bars with 95% intervals)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from genesis_ps.bench.report import _plt, scatter_plot

__all__ = ["f1_vs_tokens", "per_domain_bars", "quality_vs_cost"]

_METRICS = (("f1_chain", "f1_chain"), ("f1_graph", "f1_graph"))
_MARKERS = "osD^vP*Xph"


def _err(a: dict[str, Any]) -> tuple[float, float, float]:
    m, lo, hi = (a.get(k) for k in ("mean", "ci_low", "ci_high"))
    m = m if isinstance(m, float) and math.isfinite(m) else math.nan
    lo = lo if isinstance(lo, float) and math.isfinite(lo) else m
    hi = hi if isinstance(hi, float) and math.isfinite(hi) else m
    return m, max(m - lo, 0.0), max(hi - m, 0.0)


def f1_vs_tokens(report: dict[str, Any], path: Path) -> Path:
    """Two panels (f1_chain, f1_graph): one point per method at its mean measured tokens per record, with
    its bootstrap 95% interval. Methods at the same place are dodged sideways (by at most ±3% of the
    tokens) so that each stays visible; the legend names them."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), dpi=110, sharey=True)
    cmap = plt.get_cmap("tab10")
    items = list(report["methods"].items())
    k = len(items)
    top = 0.0
    for ax, (key, label) in zip(axes, _METRICS, strict=True):
        for i, (name, a) in enumerate(items):
            m, lo, hi = _err(a[key])
            x = a["tokens_generated_mean"]
            if not (math.isfinite(m) and math.isfinite(x)):
                continue
            dodge = 1 + (0.06 * (i - (k - 1) / 2) / max(k - 1, 1))
            ax.errorbar([x * dodge], [m], yerr=[[lo], [hi]], fmt=_MARKERS[i % len(_MARKERS)], capsize=3,
                        color=cmap(i % 10), label=name, markersize=6)  # fmt: skip
            top = max(top, m + hi)
        ax.set_xlabel("measured tokens generated per record")
        ax.set_title(f"{label}: mean over all records, bootstrap 95% CI", fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("score")
    axes[0].set_ylim(-0.02, min(1.02, top + 0.05) if top > 0 else 0.1)
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    n = len(report["per_domain"])
    fig.suptitle(f"WorFBench ({n} domain{'s' if n != 1 else ''}): f1 vs measured tokens — Pareto frontier "
                 f"(f1_graph): {', '.join(report.get('pareto_frontier', []))}", fontsize=9)  # fmt: skip
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def quality_vs_cost(report: dict[str, Any], path: Path) -> Path:
    pts = [(n, a["cost_multiplier"], *_ci_points(a["f1_graph"])) for n, a in report["methods"].items()]
    return scatter_plot(path, pts, xlabel="measured cost multiplier (tokens generated / returned)",
                        ylabel="f1_graph (mean, 95% CI)", title="WorFBench: f1_graph vs cost per method")  # fmt: skip


def _ci_points(a: dict[str, Any]) -> tuple[float, float, float]:
    m, lo, hi = _err(a)
    return m, m - lo, m + hi


def per_domain_bars(report: dict[str, Any], path: Path) -> Path:
    """Two stacked panels (f1_chain, f1_graph): one group per domain plus ``overall``, one bar per method,
    with the bootstrap 95% interval as an error bar and the mean written above each bar (a 0 shows as
    ``0``, not as a missing bar)."""
    plt = _plt()
    groups = [*report["per_domain"], "overall"]
    methods = list(report["methods"])
    k = max(len(methods), 1)
    width = 0.8 / k
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(2, 1, figsize=(max(8.0, 1.5 * len(groups) + 2), 8.4), dpi=110, sharex=True)
    for ax, (key, label) in zip(axes, _METRICS, strict=True):
        for s, name in enumerate(methods):
            vals, lows, highs = [], [], []
            for g in groups:
                a = report["methods"][name] if g == "overall" else report["per_domain"][g].get(name)
                m, lo, hi = _err(a[key]) if a else (math.nan, 0.0, 0.0)
                vals.append(m)
                lows.append(lo)
                highs.append(hi)
            xs = [g + (s - (k - 1) / 2) * width for g in range(len(groups))]
            shown = [v if math.isfinite(v) else 0.0 for v in vals]
            ax.bar(xs, shown, width=width, color=cmap(s % 10), label=name, yerr=[lows, highs], capsize=2,
                   error_kw={"elinewidth": 0.8, "alpha": 0.6})  # fmt: skip
            for x, v, hi in zip(xs, vals, highs, strict=True):
                text = "n/a" if not math.isfinite(v) else (f"{v:.2f}".lstrip("0") if v else "0")
                ax.text(x, (v if math.isfinite(v) else 0.0) + hi + 0.01, text, ha="center", va="bottom",
                        fontsize=5.5, rotation=90)  # fmt: skip
        ax.set_ylabel(f"{label} (mean, 95% CI)")
        ax.set_ylim(0, 1.05)
        ax.grid(True, axis="y", alpha=0.3)
        ax.axvline(len(groups) - 1.5, color="grey", lw=0.6, ls=":")
    axes[1].set_xticks(range(len(groups)))
    axes[1].set_xticklabels(groups, fontsize=8)
    per = report["config"].get("limit_per_domain")
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=7, ncol=min(k, 4), loc="upper center",
               bbox_to_anchor=(0.5, 0.965))  # fmt: skip
    fig.suptitle(f"WorFBench per domain (up to {per} records each) and overall", fontsize=10, y=0.99)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path

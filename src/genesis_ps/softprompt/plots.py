"""PNG plots of a run: stage-2 loss curves (relative to each pair's random baseline) and the K sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_plots"]

_HEALTH_COLOURS = {"healthy": "tab:green", "oscillating": "tab:orange", "flat": "tab:gray", "diverging": "tab:red"}


def _curves(result: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    cfg = result["config"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    seen: set[str] = set()
    for rec in result["pairs"]:
        s2 = rec.get("stage2")
        if not s2:
            continue
        b = rec["baselines"]
        rand = cfg["weight_q"] * b["random_q"] + cfg["weight_a"] * b["random_a"]
        best = s2["restarts"][s2["best"]]
        curve = [x / rand for x in best["curve"]]
        if not curve:
            continue
        h = best["health"]
        ax.plot(range(1, len(curve) + 1), curve, color=_HEALTH_COLOURS.get(h, "k"), alpha=0.45, lw=1,
                label=None if h in seen else h)
        seen.add(h)
    ax.axhline(0.3, color="k", ls="--", lw=0.8, label="0.3 x random (the rule is applied per target)")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("Adam step")
    ax.set_ylabel("joint training loss / random-embedding baseline")
    ax.set_title(f"Stage 2 loss curves, best restart per pair (K={cfg['k']}, {result['meta'].get('dataset', '')})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sweep(result: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    rows = result["summary"]["stage4"]["k_sweep"]
    ks = [r["k"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(ks, [r["convergence_rate"] for r in rows], "o-", label="convergence rate")
    ax.plot(ks, [r["pass_rate"] for r in rows], "s-", label="greedy pass rate (Q and A exact)")
    ax.plot(ks, [r["teacher_forced_exact_rate"] for r in rows], "^:", label="teacher-forced exact rate")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("K (content vectors)")
    ax.set_ylabel("fraction of pairs")
    ax2 = ax.twinx()
    ax2.plot(ks, [r["mean_ratio_vs_random"] for r in rows], "d--", color="tab:red", label="loss / random")
    ax2.set_ylabel("mean final loss / random baseline", color="tab:red")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, loc="center right")
    n = result["summary"]["stage4"]["pairs"]
    ax.set_title(f"Convergence vs K ({n} pairs, {result['meta'].get('dataset', '')})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(result: dict[str, Any], out: Path) -> list[str]:
    """Write the plots the result has data for; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    names = []
    if any(rec.get("stage2") for rec in result["pairs"]):
        _curves(result, out / "loss_curves.png")
        names.append("loss_curves.png")
    if "stage4" in result["summary"]:
        _sweep(result, out / "convergence_vs_k.png")
        names.append("convergence_vs_k.png")
    return names

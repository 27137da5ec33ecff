"""The PNG plots of a geometry run (matplotlib's object API with the Agg canvas; no pyplot state)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["attribution", "bridge", "clusters", "oracle", "path", "variance"]


def _fig(rows: int = 1, cols: int = 1, size: tuple[float, float] = (7.0, 4.5)) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _save(fig: Any, out: Path, name: str) -> str:
    fig.savefig(out / name, dpi=110)
    return name


def _style(s: dict[str, Any]) -> dict[str, Any]:
    if s["kind"] == "temperature":
        return {"linestyle": "-", "marker": "o", "markersize": 3}
    return {"linestyle": "--" if s.get("method") == "mh" else ":", "marker": "s", "markersize": 3, "linewidth": 2}


def variance(r: dict[str, Any], out: Path) -> list[str]:
    """Variance against layer (at the longest checkpoint every setting reached) and against length."""
    settings = r["settings"]
    common = sorted(set.intersection(*(set(s["checkpoints"]) for s in settings)), key=int) if settings else []
    names = []
    if common:
        c = common[-1]
        fig, ax = _fig(1, 2, (11, 4.5))
        for s in settings:
            ax[0, 0].plot(r["layers"], s["checkpoints"][c]["variance"], label=s["label"], **_style(s))
            ax[0, 1].plot(r["layers"], s["checkpoints"][c]["relative"], label=s["label"], **_style(s))
        ax[0, 0].set(yscale="log", xlabel="residual index (0 = embeddings)", ylabel="tr Cov(z)",
                     title=f"sampling variance of z, first {c} tokens")  # fmt: skip
        ax[0, 1].set(xlabel="residual index", ylabel="tr Cov(z) / mean ‖z‖²", title="relative variance")
        ax[0, 1].legend(fontsize=8)
        names.append(_save(fig, out, "variance_vs_layer.png"))
    pos = r["layers"].index(r["plot_layer"])
    fig, ax = _fig(1, 2, (11, 4.5))
    for s in settings:
        cs = sorted(s["checkpoints"], key=int)
        xs = [int(c) for c in cs]
        for i, key in enumerate(("variance", "relative")):
            ax[0, i].plot(xs, [s["checkpoints"][c][key][pos] for c in cs], label=s["label"], **_style(s))
    ax[0, 0].set(xscale="log", xlabel="generated tokens", ylabel="tr Cov(z)",
                 title=f"variance vs length (residual index {r['plot_layer']})")  # fmt: skip
    ax[0, 1].set(xscale="log", xlabel="generated tokens", ylabel="relative variance",
                 title="relative variance vs length")  # fmt: skip
    ax[0, 1].legend(fontsize=8)
    names.append(_save(fig, out, "variance_vs_length.png"))
    return names


def oracle(r: dict[str, Any], out: Path) -> list[str]:
    fig, ax = _fig()
    a = ax[0, 0]
    a.plot(r["layers"], r["free_full"]["mean"], "o-", ms=3, label="free samples, whole text")
    if r["free_window"] is not None:
        a.plot(r["layers"], r["free_window"]["mean"], "s-", ms=3, label=f"free samples, tokens > {r['prefix_tokens']}")
    a.plot(r["layers"], r["forced_window"]["mean"], "^-", ms=3,
           label=f"oracle prefix forced ({r['prefix_fraction']:.0%}), tokens > {r['prefix_tokens']}")  # fmt: skip
    a.plot(r["layers"], r["free_spread"], ":", color="grey", label="spread among free samples")
    a.set(yscale="log", xlabel="residual index", ylabel="‖z − z*‖", title="distance to the oracle solution's latent")
    a.legend(fontsize=8)
    return [_save(fig, out, "oracle_distance.png")]


def path(r: dict[str, Any], out: Path) -> list[str]:
    pos = r["layers"].index(r["plot_layer"])
    ts = [p["t"] for p in r["points"]]
    fig, ax = _fig(2, 1, (9, 6))
    a = ax[0, 0]
    a.bar(ts, [p["D"][pos] if p["D"] is not None else 0.0 for p in r["points"]], width=max(1.0, 0.6 * r["every"]),
          color="tab:blue", label="D(t) (0: the top-1 branch ends at t)")  # fmt: skip
    a.set(ylabel=f"D(t), residual {r['plot_layer']}", title="path sensitivity along the greedy baseline")
    b = a.twinx()
    b.plot(ts, [p["entropy"] for p in r["points"]], "o-", color="tab:red", label="entropy at t")
    b.set_ylabel("next-token entropy (nats)", color="tab:red")
    c = ax[1, 0]
    c.plot(r["baseline_entropy"], color="tab:red", lw=1, label="entropy")
    c.plot(r["baseline_margin"], color="tab:green", lw=1, label="top-1 − top-2 logit margin")
    for t in ts:
        c.axvline(t, color="grey", lw=0.5, ls=":")
    c.set(xlabel="token index t", ylabel="nats / logits")
    c.legend(fontsize=8)
    return [_save(fig, out, "path_sensitivity.png")]


def attribution(r: dict[str, Any], out: Path) -> list[str]:
    pts = r["points"]
    if not pts:
        return []
    fig, ax = _fig(len(pts), 1, (9, 2.6 * len(pts)))
    for i, p in enumerate(pts):
        names = list(p["contributions"])
        vals = [p["contributions"][k] for k in names]
        a = ax[i, 0]
        a.bar(range(len(vals)), vals, color=["tab:blue" if v >= 0 else "tab:orange" for v in vals])
        a.axhline(0, color="black", lw=0.5)
        a.set_xticks(range(len(vals)), [n.replace("block ", "") if n.startswith("block") else n[:3] for n in names],
                     fontsize=6)  # fmt: skip
        a.set_title(f"t={p['t']}: logit[{p['top1_text']!r}] − logit[{p['top2_text']!r}] = {p['precap_diff']:.3f} "
                    f"(Σ = {p['total']:.3f})", fontsize=9)  # fmt: skip
        a.set_ylabel("contribution")
    ax[-1, 0].set_xlabel("layer (emb = embeddings, numbers = blocks, bia = biases)")
    return [_save(fig, out, "attribution.png")]


def clusters(r: dict[str, Any], out: Path) -> list[str]:
    sets = r["sets"]
    allz = np.concatenate([np.asarray(s["z"]) for s in sets]) if sets else np.zeros((0, 2))
    if len(allz) < 3:
        return []
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2).fit(allz)
    fig, ax = _fig(1, len(sets), (4.2 * len(sets), 4))
    for i, s in enumerate(sets):
        xy = pca.transform(np.asarray(s["z"]))
        a = ax[0, i]
        rest = [j for j in range(len(xy)) if j not in s["chosen"]]
        a.scatter(xy[rest, 0], xy[rest, 1], marker="x", color="lightgrey", label="not clustered (wrong)")
        labels = s["per_k"][str(s["best_k"])]["labels"] if s["best_k"] else [0] * len(s["chosen"])
        ch = np.asarray(s["chosen"], dtype=int)
        if len(ch):
            a.scatter(xy[ch, 0], xy[ch, 1], c=labels, cmap="tab10", vmin=0, vmax=9, label="clustered")
        k = s["best_k"]
        sil = s["per_k"][str(k)]["silhouette"] if k else None
        a.set_title(f"{s['label']}: {s['clustered']}/{s['n']} clustered, K={k}" + (f", sil={sil:.2f}" if sil else ""),
                    fontsize=9)  # fmt: skip
        a.set(xlabel="PC 1", ylabel="PC 2")
    ax[0, 0].legend(fontsize=7)
    return [_save(fig, out, "clusters.png")]


def bridge(r: dict[str, Any], out: Path) -> list[str]:
    pts = [p for p in r["points"] if p["D"] is not None]
    if not pts:
        return []
    fig, ax = _fig(1, 2, (11, 4.2))
    d = np.asarray([p["D"] for p in pts])
    h = np.asarray([p["entropy"] for p in pts])
    c = np.asarray([p["changes"] for p in pts])
    sc = ax[0, 0].scatter(h, d, c=c, cmap="viridis")
    fig.colorbar(sc, ax=ax[0, 0], label="surviving MH changes in [t, t+every)")
    ax[0, 0].set(xlabel="next-token entropy at t (nats)", ylabel=f"D(t), residual {r['layer']}",
                 title=f"{r['label']}: path sensitivity vs entropy")  # fmt: skip
    ts = sorted({p["t"] for p in pts})
    mean_d = [float(np.mean([p["D"] for p in pts if p["t"] == t])) for t in ts]
    tot_c = [int(sum(p["changes"] for p in pts if p["t"] == t)) for t in ts]
    ax[0, 1].bar(ts, tot_c, width=0.6 * r["every"], color="tab:purple", alpha=0.6, label="MH changes (all chains)")
    ax[0, 1].set(xlabel="token index t", ylabel="surviving MH changes")
    b = ax[0, 1].twinx()
    b.plot(ts, mean_d, "o-", color="tab:blue")
    b.set_ylabel("mean D(t)", color="tab:blue")
    ax[0, 1].set_title("where MH changed the text, and mean D(t)")
    return [_save(fig, out, "bridge.png")]

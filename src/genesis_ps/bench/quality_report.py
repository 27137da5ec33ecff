"""Aggregation and report files of the quality benchmark (JSON, Markdown, PNG)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genesis_ps.bench.report import (
    bar_plot,
    comparisons_table,
    fmt,
    machine_info,
    markdown_table,
    mean_present,
    now_utc,
    scatter_plot,
    write_report_files,
)
from genesis_ps.bench.stats import paired_compare, wilson_interval

__all__ = ["markdown", "matched_table", "pareto_frontier", "summarise", "verdict", "write_reports"]


def _by_item(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["id"], []).append(r)
    return out


def _aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    first = [r for r in rows if r["seed_index"] == 0]
    items = _by_item(rows)
    c0 = sum(r["correct"] for r in first)
    lo, hi = wilson_interval(c0, len(first))
    passk = sum(any(r["correct"] for r in rs) for rs in items.values())
    plo, phi = wilson_interval(passk, len(items))
    tg = sum(r["tokens_generated"] for r in rows)
    tr = sum(r["tokens_returned"] for r in rows)
    return {
        "n_items": len(items),
        "n_samples": len(rows),
        "samples_per_item": len(rows) / max(len(items), 1),
        "accuracy": c0 / len(first) if first else math.nan,
        "accuracy_ci": [lo, hi],
        "mean_accuracy_all_seeds": mean_present([float(r["correct"]) for r in rows]),
        "pass_at_k": passk / len(items) if items else math.nan,
        "pass_at_k_ci": [plo, phi],
        "distinct_answers_per_item": mean_present(
            [float(len({r["extracted"] for r in rs if r["extracted"] is not None})) for rs in items.values()]
        ),
        "loglik_per_token": mean_present([r["loglik_per_token"] for r in rows]),
        "tokens_generated_mean": tg / len(rows) if rows else math.nan,
        "cost_multiplier": tg / max(tr, 1),
        "wall_s_total": sum(r["wall_s"] for r in rows),
        "wall_s_mean": mean_present([r["wall_s"] for r in rows]),
        "fallbacks": sum(1 for r in rows if r["fallback"]),
        "acceptance_rate_mean": mean_present([r.get("acceptance_rate") for r in rows]),
    }


def _acc0(rs: list[dict[str, Any]]) -> float | None:
    return next((float(r["correct"]) for r in rs if r["seed_index"] == 0), None)


_ITEM_METRICS: dict[str, Callable[[list[dict[str, Any]]], float | None]] = {
    "accuracy (seed 0)": _acc0,
    "accuracy (mean over seeds)": lambda rs: mean_present([float(r["correct"]) for r in rs]),
    "loglik_per_token": lambda rs: mean_present([r["loglik_per_token"] for r in rs]),
}


def summarise(
    rows: list[dict[str, Any]], methods: Sequence[str], *, n_items: int, seeds: int, errors: list[dict[str, Any]]
) -> dict[str, Any]:
    by_method = {m: [r for r in rows if r["method"] == m] for m in methods}
    base = "single" if by_method.get("single") else (methods[0] if methods else "")
    comparisons = []
    bi = _by_item(by_method.get(base, []))
    for m in methods:
        if m == base or not by_method[m]:
            continue
        mi = _by_item(by_method[m])
        ids = [i for i in bi if i in mi]
        for name, f in _ITEM_METRICS.items():
            raw = [(f(bi[i]), f(mi[i])) for i in ids]
            pairs = [
                (a, b) for a, b in raw if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)
            ]
            comparisons.append(
                paired_compare(
                    [a for a, _ in pairs], [b for _, b in pairs], name_a=base, name_b=m, metric=name
                ).to_dict()
            )
    matched = []
    for m in methods:
        if "[" not in m or not by_method[m]:
            continue
        power = m[m.index("[") + 1 : -1]
        if not by_method.get(power):
            continue
        pi, bi2 = _by_item(by_method[power]), _by_item(by_method[m])
        ids = [i for i in pi if i in bi2]
        f = _ITEM_METRICS["accuracy (mean over seeds)"]
        raw = [(f(bi2[i]), f(pi[i])) for i in ids]
        pairs = [(a, b) for a, b in raw if a is not None and b is not None]
        c = paired_compare([a for a, _ in pairs], [b for _, b in pairs], name_a=m, name_b=power,
                           metric="accuracy (mean over seeds)").to_dict()  # fmt: skip
        c["tokens_power"] = mean_present([float(r["tokens_generated"]) for r in by_method[power]])
        c["tokens_baseline"] = mean_present([float(r["tokens_generated"]) for r in by_method[m]])
        c["verdict"] = verdict(c)
        matched.append(c)
    agg = {m: _aggregate(by_method[m]) for m in methods if by_method[m]}
    return {
        "benchmark": "quality",
        "created_utc": now_utc(),
        "machine": machine_info(),
        "n_items": n_items,
        "seeds": seeds,
        "baseline": base,
        "methods": agg,
        "comparisons": comparisons,
        "matched_comparisons": matched,
        "pareto_frontier": pareto_frontier({n: (a["tokens_generated_mean"], a["accuracy"]) for n, a in agg.items()}),
        "errors": errors,
        "rows": rows,
    }


def verdict(c: dict[str, Any]) -> str:
    """What a paired comparison (power method minus its matched baseline) shows, and no more."""
    lo, hi = c.get("ci_low"), c.get("ci_high")
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "no data"
    if lo > 0:
        return f"{c['b']} beats {c['a']} (95% CI above 0)"
    if hi < 0:
        return f"{c['a']} beats {c['b']} (95% CI below 0)"
    return "not distinguishable (95% CI includes 0)"


def pareto_frontier(points: dict[str, tuple[float, float]]) -> list[str]:
    """Methods no other method beats on accuracy at fewer or equal measured tokens, cheapest first."""
    out: list[str] = []
    best = -math.inf
    for name, (tok, acc) in sorted(points.items(), key=lambda kv: (kv[1][0], -kv[1][1])):
        if math.isfinite(tok) and math.isfinite(acc) and acc > best:
            out.append(name)
            best = acc
    return out


def matched_table(matched: Sequence[dict[str, Any]]) -> str:
    rows = [
        [c["b"], c["a"], fmt(c["tokens_power"], 1), fmt(c["tokens_baseline"], 1), c["mean_b"], c["mean_a"],
         c["mean_diff"], f"[{fmt(c['ci_low'])}, {fmt(c['ci_high'])}]", c["p_permutation"], c["verdict"]]
        for c in matched
    ]  # fmt: skip
    return markdown_table(
        ["power method", "matched baseline", "tokens/sample (power)", "tokens/sample (baseline)", "acc. power",
         "acc. baseline", "difference", "paired bootstrap 95% CI", "p (perm.)", "what it shows"], rows,
    )  # fmt: skip


def markdown(report: dict[str, Any]) -> str:
    cfg = report.get("config", {})
    k = report.get("seeds", 1)
    lines = [f"# Sampling quality benchmark — task {cfg.get('task')} — {cfg.get('provider')}/{cfg.get('model')}", ""]
    if cfg:
        lines += [
            f"Command: `{cfg.get('command')}`  ",
            f"n = {cfg.get('n')} problems ({cfg.get('kind') or ''}, {cfg.get('shots') or 0}-shot), "
            f"α = {cfg.get('alpha')}, "
            f"max new tokens = {cfg.get('max_new_tokens')}, MH steps/block = {cfg.get('n_mcmc')}, "
            f"block = {cfg.get('block_size')}, particles = {cfg.get('n_particles')}, seeds = {k}",
            "",
        ]
    m = report.get("machine", {})
    lines += [
        f"Machine: {m.get('platform')}, {m.get('cpu_count')} CPUs, GPU: {m.get('gpu') or 'none'}; "
        f"created {report.get('created_utc')}",
        "",
    ]
    rows = []
    for name, a in report["methods"].items():
        rows.append(
            [
                name,
                f"{fmt(a['accuracy'])} [{fmt(a['accuracy_ci'][0])}, {fmt(a['accuracy_ci'][1])}]",
                a["mean_accuracy_all_seeds"],
                a["pass_at_k"],
                fmt(a["samples_per_item"], 0),
                a["distinct_answers_per_item"],
                a["loglik_per_token"],
                fmt(a["tokens_generated_mean"], 1),
                fmt(a["cost_multiplier"], 2),
                fmt(a["wall_s_total"], 1),
                a["fallbacks"],
            ]
        )
    lines += [
        "## Per method",
        "",
        markdown_table(
            [
                "method",
                "accuracy (seed 0) [Wilson 95%]",
                "mean acc.",
                f"pass@{k}",
                "samples/item",
                "distinct answers",
                "log-lik/token",
                "tokens gen.",
                "cost ×",
                "wall s",
                "fallbacks",
            ],
            rows,
        ),
        "",
    ]
    if report["comparisons"]:
        heading = f"## Paired differences against {report.get('baseline')} (same problems)"
        lines += [heading, "", comparisons_table(report["comparisons"]), ""]
    if report.get("matched_comparisons"):
        lines += [
            "## Power methods against their compute-matched baselines (same problems and seeds)",
            "",
            "Each baseline drew standard samples on each problem and seed until their measured tokens matched the "
            "power method's there (best-of-N by mean log-likelihood per token; self-consistency by majority "
            "answer). Accuracy is the mean over seeds, per problem; the difference is power minus baseline.",
            "",
            matched_table(report["matched_comparisons"]),
            "",
        ]
    if report.get("pareto_frontier"):
        lines += [f"Pareto frontier (accuracy vs measured tokens per sample): {', '.join(report['pareto_frontier'])}.",
                  ""]
    if report.get("errors"):
        lines += [f"Errors: {len(report['errors'])} (in report.json).", ""]
    return "\n".join(lines)


def write_reports(report: dict[str, Any], out_dir: str | Path) -> list[str]:
    """report.json, report.md, accuracy_vs_cost.png, accuracy.png in ``out_dir``."""
    out = Path(out_dir)
    files = write_report_files(report, out, markdown(report), drop=("rows",))
    ms = report["methods"]
    pts = [(n, a["cost_multiplier"], a["accuracy"], a["accuracy_ci"][0], a["accuracy_ci"][1]) for n, a in ms.items()]
    files.append(
        scatter_plot(
            out / "accuracy_vs_cost.png",
            pts,
            xlabel="measured cost multiplier (tokens generated / returned)",
            ylabel="accuracy, seed 0 (Wilson 95% CI)",
            title=f"{report.get('config', {}).get('task', '')}: accuracy vs cost per method",
        )
    )
    tok_pts = [(n, a["tokens_generated_mean"], a["accuracy"], a["accuracy_ci"][0], a["accuracy_ci"][1])
               for n, a in ms.items()]  # fmt: skip
    files.append(
        scatter_plot(
            out / "accuracy_vs_tokens.png",
            tok_pts,
            xlabel="measured tokens generated per problem and seed",
            ylabel="accuracy, seed 0 (Wilson 95% CI)",
            title=f"{report.get('config', {}).get('task', '')}: accuracy vs measured tokens (Pareto: "
            f"{', '.join(report.get('pareto_frontier', []))})",
            logx=False,
        )
    )
    k = report.get("seeds", 1)
    series = {
        "accuracy (seed 0)": [a["accuracy"] for a in ms.values()],
        "mean accuracy": [a["mean_accuracy_all_seeds"] for a in ms.values()],
        f"pass@{k}": [a["pass_at_k"] for a in ms.values()],
    }
    files.append(
        bar_plot(out / "accuracy.png", list(ms), series, ylabel="fraction correct", title="Accuracy per method")
    )
    return [str(f) for f in files]

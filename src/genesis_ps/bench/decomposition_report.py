"""Aggregation and report files of the decomposition benchmark (JSON, Markdown, PNG)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genesis_ps.bench.quality_report import matched_table, pareto_frontier, verdict
from genesis_ps.bench.report import (
    bar_plot,
    comparisons_table,
    fmt,
    machine_info,
    markdown_table,
    mean_present,
    now_utc,
    scatter_plot,
    write_json,
)
from genesis_ps.bench.stats import mean_ci, paired_compare

__all__ = ["COMPARED_METRICS", "markdown", "summarise", "write_reports"]

COMPARED_METRICS = ("f1_chain", "f1_graph", "quality")


def _aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    tg = sum(r["tokens_generated"] for r in rows)
    tr = sum(r["tokens_returned"] for r in rows)
    out: dict[str, Any] = {"n": n}
    for key in ("f1_chain", "f1_graph"):
        m, lo, hi = mean_ci([r[key] for r in rows])
        out[key] = {"mean": m, "ci_low": lo, "ci_high": hi}
    out.update(
        parse_rate=mean_present([float(r["parse_ok"]) for r in rows]),
        valid_rate=mean_present([float(r["valid"]) for r in rows]),
        strict_worfbench_parse_rate=mean_present([float(r["strict_worfbench_parse"]) for r in rows]),
        quality=mean_present([r["quality"] for r in rows]),
        tokens_generated_mean=tg / n if n else math.nan,
        cost_multiplier=tg / max(tr, 1),
        latency_s_mean=mean_present([r["latency_s"] for r in rows]),
        power_fallbacks=sum(len(r["generation_fallbacks"]) for r in rows),
        acceptance_rate_mean=mean_present([r.get("acceptance_rate") for r in rows]),
    )
    return out


def summarise(
    rows: list[dict[str, Any]], methods: Sequence[str], *, errors: list[dict[str, Any]], skipped: list[dict[str, str]]
) -> dict[str, Any]:
    """Per method, per domain × method, and paired comparisons of each method against the first."""
    by_method = {m: [r for r in rows if r["method"] == m] for m in methods}
    domains = sorted({r["domain"] for r in rows})
    per_domain = {
        d: {m: _aggregate([r for r in by_method[m] if r["domain"] == d]) for m in methods if by_method[m]}
        for d in domains
    }
    comparisons = []
    base = methods[0] if methods else None
    for m in methods[1:]:
        a = {r["id"]: r for r in by_method[base or ""]}
        b = {r["id"]: r for r in by_method[m]}
        ids = [i for i in a if i in b]
        for metric in COMPARED_METRICS:
            pairs = [(a[i][metric], b[i][metric]) for i in ids if a[i][metric] is not None and b[i][metric] is not None]
            c = paired_compare([p[0] for p in pairs], [p[1] for p in pairs], name_a=base or "", name_b=m, metric=metric)
            comparisons.append(c.to_dict())
    matched = []
    for m in methods:
        if "[" not in m or not by_method[m]:
            continue
        pw = m[m.index("[") + 1 : -1]
        a = {r["id"]: r for r in by_method[m]}
        b = {r["id"]: r for r in by_method.get(pw, [])}
        ids = [i for i in a if i in b]
        for metric in ("f1_chain", "f1_graph"):
            mc = paired_compare([a[i][metric] for i in ids], [b[i][metric] for i in ids], name_a=m, name_b=pw,
                                metric=metric).to_dict()  # fmt: skip
            row: dict[str, Any] = dict(mc)
            row["tokens_power"] = mean_present([float(b[i]["tokens_generated"]) for i in ids])
            row["tokens_baseline"] = mean_present([float(a[i]["tokens_generated"]) for i in ids])
            row["verdict"] = verdict(row)
            matched.append(row)
    agg = {m: _aggregate(by_method[m]) for m in methods if by_method[m]}
    return {
        "benchmark": "decomposition",
        "matched_comparisons": matched,
        "pareto_frontier": pareto_frontier(
            {n: (a["tokens_generated_mean"], a["f1_graph"]["mean"]) for n, a in agg.items()}
        ),
        "created_utc": now_utc(),
        "machine": machine_info(),
        "methods": agg,
        "per_domain": per_domain,
        "comparisons": comparisons,
        "errors": errors,
        "skipped_records": skipped,
        "rows": rows,
    }


def markdown(report: dict[str, Any]) -> str:
    cfg = report.get("config", {})
    lines = [f"# Decomposition benchmark (WorFBench) — {cfg.get('provider')}/{cfg.get('model')}", ""]
    if cfg:
        lines += [
            f"Command: `{cfg.get('command')}`  ",
            f"α = {cfg.get('alpha')}, MH steps/block = {cfg.get('n_mcmc')}, block = {cfg.get('block_size')}, "
            f"particles = {cfg.get('n_particles')}, max new tokens = {cfg.get('max_new_tokens')}, "
            f"matcher = {cfg.get('matcher')} @ {cfg.get('match_threshold')}"
            + (f" ({cfg['matcher_note']})" if cfg.get("matcher_note") else ""),
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
                a["n"],
                a["parse_rate"],
                a["valid_rate"],
                f"{fmt(a['f1_chain']['mean'])} [{fmt(a['f1_chain']['ci_low'])}, {fmt(a['f1_chain']['ci_high'])}]",
                f"{fmt(a['f1_graph']['mean'])} [{fmt(a['f1_graph']['ci_low'])}, {fmt(a['f1_graph']['ci_high'])}]",
                a["quality"],
                fmt(a["tokens_generated_mean"], 1),
                fmt(a["cost_multiplier"], 2),
                fmt(a["latency_s_mean"], 1),
                a["power_fallbacks"],
            ]
        )
    lines += [
        "## Per method",
        "",
        markdown_table(
            [
                "method",
                "n",
                "parse",
                "valid DAG",
                "f1_chain [95% CI]",
                "f1_graph [95% CI]",
                "quality",
                "tokens gen.",
                "cost ×",
                "latency s",
                "fallbacks",
            ],
            rows,
        ),
        "",
    ]
    if report["comparisons"]:
        lines += ["## Paired comparisons (same records)", "", comparisons_table(report["comparisons"]), ""]
    if report.get("matched_comparisons"):
        lines += [
            "## Power methods against their compute-matched baselines (same records)",
            "",
            "Each baseline drew standard samples per record until their measured tokens matched the power "
            "method's there (best-of-N by mean log-likelihood per token; self-consistency by majority parsed "
            "task list). The difference is power minus baseline.",
            "",
            matched_table(report["matched_comparisons"]).replace("acc. power", "power").replace("acc. baseline",
                                                                                                 "baseline"),
            "",
        ]
    if report.get("pareto_frontier"):
        lines += [f"Pareto frontier (f1_graph vs measured tokens per record): {', '.join(report['pareto_frontier'])}.",
                  ""]
    drow = []
    for d, ms in report["per_domain"].items():
        for name, a in ms.items():
            drow.append([d, name, a["n"], a["parse_rate"], a["f1_chain"]["mean"], a["f1_graph"]["mean"], a["quality"]])
    lines += [
        "## Per domain",
        "",
        markdown_table(["domain", "method", "n", "parse", "f1_chain", "f1_graph", "quality"], drow),
        "",
    ]
    if report.get("errors") or report.get("skipped_records"):
        lines += [
            f"Errors: {len(report.get('errors', []))}; skipped records: {len(report.get('skipped_records', []))} "
            "(reasons in report.json).",
            "",
        ]
    return "\n".join(lines)


def write_reports(report: dict[str, Any], out_dir: str | Path) -> list[str]:
    """report.json, report.md, quality_vs_cost.png, per_domain.png in ``out_dir``."""
    out = Path(out_dir)
    files = [write_json(out / "report.json", {k: v for k, v in report.items() if k != "rows"})]
    (out / "report.md").write_text(markdown(report) + "\n", encoding="utf-8")
    files.append(out / "report.md")
    pts = [
        (n, a["cost_multiplier"], a["f1_graph"]["mean"], a["f1_graph"]["ci_low"], a["f1_graph"]["ci_high"])
        for n, a in report["methods"].items()
    ]
    files.append(
        scatter_plot(
            out / "quality_vs_cost.png",
            pts,
            xlabel="measured cost multiplier (tokens generated / returned)",
            ylabel="f1_graph (mean, 95% CI)",
            title="WorFBench: quality vs cost per method",
        )
    )
    tok_pts = [
        (n, a["tokens_generated_mean"], a["f1_graph"]["mean"], a["f1_graph"]["ci_low"], a["f1_graph"]["ci_high"])
        for n, a in report["methods"].items()
    ]
    files.append(
        scatter_plot(
            out / "f1_vs_tokens.png",
            tok_pts,
            xlabel="measured tokens generated per record",
            ylabel="f1_graph (mean, 95% CI)",
            title="WorFBench: f1_graph vs measured tokens (Pareto: "
            f"{', '.join(report.get('pareto_frontier', []))})",
            logx=False,
        )
    )
    domains = list(report["per_domain"])
    series = {
        n: [report["per_domain"][d].get(n, {}).get("f1_chain", {}).get("mean", math.nan) for d in domains]
        for n in report["methods"]
    }
    files.append(
        bar_plot(
            out / "per_domain.png",
            domains,
            series,
            ylabel="f1_chain (mean)",
            title="WorFBench f1_chain per domain and method",
        )
    )
    return [str(f) for f in files]

"""The decomposition benchmark's report (JSON, Markdown, PNG), a function of ``rows.jsonl`` alone.

``rows.jsonl`` holds a ``kind: header`` line (configuration, machine, start time, skipped records and
methods), the rows (``kind: error`` for a record a method failed on), and a ``kind: footer`` line
(total wall time). :func:`report_from_file` rebuilds the same report the run wrote; ``genesis-ps bench
decomposition --regenerate DIR`` rewrites DIR's files from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genesis_ps.bench.decomposition_stats import CLAIM, MIN_PAIRED_N, summarise
from genesis_ps.bench.report import comparisons_table, fmt, markdown_table, write_report_files
from genesis_ps.errors import ConfigError

__all__ = ["markdown", "report_from_file", "report_from_lines", "write_reports"]


def report_from_lines(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The report of a run whose ``rows.jsonl`` lines are ``lines`` (header first)."""
    if not lines or lines[0].get("kind") != "header":
        raise ConfigError("rows", "rows.jsonl must start with the run's header line (kind: header)")
    head = lines[0]
    rows = [ln for ln in lines[1:] if "kind" not in ln]
    errors = [ln for ln in lines[1:] if ln.get("kind") == "error"]
    footer = next((ln for ln in lines[1:] if ln.get("kind") == "footer"), {})
    names = list(head["names"])
    tilt_pairs = {m: m.removesuffix("-tilt") for m in names if m.endswith("-tilt") and "[" not in m}
    report: dict[str, Any] = {"benchmark": "decomposition", "created_utc": head["created_utc"],
                              "machine": head["machine"], "config": head["config"]}  # fmt: skip
    report.update(summarise(rows, names, tilt_pairs))
    report.update(errors=errors, skipped_records=head["skipped_records"], skipped_methods=head["skipped_methods"],
                  wall_s=footer.get("wall_s"), complete=bool(footer), rows=rows)  # fmt: skip
    return report


def report_from_file(path: str | Path) -> dict[str, Any]:
    """:func:`report_from_lines` of a ``rows.jsonl`` file (ConfigError naming ``rows`` if unreadable)."""
    p = Path(path)
    try:
        lines = [json.loads(ln) for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError("rows", f"cannot read {p}: {e}") from e
    return report_from_lines(lines)


def _ci(a: dict[str, Any]) -> str:
    return f"{fmt(a['mean'])} [{fmt(a['ci_low'])}, {fmt(a['ci_high'])}]"


def _method_table(ms: dict[str, Any]) -> str:
    rows = [[n, a["n"], a["parse_rate"], _ci(a["f1_chain"]), _ci(a["f1_graph"]), a["quality"],
             fmt(a["tokens_generated_mean"], 1), fmt(a["cost_multiplier"], 2), fmt(a["latency_s_mean"], 1),
             fmt(a["wall_s_total"], 0), a["accepted_any_rate"], a["power_fallbacks"]]
            for n, a in ms.items()]  # fmt: skip
    return markdown_table(["method", "n", "parse", "f1_chain [95% CI]", "f1_graph [95% CI]", "quality",
                           "tokens/record", "cost ×", "s/record", "wall s", "MH moved", "fallbacks"], rows)  # fmt: skip


def _paired_table(cs: list[dict[str, Any]], *, claim: bool = False, scope: bool = False) -> str:
    rows = []
    for c in cs:
        ci = f"[{fmt(c.get('ci_low'))}, {fmt(c.get('ci_high'))}]" if "ci_low" in c else "—"
        row = ([c["scope"]] if scope else []) + [f"{c['b']} − {c['a']}", c["metric"], c["n"], c.get("mean_b"),
                                                  c.get("mean_a"), c.get("mean_diff"), ci, c.get("p_permutation")]
        if claim:
            rel = f"{fmt(c.get('relative_diff'), 2)} [{fmt(c.get('rel_ci_low'), 2)}, {fmt(c.get('rel_ci_high'), 2)}]"
            row += [fmt(c.get("tokens_power"), 1), fmt(c.get("tokens_baseline"), 1), rel, c.get("claim", "—")]
        rows.append([*row, c["verdict"]])
    head = (["domain"] if scope else []) + ["difference", "metric", "n", "mean b", "mean a", "b − a",
                                            "paired bootstrap 95% CI", "p (perm.)"]  # fmt: skip
    if claim:
        head += ["tokens b", "tokens a", "relative (b/a − 1) [95% CI]", f"vs +{CLAIM[0]:.0%}–{CLAIM[1]:.0%}"]
    return markdown_table([*head, "what it shows"], rows)


def markdown(report: dict[str, Any]) -> str:
    cfg = report.get("config", {})
    m = report.get("machine", {})
    avail = cfg.get("records_available") or {}
    doms = ", ".join(f"{d} ({avail.get(d, '?')} records)" for d in cfg.get("domains", []))
    lines = [f"# Decomposition benchmark (WorFBench) — {cfg.get('provider')}/{cfg.get('model')}", "",
             f"Command: `{cfg.get('command')}`  ",
             f"Domains: {doms}; "
             f"{cfg.get('limit_per_domain')} usable records per domain, pick = {cfg.get('pick')}.  ",
             f"α = {cfg.get('alpha')}, MH steps/block = {cfg.get('n_mcmc')}, block = {cfg.get('block_size')}, "
             f"particles = {cfg.get('n_particles')}, max new tokens = {cfg.get('max_new_tokens')}, "
             f"tilt λ = {fmt(cfg.get('tilt_lambda'))}, baseline τ = {fmt(cfg.get('baseline_temperature'))}, "
             f"matcher = {cfg.get('matcher')} @ {cfg.get('match_threshold')}"
             + (f" ({cfg['matcher_note']})" if cfg.get("matcher_note") else ""), "",
             f"Machine: {m.get('platform')}, {m.get('cpu_count')} CPUs, GPU: {m.get('gpu') or 'none'}; "
             f"started {report.get('created_utc')}, wall {fmt(report.get('wall_s'), 0)} s"
             + ("" if report.get("complete") else " (**incomplete run**: no footer line)"), ""]  # fmt: skip
    for s in report.get("skipped_methods", []):
        lines.append(f"Skipped method {s['method']}: {s['reason']}.  ")
    lines += ["## Overall, per method", "", _method_table(report["methods"]), "",
              "`s/record`: mean wall seconds per record; a baseline's is the time its N samples took to draw. "
              "`cost ×`: tokens generated / tokens returned (measured). `MH moved`: share of records on which the "
              "chain accepted at least one proposal.", ""]  # fmt: skip
    if report.get("matched_comparisons"):
        lines += ["## Power methods against their compute-matched baselines (overall, same records)", "",
                  "Each baseline drew standard samples per record until their measured tokens matched the power "
                  "method's there (best-of-N by mean log-likelihood per token; self-consistency by majority parsed "
                  "task list). b = the power method, a = the baseline.", "",
                  _paired_table(report["matched_comparisons"], claim=True), ""]  # fmt: skip
    if report.get("tilt_comparisons"):
        lines += ["## Plan-quality tilt against the untilted sampler (overall, same records and seeds)", "",
                  _paired_table(report["tilt_comparisons"]), ""]  # fmt: skip
    if report.get("comparisons"):
        lines += ["## Every method against the first listed (overall)", "",
                  comparisons_table(report["comparisons"]), ""]  # fmt: skip
    if report.get("pareto_frontier"):
        lines += [f"Pareto frontier (f1_graph vs measured tokens per record): {', '.join(report['pareto_frontier'])}.",
                  ""]  # fmt: skip
    lines += ["## Per domain", ""]
    for d, ms in report["per_domain"].items():
        lines += [f"### {d}", "", _method_table(ms), ""]
    if report.get("domain_comparisons"):
        lines += [f"## Paired tests per domain (matched baselines and tilt; tested where n ≥ {MIN_PAIRED_N})", "",
                  _paired_table(report["domain_comparisons"], scope=True), ""]  # fmt: skip
    if report.get("errors") or report.get("skipped_records"):
        lines += [f"Errors: {len(report.get('errors', []))}; records skipped while loading: "
                  f"{len(report.get('skipped_records', []))} (reasons in report.json).", ""]  # fmt: skip
    return "\n".join(lines)


def write_reports(report: dict[str, Any], out_dir: str | Path) -> list[str]:
    """report.json, report.md, f1_vs_tokens.png, quality_vs_cost.png and per_domain.png in ``out_dir``."""
    from genesis_ps.bench.decomposition_plots import f1_vs_tokens, per_domain_bars, quality_vs_cost

    out = Path(out_dir)
    files = write_report_files(report, out, markdown(report))
    files += [f1_vs_tokens(report, out / "f1_vs_tokens.png"), quality_vs_cost(report, out / "quality_vs_cost.png"),
              per_domain_bars(report, out / "per_domain.png")]  # fmt: skip
    return [str(f) for f in files]

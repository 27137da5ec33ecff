"""Aggregation and report files of the code benchmark (JSON, Markdown, PNG), built from rows alone.

:func:`build_report` reads only the header and the rows that ``rows.jsonl`` holds, so
``genesis-ps bench code --report DIR`` regenerates report.json, report.md and the plots identically.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genesis_ps.bench.report import (
    fmt,
    machine_info,
    markdown_table,
    mean_present,
    now_utc,
    write_report_files,
)
from genesis_ps.bench.stats import paired_compare, wilson_interval
from genesis_ps.errors import ConfigError

__all__ = ["build_report", "header", "markdown", "pass_at_k", "read_rows", "verdict", "write_reports"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimator of Chen et al. (2021): 1 − C(n−c, k) / C(n, k), from n samples of
    which c pass (requires 1 ≤ k ≤ n)."""
    if not 1 <= k <= n or not 0 <= c <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n and 0 <= c <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def header(cfg: Any, model: Any, skipped: dict[str, str], ids: list[str], sandbox: str) -> dict[str, Any]:
    """The first line of rows.jsonl: everything the report needs besides the rows."""
    p = cfg.params
    return {
        "kind": "header", "benchmark": "code", "created_utc": now_utc(), "machine": machine_info(),
        "sandbox": sandbox, "problems": ids, "subset": cfg.subset,
        "methods": [n for n in cfg.methods.names() if n not in skipped], "skipped_methods": skipped,
        "config": {
            "prompt_style": cfg.prompt_style, "alpha": p.alpha, "max_new_tokens": p.max_new_tokens,
            "block_size": p.block_size, "n_mcmc": p.n_mcmc, "n_particles": p.n_particles,
            "proposal_temperature": p.tau, "seeds": cfg.seeds, "seed": cfg.seed,
            "baseline_temperature": cfg.baseline_temperature, "darwin_sampler": cfg.darwin_sampler,
            "darwin_population": cfg.darwin_population, "darwin_generations": cfg.darwin_generations,
            "darwin_offspring": cfg.darwin_offspring, "timeout_s": cfg.timeout_s,
            "provider": model.provider, "model": model.model, "command": cfg.command,
        },
    }  # fmt: skip


def read_rows(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and rows of a ``rows.jsonl`` the benchmark wrote."""
    p = Path(path)
    p = p / "rows.jsonl" if p.is_dir() else p
    try:
        lines = [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError("report", f"cannot read {p}: {e}") from None
    if not lines or lines[0].get("kind") != "header":
        raise ConfigError("report", f"{p} does not start with the code benchmark's header line")
    return lines[0], lines[1:]


def _aggregate(rows: list[dict[str, Any]], ids: Sequence[str]) -> dict[str, Any]:
    by_id = {i: [r for r in rows if r["id"] == i] for i in ids}
    by_id = {i: rs for i, rs in by_id.items() if rs}
    first = [r for r in rows if r["seed_index"] == 0]
    c0 = sum(bool(r["passed"]) for r in first)
    lo, hi = wilson_interval(c0, len(first))
    n_min = min((len(rs) for rs in by_id.values()), default=0)
    pk = {f"pass@{k}": mean_present([pass_at_k(len(rs), sum(bool(r["passed"]) for r in rs), k)
                                     for rs in by_id.values()]) for k in sorted({1, n_min}) if k >= 1}  # fmt: skip
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
    return {
        "n_problems": len(by_id), "n_samples": len(rows), "samples_per_problem": len(rows) / max(len(by_id), 1),
        "passed_seed0": c0, "pass_at_1": c0 / len(first) if first else math.nan, "pass_at_1_ci": [lo, hi],
        "pass_at_k": pk, "tokens_generated_mean": mean_present([float(r["tokens_generated"]) for r in rows]),
        "wall_s_mean": mean_present([r["wall_s"] for r in rows]), "wall_s_total": sum(r["wall_s"] for r in rows),
        "score_s_mean": mean_present([r["score_s"] for r in rows]), "fallbacks": sum(1 for r in rows if r["fallback"]),
        "acceptance_rate_mean": mean_present([r.get("acceptance_rate") for r in rows]),
        "calls_mean": mean_present([r.get("calls") for r in rows]), "statuses": dict(sorted(statuses.items())),
        "ran_as": sorted({str(r["method_ran"]) for r in rows}),
    }  # fmt: skip


def _per_problem(rows: list[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, list[float]] = {}
    for r in rows:
        out.setdefault(r["id"], []).append(float(bool(r["passed"])))
    return {i: sum(v) / len(v) for i, v in out.items()}


def _compare(rows: dict[str, list[dict[str, Any]]], a: str, b: str) -> dict[str, Any]:
    pa, pb = _per_problem(rows[a]), _per_problem(rows[b])
    ids = [i for i in pa if i in pb]
    c = paired_compare([pa[i] for i in ids], [pb[i] for i in ids], name_a=a, name_b=b,
                       metric="pass rate (mean over seeds)").to_dict()  # fmt: skip
    c["tokens_a"] = mean_present([float(r["tokens_generated"]) for r in rows[a]])
    c["tokens_b"] = mean_present([float(r["tokens_generated"]) for r in rows[b]])
    c["verdict"] = verdict(c)
    return c


def verdict(c: dict[str, Any]) -> str:
    """What a paired comparison shows, and no more: a difference only where the bootstrap interval excludes
    0 *and* the paired permutation test gives p < 0.05 (a point interval from identical differences on a
    handful of problems is not evidence)."""
    lo, hi, p = c.get("ci_low"), c.get("ci_high"), c.get("p_permutation")
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "no data"
    if p is not None and p < 0.05 and (lo > 0 or hi < 0):
        return f"{c['b']} beats {c['a']} (CI above 0, p < 0.05)" if lo > 0 else \
            f"{c['a']} beats {c['b']} (CI below 0, p < 0.05)"
    return f"not distinguishable (n = {c['n']}; CI includes 0 or p >= 0.05)"


def build_report(head: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The report of one run, from its header and rows (deterministic: the same rows give the same report)."""
    samples = [r for r in rows if r.get("kind") == "sample"]
    names = [m for m in head["methods"] if any(r["method"] == m for r in samples)]
    by = {m: [r for r in samples if r["method"] == m] for m in names}
    pairs: list[tuple[str, str]] = [("single", m) for m in names if m != "single" and "single" in by]
    pairs += [(f"bon[{m}]", m) for m in names if f"bon[{m}]" in by]
    if "darwin" in by and "darwin-power" in by:
        pairs.append(("darwin", "darwin-power"))
    ids = list(head["problems"])
    grid = {m: {i: [r["passed"] for r in by[m] if r["id"] == i] for i in ids} for m in names}
    return {
        **{k: v for k, v in head.items() if k != "kind"},
        "methods": {m: _aggregate(by[m], ids) for m in names},
        "comparisons": [_compare(by, a, b) for a, b in pairs],
        "outcomes": grid,
        "errors": [r for r in rows if r.get("kind") == "error"],
        "rows": samples,
    }


def _table(report: dict[str, Any]) -> str:
    k_names = sorted({k for a in report["methods"].values() for k in a["pass_at_k"]} - {"pass@1"})
    rows = []
    for name, a in report["methods"].items():
        ci = a["pass_at_1_ci"]
        rows.append([name, f"{a['passed_seed0']}/{a['n_problems']}",
                     f"{fmt(a['pass_at_1'])} [{fmt(ci[0])}, {fmt(ci[1])}]", a["pass_at_k"].get("pass@1"),
                     *[a["pass_at_k"].get(k) for k in k_names], fmt(a["tokens_generated_mean"], 1),
                     fmt(a["calls_mean"], 1), fmt(a["wall_s_mean"], 1), a["fallbacks"], ", ".join(a["ran_as"]),
                     ", ".join(f"{s} {n}" for s, n in a["statuses"].items())])  # fmt: skip
    heads = ["method", "passed (seed 0)", "pass@1 (seed 0) [Wilson 95%]", "pass@1 (all seeds)", *k_names,
             "tokens gen./problem", "model calls", "wall s/problem", "fallbacks", "ran as",
             "sandbox outcomes"]  # fmt: skip
    return markdown_table(heads, rows)


def markdown(report: dict[str, Any]) -> str:
    cfg, m = report["config"], report["machine"]
    lines = [f"# HumanEval code benchmark — {cfg['provider']}/{cfg['model']}", "",
             f"Command: `{cfg['command']}`  ", f"Subset: {report.get('subset') or 'as selected'} — "
             f"{len(report['problems'])} problems: {', '.join(report['problems'])}", "",
             f"Prompt style {cfg['prompt_style']}; α = {cfg['alpha']}, max new tokens = {cfg['max_new_tokens']}, "
             f"block = {cfg['block_size']}, MH steps/block = {cfg['n_mcmc']}, particles = {cfg['n_particles']}, "
             f"seeds = {cfg['seeds']}, best-of-N temperature = {cfg['baseline_temperature']}. SE-Darwin: "
             f"{cfg['darwin_population']} initial + {cfg['darwin_generations']} generation(s) × "
             f"{cfg['darwin_offspring']} offspring, power operator sampler {cfg['darwin_sampler']}.", "",
             f"Machine: {m.get('platform')}, {m.get('cpu_count')} CPUs, GPU: {m.get('gpu') or 'none'}; "
             f"created {report['created_utc']}. Sandbox: {report['sandbox']}.", "",
             "## Per method", "", _table(report), ""]  # fmt: skip
    if report["skipped_methods"]:
        lines += ["Skipped: " + "; ".join(f"{k} ({v})" for k, v in report["skipped_methods"].items()) + ".", ""]
    if report["comparisons"]:
        rows = [[f"{c['b']} − {c['a']}", c["n"], fmt(c["tokens_b"], 1), fmt(c["tokens_a"], 1), c["mean_b"],
                 c["mean_a"], c["mean_diff"], f"[{fmt(c['ci_low'])}, {fmt(c['ci_high'])}]", c["p_permutation"],
                 c["verdict"]] for c in report["comparisons"]]  # fmt: skip
        lines += ["## Paired differences (same problems; per-problem pass rate over seeds)", "",
                  markdown_table(["difference", "problems", "tokens (b)", "tokens (a)", "pass b", "pass a",
                                  "mean diff.", "paired bootstrap 95% CI", "p (perm.)", "what it shows"], rows),
                  ""]  # fmt: skip
    lines += [
        "Scoring: each answer runs in the sandbox against the problem's hidden `check(entry_point)`; completion "
        "answers are cut at the HumanEval stop sequences and appended to the prompt, chat answers' fenced code "
        "runs after the prompt. bon[X] draws standard samples until their measured tokens match X's on that "
        "problem and seed and returns the one with the highest mean log-likelihood per token. SE-Darwin sees "
        "only the prompt's doctest examples while it evolves; `darwin` has the same generation budget as "
        "`darwin-power`, its power-sampling slots given to the ordinary operators (initial, then revision / "
        "refinement / recombination).", ""]
    if report["errors"]:
        lines += [f"Errors: {len(report['errors'])} (in report.json).", ""]
    return "\n".join(lines)


def _grid_plot(path: Path, report: dict[str, Any]) -> Path:
    from genesis_ps.bench.report import _plt

    plt = _plt()
    names, ids = list(report["outcomes"]), list(report["problems"])
    val = [[mean_present([float(bool(x)) for x in report["outcomes"][m].get(i, [])]) for i in ids] for m in names]
    import numpy as np

    fig, ax = plt.subplots(figsize=(max(6.0, 0.42 * len(ids) + 2.5), 0.45 * len(names) + 1.8), dpi=110)
    cmap = plt.get_cmap("RdYlGn").with_extremes(bad="lightgrey")
    grid = np.ma.masked_invalid(np.array(val, dtype=float))
    im = ax.imshow(grid, cmap=cmap, vmin=0, vmax=1, aspect="auto")
    for y, row in enumerate(val):
        for x, v in enumerate(row):
            ax.text(x, y, "–" if not math.isfinite(v) else ("pass" if v == 1 else "fail" if v == 0 else f"{v:.2f}"),
                    ha="center", va="center", fontsize=6)  # fmt: skip
    ax.set_xticks(range(len(ids)), [i.split("/")[-1] for i in ids], fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("HumanEval problem")
    ax.set_title("Per-problem outcome: share of seeds passing the hidden tests (grey: not run)", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _pass_plot(path: Path, report: dict[str, Any]) -> Path:
    """pass@1 (Wilson 95% bars) against measured tokens per problem, one marker per method, named in a legend
    outside the axes (methods at similar tokens would hide each other's labels)."""
    from genesis_ps.bench.report import _plt

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.6, 4.4), dpi=110)
    markers = "os^Dv<>PX*"
    for j, (name, a) in enumerate(report["methods"].items()):
        x, y, (lo, hi) = a["tokens_generated_mean"], a["pass_at_1"], a["pass_at_1_ci"]
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        ax.errorbar([x], [y], yerr=[[y - lo], [hi - y]], fmt=markers[j % len(markers)], capsize=4, label=name,
                    alpha=0.85)  # fmt: skip
    ax.set_xlabel("measured tokens generated per problem")
    ax.set_ylabel("pass@1, seed 0 (Wilson 95% CI)")
    ax.set_title(f"HumanEval ({len(report['problems'])} problems): pass@1 vs measured tokens", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_reports(report: dict[str, Any], out_dir: str | Path) -> list[str]:
    """report.json, report.md, pass_vs_tokens.png and outcomes.png in ``out_dir``."""
    out = Path(out_dir)
    files = write_report_files(report, out, markdown(report), drop=("rows",))
    files.append(_pass_plot(out / "pass_vs_tokens.png", report))
    files.append(_grid_plot(out / "outcomes.png", report))
    return [str(f) for f in files]

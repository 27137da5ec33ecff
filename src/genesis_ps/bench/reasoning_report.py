"""The reasoning benchmark's report: a pure function of ``rows.jsonl`` (its header line and its rows), so
:func:`regenerate` rebuilds report.json, report.md and the plots identically from a committed run.

Per method: accuracy with a Wilson 95% interval; LLM calls, requests, tokens and wall seconds per problem,
each with a bootstrap 95% interval. Paired over the same problems: the accuracy difference (bootstrap
95% interval, Newcombe's paired score interval, sign-flip permutation p) and, for every cost, the
*reduction* ``1 − Σb/Σa`` with a paired bootstrap 95% interval (problems resampled; negative means ``b``
spent more). The claim line (:func:`claim_verdict`) says no more than those intervals.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from genesis_ps.bench.reasoning_plots import scatter_xy
from genesis_ps.bench.reasoning_stats import paired_difference_ci, reduction
from genesis_ps.bench.report import fmt, machine_info, markdown_table, now_utc, write_report_files
from genesis_ps.bench.stats import mean_ci, paired_compare, wilson_interval
from genesis_ps.errors import ConfigError

__all__ = ["build_report", "claim_verdict", "header", "markdown", "regenerate", "write_reports"]

COSTS = ("model_calls", "requests", "tokens_generated", "wall_s")
CLAIM = (0.40, 0.60)
"""The design plan's claim: 40–60% fewer LLM calls at equal or better accuracy."""


def header(cfg: Any, model: Any, *, n_items: int, methods: list[str], skipped: dict[str, str]) -> dict[str, Any]:
    """The first line of ``rows.jsonl``: everything the report needs besides the rows."""
    p = cfg.params
    return {"kind": "header", "benchmark": "reasoning", "created_utc": now_utc(), "machine": machine_info(),
            "n_items": n_items, "methods": methods, "skipped_methods": skipped,
            "config": {"task": cfg.task, "limit": cfg.limit, "kind": cfg.kind if cfg.task == "arithmetic" else None,
                       "shots": cfg.shots if cfg.task == "arithmetic" else None,
                       "data": str(cfg.data) if cfg.data else None,
                       "subset": cfg.subset if cfg.task == "math500" else None, "sampler": p.method,
                       "alpha": p.alpha, "n_mcmc": p.n_mcmc, "block_size": p.block_size, "n_particles": p.n_particles,
                       "proposal_temperature": p.tau, "max_new_tokens": p.max_new_tokens,
                       "temperature": cfg.temperature, "max_iterations": cfg.sica.max_iterations,
                       "power_max_iterations": cfg.sica.power_max_iterations, "threshold": cfg.sica.threshold,
                       "critique_retries": cfg.sica.critique_retries, "baseline_temperature": cfg.baseline_temperature,
                       "seed": cfg.seed, "provider": model.provider, "model": model.model,
                       "command": cfg.command}}  # fmt: skip


def _aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n, c = len(rows), sum(bool(r["correct"]) for r in rows)
    lo, hi = wilson_interval(c, n)
    out: dict[str, Any] = {"n": n, "correct": c, "accuracy": c / n if n else math.nan, "accuracy_ci": [lo, hi]}
    for k in COSTS:
        m, mlo, mhi = mean_ci([float(r[k]) for r in rows])
        out[f"{k}_per_item"], out[f"{k}_ci"] = m, [mlo, mhi]
    out["fallbacks"] = sum(1 for r in rows if r.get("fallbacks"))
    out["stop_reasons"] = dict(sorted(Counter(str(r.get("stop_reason")) for r in rows).items()))
    out["derived_from"] = next((r["derived_from"] for r in rows if r.get("derived_from")), None)
    return out


def _pairs(names: list[str]) -> list[tuple[str, str]]:
    out = [(a, b) for b in ("sica-power", "sica-power-only") for a in ("sica", "cot") if a in names and b in names]
    return out + [(m, "sica-power") for m in names if m.endswith("[sica-power]")]


def _compare(a: str, b: str, ra: list[dict[str, Any]], rb: list[dict[str, Any]]) -> dict[str, Any]:
    """``b`` against ``a`` on the problems both answered."""
    ia, ib = {r["id"]: r for r in ra}, {r["id"]: r for r in rb}
    ids = [i for i in ia if i in ib]
    acc = paired_compare([float(ia[i]["correct"]) for i in ids], [float(ib[i]["correct"]) for i in ids],
                         name_a=a, name_b=b, metric="accuracy").to_dict()  # fmt: skip
    nlo, nhi = paired_difference_ci([bool(ia[i]["correct"]) for i in ids], [bool(ib[i]["correct"]) for i in ids])
    acc["newcombe_ci"] = [nlo, nhi]
    out: dict[str, Any] = {"a": a, "b": b, "n": len(ids), "accuracy": acc}
    for k in COSTS:
        r, lo, hi = reduction([float(ia[i][k]) for i in ids], [float(ib[i][k]) for i in ids])
        out[f"{k}_reduction"] = {"point": r, "ci": [lo, hi]}
    same = all(bool(ia[i]["correct"]) == bool(ib[i]["correct"]) for i in ids)
    out["accuracy_reading"] = accuracy_reading(nlo, nhi, a, b, same=same)
    return out


def accuracy_reading(lo: float, hi: float, a: str, b: str, *, same: bool = False) -> str:
    """What the accuracy difference's interval shows, and no more."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "no data"
    if same:
        return f"the same on every problem (95% CI [{lo:+.2f}, {hi:+.2f}])"
    if lo > 0:
        return f"{b} more accurate than {a} (95% CI above 0)"
    if hi < 0:
        return f"{b} less accurate than {a} (95% CI below 0)"
    return f"not distinguishable (95% CI [{lo:+.2f}, {hi:+.2f}] includes 0)"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if math.isfinite(x) else "—"


def claim_verdict(c: dict[str, Any]) -> dict[str, str]:
    """Status (``supported`` / ``calls only`` / ``refuted`` / ``not established``) and one sentence, for
    "``b`` makes 40–60% fewer LLM calls than ``a`` at equal or better accuracy" — no stronger than the
    intervals: fewer calls holds when the whole interval is at or above 40%; "equal or better" holds only
    when the accuracy interval does not reach below 0."""
    calls, acc = c["model_calls_reduction"], c["accuracy"]
    r, (lo, hi) = calls["point"], calls["ci"]
    alo, ahi = acc["newcombe_ci"]
    if not all(math.isfinite(v) for v in (r, lo, hi, alo, ahi)):
        return {"status": "not established", "text": "no data"}
    calls_text = f"{_pct(r)} fewer LLM calls [95% CI {_pct(lo)}, {_pct(hi)}]"
    if lo > CLAIM[1]:
        calls_text += " — above the claimed 40–60% (even fewer calls)"
    elif lo >= CLAIM[0]:
        calls_text += (
            " — inside the claimed 40–60%" if hi <= CLAIM[1] else " — at least 40% (more than 60% not excluded)"
        )
    elif hi < CLAIM[0]:
        calls_text += " — below the claimed 40%"
    else:
        calls_text += " — the interval straddles 40%: neither shown nor excluded"
    acc_text = f"accuracy {acc['mean_b']:.2f} vs {acc['mean_a']:.2f}, difference {acc['mean_diff']:+.2f} " \
               f"[Newcombe 95% CI {alo:+.2f}, {ahi:+.2f}]"  # fmt: skip
    if ahi < 0:
        status = "refuted"
        acc_text += " — worse"
    elif hi < CLAIM[0]:
        status = "refuted"
    elif max(acc["mean_a"], acc["mean_b"]) == 0:
        status = "not established"
        acc_text += " — both at zero: equal only at the floor, which says nothing about reasoning"
    elif lo >= CLAIM[0] and alo >= 0:
        status = "supported"
        acc_text += " — no loss within the interval"
    else:
        status = "calls only" if lo >= CLAIM[0] else "not established"
        acc_text += f" — a loss of up to {-alo:.2f} is not excluded" if alo < 0 else ""
    tok, req = c["tokens_generated_reduction"], c["requests_reduction"]
    cost = (f"meanwhile tokens ×{1 - tok['point']:.2f} [{1 - tok['ci'][1]:.2f}, {1 - tok['ci'][0]:.2f}] and "
            f"provider requests ×{1 - req['point']:.2f} [{1 - req['ci'][1]:.2f}, {1 - req['ci'][0]:.2f}]")  # fmt: skip
    return {"status": status, "text": f"{c['b']} vs {c['a']} (n = {c['n']}): {calls_text}; {acc_text}; {cost}."}


def build_report(head: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The report of one run, from its header and rows only."""
    results = [r for r in rows if r.get("kind") != "error"]
    errors = [r for r in rows if r.get("kind") == "error"]
    by = {m: [r for r in results if r["method"] == m] for m in head["methods"]}
    names = [m for m in head["methods"] if by[m]]
    comparisons = [_compare(a, b, by[a], by[b]) for a, b in _pairs(names)]
    claims = [{"a": c["a"], "b": c["b"], **claim_verdict(c)} for c in comparisons
              if c["a"] == "sica" and c["b"].startswith("sica-power")]  # fmt: skip
    return {"benchmark": "reasoning", "created_utc": head["created_utc"], "machine": head["machine"],
            "config": head["config"], "n_items": head["n_items"], "methods": {m: _aggregate(by[m]) for m in names},
            "comparisons": comparisons, "claim": claims, "skipped_methods": head["skipped_methods"],
            "errors": errors, "rows": rows}  # fmt: skip


def regenerate(directory: str | Path) -> dict[str, Any]:
    """Rebuild report.json, report.md and the plots in ``directory`` from its ``rows.jsonl``."""
    path = Path(directory) / "rows.jsonl"
    try:
        lines = [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError("dir", f"cannot read {path}: {e}") from e
    if not lines or not isinstance(lines[0], dict) or lines[0].get("kind") != "header":
        raise ConfigError("dir", f"{path} does not start with a reasoning-benchmark header line")
    report = build_report(lines[0], lines[1:])
    report["files"] = write_reports(report, directory)
    return report


def _ci(v: float, ci: list[float], d: int = 2) -> str:
    return f"{fmt(v, d)} [{fmt(ci[0], d)}, {fmt(ci[1], d)}]"


def _red(x: dict[str, Any]) -> str:
    return f"{_pct(x['point'])} [{_pct(x['ci'][0])}, {_pct(x['ci'][1])}]"


def markdown(report: dict[str, Any]) -> str:
    cfg, m = report["config"], report["machine"]
    subset = f"{cfg['kind']}, {cfg['shots']}-shot" if cfg["task"] == "arithmetic" else f"subset {cfg['subset']}"
    lines = [f"# Reasoning benchmark — {cfg['task']} — {cfg['provider']}/{cfg['model']}", "",
             f"Command: `{cfg['command']}`  ",
             f"n = {report['n_items']} problems ({subset}); plain generations at temperature {cfg['temperature']}; "
             f"power pass: {cfg['sampler']}, α = {cfg['alpha']}, {cfg['n_mcmc']} MH steps/block, block "
             f"{cfg['block_size']}, proposal τ = {fmt(cfg['proposal_temperature'])}; max new tokens per call = "
             f"{cfg['max_new_tokens']}; SICA: up to {cfg['max_iterations']} answers (iterative), "
             f"{cfg['power_max_iterations']} (power), threshold {cfg['threshold']}; baselines at temperature "
             f"{cfg['baseline_temperature']}; seed {cfg['seed']}.  ",
             f"Machine: {m.get('platform')}, {m.get('cpu_count')} CPUs, GPU: {m.get('gpu') or 'none'}; "
             f"created {report['created_utc']}", "",
             "LLM calls: generations the method asked for (a power-sampled pass is one). Requests: what the "
             "provider served (a power pass is many). Intervals: Wilson 95% for accuracy, bootstrap 95% "
             "otherwise; the readings and the claim use the Newcombe interval of the accuracy difference (a "
             "percentile bootstrap stops at 0 when one method is never worse on a few problems).", "",
             "## Per method", ""]  # fmt: skip
    rows = [[n, f"{a['correct']}/{a['n']} = {_ci(a['accuracy'], a['accuracy_ci'])}",
             _ci(a["model_calls_per_item"], a["model_calls_ci"]), _ci(a["requests_per_item"], a["requests_ci"], 1),
             _ci(a["tokens_generated_per_item"], a["tokens_generated_ci"], 1),
             _ci(a["wall_s_per_item"], a["wall_s_ci"]),
             a["fallbacks"], ", ".join(f"{k} {v}" for k, v in a["stop_reasons"].items())]
            for n, a in report["methods"].items()]  # fmt: skip
    lines += [markdown_table(["method", "accuracy [Wilson 95%]", "LLM calls/item", "requests/item", "tokens/item",
                              "wall s/item", "fallbacks", "stop reasons"], rows), ""]  # fmt: skip
    derived = [n for n, a in report["methods"].items() if a["derived_from"]]
    if derived:
        lines += [f"{', '.join(derived)}: read off the first step of {report['methods'][derived[0]]['derived_from']} "
                  "(the same power-sampled draft); its wall time is that step's.", ""]  # fmt: skip
    if report["comparisons"]:
        rows = [[f"{c['b']} vs {c['a']}", c["n"], f"{c['accuracy']['mean_diff']:+.2f} "
                 f"[{c['accuracy']['ci_low']:+.2f}, {c['accuracy']['ci_high']:+.2f}]",
                 f"[{c['accuracy']['newcombe_ci'][0]:+.2f}, {c['accuracy']['newcombe_ci'][1]:+.2f}]",
                 c["accuracy"]["p_permutation"],
                 *(_red(c[f"{k}_reduction"]) for k in COSTS), c["accuracy_reading"]]
                for c in report["comparisons"]]  # fmt: skip
        lines += ["## Paired comparisons (same problems; reductions are 1 − Σb/Σa, negative = b spent more)", "",
                  markdown_table(["b vs a", "n", "accuracy b − a [bootstrap 95%]", "[Newcombe 95%]", "p (perm.)",
                                  "fewer calls", "fewer requests", "fewer tokens", "less wall time", "accuracy"], rows),
                  ""]  # fmt: skip
    if report["claim"]:
        lines += ["## The claim: '40–60% fewer LLM calls at equal or better accuracy'", ""]
        lines += [f"- **{c['status']}** — {c['text']}" for c in report["claim"]] + [""]
    if report["skipped_methods"]:
        lines += ["## Skipped methods", ""] + [f"- {k}: {v}" for k, v in report["skipped_methods"].items()] + [""]
    if report["errors"]:
        lines += [f"Errors: {len(report['errors'])} (in report.json)", ""]
    return "\n".join(lines)


def write_reports(report: dict[str, Any], out_dir: str | Path) -> list[str]:
    """report.json, report.md, accuracy_vs_calls.png and accuracy_vs_tokens.png in ``out_dir``."""
    out = Path(out_dir)
    files = write_report_files(report, out, markdown(report))
    task = report["config"]["task"]
    for key, label, name in (
        ("model_calls", "LLM calls per problem", "accuracy_vs_calls.png"),
        ("tokens_generated", "tokens generated per problem", "accuracy_vs_tokens.png"),
    ):
        pts = [(n, a[f"{key}_per_item"], a[f"{key}_ci"], a["accuracy"], a["accuracy_ci"])
               for n, a in report["methods"].items()]  # fmt: skip
        files.append(scatter_xy(out / name, pts, xlabel=f"{label} (mean, bootstrap 95% CI)",
                                ylabel="accuracy (Wilson 95% CI)", title=f"{task}: accuracy vs {label}"))  # fmt: skip
    return [str(f) for f in files]

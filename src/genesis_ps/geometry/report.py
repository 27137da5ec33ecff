"""The run folder's ``config.yaml``, ``results.json`` and ``report.md`` (the command, the machine, the
numbers of each step and its plots)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

from genesis_ps.bench.report import machine_info, markdown_table, write_json
from genesis_ps.geometry.config import GeometryConfig

__all__ = ["write_run"]


def write_run(out: Path, cfg: GeometryConfig, validated: GeometryConfig | None, meta: dict[str, Any],
              results: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    import yaml

    dumped = yaml.safe_dump(cfg.model_dump(), sort_keys=False, allow_unicode=True)
    (out / "config.yaml").write_text(dumped, encoding="utf-8")
    doc = {"meta": meta, "machine": machine_info(), "config": cfg.model_dump(), "results": results}
    if validated is not None:
        doc["validated_config"] = validated.model_dump()
    write_json(out / "results.json", doc)
    (out / "report.md").write_text(_markdown(doc), encoding="utf-8")
    return doc


def fmt(x: Any, digits: int = 3) -> str:
    """A table cell: ``digits`` significant figures; None / NaN as an em dash."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def _pl(r: dict[str, Any]) -> int:
    return int(r["layers"].index(r["plot_layer"]))


def _variance(r: dict[str, Any]) -> list[str]:
    pos = _pl(r)
    rows = []
    for s in r["settings"]:
        for c in sorted(s["checkpoints"], key=int):
            v = s["checkpoints"][c]
            rows.append([s["label"], c, fmt(v["variance"][pos], 4), fmt(v["relative"][pos], 3), v["still_generating"],
                         fmt(s.get("cost_multiplier")), fmt(s.get("acceptance")), s["distinct_texts"],
                         fmt(s["mean_length"])])  # fmt: skip
    lines = [f"N = {r['n']} completions per setting, stride k = {r['stride']}, residual index {r['plot_layer']}.", "",
             markdown_table(["setting", "tokens", "tr Cov(z)", "relative", "still generating", "cost ×", "MH accept",
                             "distinct texts", "mean length"], rows)]  # fmt: skip
    cmp = r.get("power_vs_temperature") or []
    if cmp:
        lines += ["", "Power sampling at α against temperature 1/α (same checkpoint):", "",
                  markdown_table(["power", "temperature", "tokens", "var power", "var temp", "ratio [95% CI]",
                                  "layers power > temp", "layers CI > 1 / < 1"],
                                 [[c["power"], c["temperature"], c["checkpoint"], fmt(c["variance_power"], 4),
                                   fmt(c["variance_temperature"], 4),
                                   f"{fmt(c['ratio_at_plot_layer'])} [{fmt(c['ratio_ci95_at_plot_layer'][0])}, "
                                   f"{fmt(c['ratio_ci95_at_plot_layer'][1])}]",
                                   f"{c['layers_power_higher']}/{c['layers']}",
                                   f"{c['layers_ci_above_1']} / {c['layers_ci_below_1']}"] for c in cmp])]  # fmt: skip
    return lines


def _oracle(r: dict[str, Any]) -> list[str]:
    pos = _pl(r)
    fw = r["free_window"]
    return [f"Oracle: {r['source']} ({r['solution_tokens']} tokens; forced prefix {r['prefix_tokens']} tokens). "
            f"N = {r['n']} at T = {r['temperature']:g}; residual index {r['plot_layer']}.", "",
            markdown_table(["latent", "mean ‖z − z*‖", "sd"], [
                ["free samples, whole text", fmt(r["free_full"]["mean"][pos]), fmt(r["free_full"]["sd"][pos])],
                [f"free samples, tokens > {r['prefix_tokens']} (n={r['free_window_n']})",
                 fmt(fw["mean"][pos]) if fw else "—", fmt(fw["sd"][pos]) if fw else "—"],
                [f"oracle prefix forced, tokens > {r['prefix_tokens']}", fmt(r["forced_window"]["mean"][pos]),
                 fmt(r["forced_window"]["sd"][pos])],
                ["spread among free samples (mean pairwise)", fmt(r["free_spread"][pos]), ""]]),
            "", f"Correct: free {fmt(r['correct_rate_free'])}, forced prefix {fmt(r['correct_rate_forced'])}; "
            f"drift ratio (forced / free, after the prefix) {fmt(r.get('drift_ratio_at_plot_layer'))}."]  # fmt: skip


def _path(r: dict[str, Any]) -> list[str]:
    lines = [f"Greedy baseline of {r['baseline_length']} tokens, branch every {r['every']}, horizon {r['horizon']}; "
             f"top-1 branches reproduce the baseline: {r['all_top1_branches_reproduce_baseline']}.", "",
             markdown_table(["t", "D(t)", "entropy", "margin", "top-1", "top-2"],
                            [[p["t"], fmt(p["D"]), fmt(p["entropy"]), fmt(p["margin"]), repr(p["top1_text"]),
                              repr(p["top2_text"])] for p in r["top"]])]  # fmt: skip
    for key in ("corr_D_entropy", "corr_D_margin"):
        if key in r:
            c = r[key]
            lines.append(f"\n{key}: Spearman {fmt(c['spearman'])} (p {fmt(c['spearman_p'])}, n={c['n']})")
    return lines


def _attribution(r: dict[str, Any]) -> list[str]:
    rows = []
    for p in r["points"]:
        items = sorted(p["contributions"].items(), key=lambda kv: -abs(kv[1]))[:3]
        rows.append([p["t"], repr(p["top1_text"]), repr(p["top2_text"]), fmt(p["precap_diff"]), fmt(p["total"]),
                     f"{p['gap']:.1e}", ", ".join(f"{k} {v:+.2f}" for k, v in items)])  # fmt: skip
    return [f"From {r['source']}. The terms sum to the model's (pre-cap) logit difference up to "
            f"{r['max_gap']:.1e}.", "",
            markdown_table(["t", "top-1", "top-2", "logit diff", "Σ terms", "gap", "largest terms"], rows)]  # fmt: skip


def _clustering(r: dict[str, Any]) -> list[str]:
    rows = []
    for s in r["sets"]:
        sil = {k: v.get("silhouette") for k, v in s["per_k"].items()}
        best = s["best_k"]
        sizes = s["per_k"][str(best)]["sizes"] if best else None
        rows.append([s["label"], f"{s['correct']}/{s['n']}", fmt(s["mean_length"]), s["clustered"],
                     s["distinct_clustered_texts"],
                     fmt(s["variance"]), ", ".join(f"K={k}: {fmt(v)}" for k, v in sil.items()), best,
                     sizes])  # fmt: skip
    lines = [f"Residual index {r['layer']}; reference answer {r['answer']!r}; clustering "
             f"{'correct solutions only' if r['correct_only'] else 'all solutions'}.", "",
             markdown_table(["set", "correct", "mean length", "clustered", "distinct texts", "tr Cov(z)", "silhouette",
                             "best K",
                             "sizes"], rows), ""]  # fmt: skip
    for s in r["sets"]:
        counts = Counter(repr(a) for a in s["extracted"]).most_common(4)
        lines.append(f"- {s['label']}: answers the evaluator extracted: " + ", ".join(f"{a} ×{k}" for a, k in counts))
    for t in r.get("correct_rate_tests", []):
        lines.append(f"- correct rate {t['a']} {t['a_correct']}/{t['n'][0]} vs {t['b']} {t['b_correct']}/{t['n'][1]}: "
                     f"Fisher exact p = {fmt(t['fisher_p'])}")
    for s in r["sets"]:
        for j in s.get("judge", []):
            lines.append(f"- judge on {s['label']} solutions {j['a']} vs {j['b']}: **{j['verdict']}** — "
                         f"{j['reply'][:160]}")
    if r["judge"] is None:
        lines.append("\nNo judge was configured (clustering.judge).")
    return lines


def _bridge(r: dict[str, Any]) -> list[str]:
    def c(x: dict[str, Any]) -> str:
        return f"Spearman {fmt(x['spearman'])} (p {fmt(x['spearman_p'])}), Pearson {fmt(x['pearson'])}, n={x['n']}"

    return [f"{r['label']}, {r['chains']} chains: {r['proposals']} proposals, "
            f"{r['accepted_changes']} accepted changes, "
            f"{r['surviving_changes']} whose context survives to the final text.", "",
            f"- D(t) vs MH changes: {c(r['corr_D_changes'])}",
            f"- entropy vs MH changes: {c(r['corr_entropy_changes'])}",
            f"- D(t) vs entropy: {c(r['corr_D_entropy'])}",
            f"- mean D where MH changed the text: {fmt(r['mean_D_where_changed'])}; elsewhere: "
            f"{fmt(r['mean_D_where_unchanged'])}"]  # fmt: skip


_SECTIONS = {"variance": ("1. Sampling variance vs layer and length", _variance),
             "oracle": ("2. Distance to the oracle, and off-policy drift", _oracle),
             "path": ("3. Path sensitivity", _path),
             "attribution": ("4. Layer attribution at bifurcations", _attribution),
             "clustering": ("5. Solution clustering", _clustering),
             "bridge": ("6. Path sensitivity vs MH's accepted cuts", _bridge)}  # fmt: skip


def _markdown(doc: dict[str, Any]) -> str:
    m, mach = doc["meta"], doc["machine"]
    lines = ["# Sampling-geometry run", "", f"Command: `{m['command']}`", "",
             f"Machine: {mach['platform']}, {mach['cpu_count']} CPUs, torch {mach.get('torch')} "
             f"({mach.get('torch_threads')} threads), GPU {mach['gpu']}; device {m['device']}.", "",
             f"Model: {m['model']} ({m['n_blocks']} blocks, context {m['context']}). "
             f"Prompt ({m['prompt_tokens']} tokens): "
             f"{m['prompt']!r}. Load {m['load_s']} s; steps {m['step_s']} s; wall {m['wall_s']} s."]  # fmt: skip
    if m["dry_run"]:
        lines += ["", "**Dry run**: the configuration was validated, then every step ran on a tiny random Llama with "
                  "minimal lengths; the numbers exercise the code and mean nothing about language."]  # fmt: skip
    lines += ["", "Power-sampled texts come from the package's samplers; their hidden states are read by one "
              "teacher-forced forward of the returned tokens. Temperature samples are pooled from the forwards "
              "that generate them."]  # fmt: skip
    for name, r in doc["results"].items():
        title, fn = _SECTIONS[name]
        lines += ["", f"## {title}", "", *fn(r), ""]
        lines += [f"![{p}]({p})" for p in r.get("plots", [])]
    return "\n".join(lines) + "\n"

"""``report.md``: the dataset-level tables of a run, every figure read from its ``results.json``."""

from __future__ import annotations

from pathlib import Path
from statistics import mean
from typing import Any

from genesis_ps.softprompt.summary import LEVELS

__all__ = ["render_report", "write_report"]


def _f(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _dataset_rows(s: dict[str, Any]) -> list[str]:
    rows = [
        ("pairs", s["pairs"]),
        ("convergence rate (Q and A)", _pct(s["convergence_rate"])),
        ("convergence rate by the 0.3 x random rule alone", _pct(s.get("convergence_rate_random_rule"))),
        ("Q / A convergence rate", f"{_pct(s['q_convergence_rate'])} / {_pct(s['a_convergence_rate'])}"),
        ("mean final joint loss / random baseline", _f(s["mean_ratio_vs_random"])),
        ("mean final L(Q) / L(A) (nats/token)", f"{_f(s['mean_final_q'])} / {_f(s['mean_final_a'])}"),
        ("Q share of the final joint loss (balance)", _f(s["q_share_of_loss"])),
        ("teacher-forced exact (argmax right at every position)", _pct(s["teacher_forced_exact_rate"])),
        ("health (healthy / oscillating / flat / diverging)", " / ".join(str(v) for v in s["health"].values())),
        ("mean steps (first step greedy-exact)", f"{_f(s['mean_steps'], 1)} ({_f(s['mean_steps_to_exact'], 1)})"),
    ]
    if "verdicts" in s:
        v = s["verdicts"]
        rows += [
            ("greedy pass / partial / fail", f"{v['pass']} / {v['partial']} / {v['fail']}"),
            ("pass rate among converged", _pct(s["pass_rate_converged"])),
            ("greedy exact Q / A", f"{_pct(s['q_exact_rate'])} / {_pct(s['a_exact_rate'])}"),
            ("mean token F1 Q / A", f"{_f(s['mean_q_f1'])} / {_f(s['mean_a_f1'])}"),
            ("level reached", f"**{s['level']}**"),
        ]
    return ["| measure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]


def _ablation_table(rows: list[tuple[str, dict[str, Any]]], timing: dict[str, dict[str, float]]) -> list[str]:
    """``s / restart``: the measured optimisation seconds of the stage the row's restarts ran in, divided by
    its restarts (restarts share batched forwards, so this is their amortised cost)."""
    out = ["| setting | converged | converged (0.3x random rule) | teacher-forced exact | greedy pass | "
           "loss / random | mean steps | s / restart |", "|---|---|---|---|---|---|---|---|"]
    for name, s in rows:
        t = timing.get(s.get("timing", ""))
        per = t["seconds"] / t["restarts"] if t and t["restarts"] else None
        out.append(f"| {name} | {_pct(s['convergence_rate'])} | {_pct(s.get('convergence_rate_random_rule'))} | "
                   f"{_pct(s['teacher_forced_exact_rate'])} | {_pct(s.get('pass_rate'))} | "
                   f"{_f(s['mean_ratio_vs_random'])} | {_f(s['mean_steps'], 1)} | {_f(per, 1)} |")
    return out


def render_report(r: dict[str, Any]) -> str:
    m, c, s = r["meta"], r["config"], r["summary"]
    lines = [f"# Soft-prompt optimisation: {m.get('dataset', 'pairs')}", ""]
    if m.get("command"):
        lines += [f"Command: `{m['command']}`", ""]
    n_reused = m.get("resumed_restarts")
    reused = f" (it reused {n_reused} finished restarts from vectors.pt)" if n_reused else ""
    lines += [f"Model: {m['model']}. Machine: {m['machine']}. Wall time of this invocation {m['wall_seconds']:.0f} s"
              f"{reused}.",
              f"Settings: K={c['k']}, restarts={c['restarts']}, steps<={c['steps']}, lr={c['lr']} ({c['schedule']}), "
              f"patience={c['patience']}, stop-loss={c['stop_loss']}, mode={c['mode']}, "
              f"progressive={c['progressive']}, "
              f"weights Q/A={c['weight_q']}/{c['weight_a']}, first-success={c['first_success']}, seed={c['seed']}.", ""]
    for note in m.get("notes", []):
        lines.append(f"- {note}")
    if m.get("notes"):
        lines.append("")
    b = [p["baselines"] for p in r["pairs"]]

    def avg(key: str) -> str:
        return _f(mean(x[key] for x in b))

    lines += ["## Baselines (mean over pairs, nats/token)", "", "| baseline | L(Q) | L(A) |", "|---|---|---|",
              f"| random embeddings (K={c['k']}) | {avg('random_q')} | {avg('random_a')} |",
              f"| single random token | {avg('single_token_q')} | {avg('single_token_a')} |",
              f"| full context L(A given Q as tokens) | – | {avg('full_context_a')} |", ""]
    if "stage1" in s:
        s1 = s["stage1"]
        lines += ["## Stage 1: single-target diagnostic", "",
                  f"On the first {s1['sample']} pairs: Q alone converges for {_pct(s1['q_convergence'])} "
                  f"(teacher-forced exact {_pct(s1['q_exact'])}), A alone for {_pct(s1['a_convergence'])} "
                  f"(teacher-forced exact {_pct(s1['a_exact'])}). Gate {_pct(s1['gate'])}: "
                  f"{'passed' if s1['passed_gate'] else 'NOT passed'}.", ""]
    if m.get("stopped_by_gate"):
        lines += ["The run stopped after stage 1 (decision gate).", ""]
    if "stage2" in s:
        lines += ["## Stage 2 (joint) and stage 3 (greedy decoding)", "", *_dataset_rows(s["stage2"])]
        dec = [p for p in r["pairs"] if "stage3" in p]
        if dec:
            same = sum(p["stage3"]["q_text"].strip() == p["answer"].strip() for p in dec)
            lines.append(f"| greedy decoding from [Q_mode; c*] gives the answer text | {same} of {len(dec)} |")
        lines.append("")
    if "stage4" in s:
        s4 = s["stage4"]
        lines += [f"## Stage 4: ablations on the first {s4['pairs']} pairs", "", "### K", "",
                  *_ablation_table([(f"K={row['k']}", row) for row in s4["k_sweep"]], r["timing"]), "",
                  "### Progressive schedule", "",
                  *_ablation_table([(f"progressive {k}", v) for k, v in s4["progressive"].items()], r["timing"]), ""]
        if s4.get("paraphrases"):
            p = s4["paraphrases"]
            lines += [f"### Paraphrase regulariser ({p['pairs']} pairs with paraphrases)", "",
                      *_ablation_table([("without", p["without"]), ("with", p["with"])], r["timing"]), ""]
    if r["timing"]:
        lines += ["## Throughput", "", "| optimisation | pairs | restarts | seconds | pairs / minute |",
                  "|---|---|---|---|---|"]
        lines += [f"| {k} | {t['pairs']} | {t['restarts']} | {t['seconds']:.0f} | {t['pairs_per_minute']:.2f} |"
                  for k, t in r["timing"].items()]
        lines.append("")
    lines += ["## Thresholds", "", "A level is reached when both the convergence rate and the greedy pass rate among "
              "converged pairs reach it (the package's yardstick, not a measurement):", "",
              "| level | convergence rate | pass rate among converged |", "|---|---|---|",
              *(f"| {n} | >= {_pct(a)} | >= {_pct(b)} |" for n, a, b in LEVELS), ""]
    shown = [p for p in r["pairs"] if "stage3" in p][:12]
    if shown:
        lines += ["## Examples (first pairs)", "", "| Q | A | decoded Q | decoded A | verdict |",
                  "|---|---|---|---|---|"]
        for p in shown:
            d = p["stage3"]
            cells = [p["question"], p["answer"], d["q_text"], d["a_text"]]
            cells = [x.replace("|", "\\|").replace("\n", " ")[:60] for x in cells]
            lines.append(f"| {' | '.join(cells)} | {d['verdict']} |")
        lines.append("")
    return "\n".join(lines)


def write_report(result: dict[str, Any], path: Path) -> None:
    path.write_text(render_report(result), encoding="utf-8")

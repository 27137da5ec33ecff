"""The exactness benchmark's Markdown report, its command line and the machine description."""

from __future__ import annotations

import argparse
import os
import platform
from typing import Any

__all__ = ["command_line", "machine", "markdown"]

_COLS = [
    "toy", "method", "alpha", "samples", "tv", "tv_noise_floor", "tv_low_temperature", "within_target",
    "tokens_per_sample", "unmixed_fraction", "rollouts", "seconds",
]


def machine() -> str:
    return (
        f"{platform.machine()} {platform.system()} {platform.release()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )


def command_line(cfg: Any, args: argparse.Namespace) -> str:
    return "genesis-ps bench exactness " + " ".join(
        [f"--samples {cfg.samples}", f"--seed {args.seed}", f"--n-mcmc {cfg.n_mcmc}", f"--particles {cfg.n_particles}",
         f"--imh-proposals {cfg.imh_proposals}"]
        + [f"--tps-rollouts {r}" for r in (args.tps_rollouts or [])]
        + [f"--alpha {a:g}" for a in (args.alpha or [])]
        + [f"--toy {t}" for t in (args.toy or [])]
        + [f"--method {m}" for m in (args.method or [])]
        + (["--no-large-alpha"] if args.no_large_alpha else [])
        + (["--no-effort"] if args.no_effort else [])
        + ([f"--effort-repeats {cfg.effort_repeats}"] if cfg.effort_repeats != 1 else [])
    )  # fmt: skip


def _cell(v: Any) -> str:
    return "—" if v is None else str(v)


def _table(rows: list[dict[str, Any]], cols: list[str]) -> list[str]:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in rows]
    return out


def markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    lines = [
        "# Exactness of the power samplers on enumerable toys",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {report['machine']}",
        "",
        "TV = total variation between the empirical distribution of the samples and the exact p^α. "
        "`tv_noise_floor`: expected TV of the same number of i.i.d. exact draws. `tv_low_temperature`: exact "
        "TV between token-level sampling at τ = 1/α and p^α. `within_target`: tv ≤ 1.5·floor + 0.01. "
        "`tokens_per_sample`: every token generated per returned sample. `mh_naive` regenerates to the state's "
        "own length and omits the log-length term (on the sharp and trap toys every sequence has the same "
        "length, so there it is as exact as `mh`). SMC returns one particle drawn from N weighted ones, exact "
        "only as N grows (an O(1/N) bias; see `--particles`). `tps` is an approximation by construction "
        "(token-level; every position a decision point, all candidates, the whole future as horizon here); "
        "`rollouts` is its R. `mh_change` redraws the token at each cut without the current one "
        "(`change_at_cut`); `mh_differ` proposes at each cut a suffix that differs from the current one, "
        "generated from its first difference (`moves=\"differ\"`); `mh_decision` is decision-point MH: "
        "entropy-jump cuts with `moves=\"decision\"` (differ moves, and at 30% of the steps the token before an "
        "entropy jump redrawn without the current one). `mh_decision_bt2` is the same with two block tries: "
        "each block starts from one of two draws picked by importance weight p^α/q (`block_tries=2`). "
        "`mh_adaptive` stops a block's steps after 3 unchanged steps in a row (at most "
        "N_MCMC).",
        "",
        "## Main section",
        "",
        *_table([r for r in rows if r["section"] == "main"], _COLS),
        "",
    ]
    large = [r for r in rows if r["section"] == "large_alpha"]
    if large:
        lines += [
            "## Large α (trap toy: the likeliest sequences do not start with the likeliest token)",
            "",
            "`mh` / `smc` propose at the default temperature max(1/α, 1/3); `mh_cold` / `smc_cold` at 1/α. "
            "`unmixed_fraction`: runs whose first token is the initial draw's — MH chains whose accepted moves "
            "never changed it, SMC runs whose particles all drew the same one; where that draw's first token is "
            "not p^α's, such a run cannot have mixed (the result then carries `mixing_warning`).",
            "",
            *_table(large, _COLS),
            "",
        ]
    effort = report.get("effort") or []
    if effort:
        methods = list(dict.fromkeys(e["method"] for e in effort))  # the sweep's order, mh_full first
        base = methods[0]
        n_sweeps = len(effort[0].get("sweeps") or [None])
        head = " | ".join(f"{m}: N_MCMC | {m}: tokens" + ("" if m == base else f" | {m}: saving") for m in methods)
        lines += [
            "## Effort: tokens per sample to reach the target TV (N_MCMC swept)",
            "",
            f"`saving`: fewer tokens to the target than `{base}`"
            + (" (uniform cuts, every proposal generated in full: the MH before early rejection)."
               if base == "mh_full" else ".")
            + (f" Each cell is the median of {n_sweeps} sweeps with fresh randomness (every sweep's N_MCMC/tokens "
               "is in `exactness.json`, `sweeps`)." if n_sweeps > 1 else ""),
            "",
            f"| toy | alpha | target tv | {head} |",
            "|---|---|---|" + "---|" * sum(2 if m == base else 3 for m in methods),
        ]
        keyed = {(e["toy"], e["alpha"], e["method"]): e for e in effort}
        for toy, alpha in dict.fromkeys((e["toy"], e["alpha"]) for e in effort):
            rows = [keyed.get((toy, alpha, m)) for m in methods]
            if any(r is None for r in rows):
                continue
            b = rows[0]
            assert b is not None
            cells = [str(b["target_tv"])]
            for m, r in zip(methods, rows, strict=True):
                assert r is not None
                cells += [_cell(r["n_mcmc_to_target"]), _cell(r["tokens_to_target"])]
                if m != base:
                    ok = b["tokens_to_target"] and r["tokens_to_target"]
                    cells.append(f"{1 - r['tokens_to_target'] / b['tokens_to_target']:+.0%}" if ok else "—")
            lines.append(f"| {toy} | {alpha:g} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"

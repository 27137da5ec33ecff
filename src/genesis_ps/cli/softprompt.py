"""``genesis-ps softprompt run``: joint question–answer soft-prompt optimisation (:mod:`genesis_ps.softprompt`).

Every flag and the pairs file are checked before any model loads; a pair too long for the context is
refused once the tokenizer can measure it, before anything is optimised.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from genesis_ps.errors import ConfigError

__all__ = ["register"]


def _ks(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"a comma list of integers, got {text!r}") from e


def register(sub: Any) -> None:
    p = sub.add_parser("softprompt", help="optimise soft prompts that regenerate questions and answers")
    ssub = p.add_subparsers(dest="softprompt_command", required=True, metavar="ACTION")
    r = ssub.add_parser("run", help="run the stages on (Q, A) pairs and write results.json, report.md, plots")
    r.add_argument("--pairs", required=True, help="a JSONL file of {question, answer}, or arith, or math500")
    r.add_argument("--n", type=int, default=100, help="number of pairs (default 100)")
    r.add_argument("--select", default="first", help="which pairs: first (default) or shortest by tokens")
    r.add_argument("--math500", default=None, help="path of MATH500.json (default: ../shared/benchmarks/...)")
    r.add_argument("--paraphrases", default=None, help="JSONL of {question, question_paraphrases, answer_paraphrases}")
    r.add_argument("--k", type=int, default=32, help="content vectors per pair (default 32)")
    r.add_argument("--restarts", type=int, default=5, help="random restarts per pair (default 5)")
    r.add_argument("--steps", type=int, default=500, help="most Adam steps per restart (default 500)")
    r.add_argument("--lr", type=float, default=0.1, help="Adam learning rate (default 0.1)")
    r.add_argument("--schedule", default="cosine", help="constant, cosine (default) or linear")
    r.add_argument("--patience", type=int, default=50, help="stop after this many steps without 1%% gain")
    r.add_argument("--stop-loss", type=float, default=0.1, help="stop once greedy-exact and every loss below this")
    r.add_argument("--weight-q", type=float, default=1.0, help="weight of L(Q) in the joint loss")
    r.add_argument("--weight-a", type=float, default=1.0, help="weight of L(A) in the joint loss")
    r.add_argument("--mode", default="token", help="mode vectors: token (fixed embeddings, default) or learned")
    r.add_argument("--calibration", type=int, default=8, help="pairs that learn the mode vectors (--mode learned)")
    r.add_argument("--progressive", action="store_true", help="grow each target one token at a time")
    r.add_argument("--stage", default="all", help="1, 2, 3, 4, all (default) or a comma list")
    r.add_argument("--gate", type=float, default=0.7, help="stage-1 convergence needed to go on (default 0.7)")
    r.add_argument("--sample", type=int, default=20, help="pairs in the stage-1 sample (default 20)")
    r.add_argument("--k-sweep", type=_ks, default=(4, 8, 16, 32, 64, 128), help="K values of stage 4")
    r.add_argument("--sweep-pairs", type=int, default=10, help="pairs in the stage-4 ablations (default 10)")
    r.add_argument("--batch", type=int, default=16, help="restarts per batched forward (default 16)")
    r.add_argument("--first-success", action="store_true", help="skip a pair's other restarts once one is exact")
    r.add_argument("--baseline-draws", type=int, default=3, help="random draws per baseline (default 3)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--provider", default="embedded", help="embedded (default) or local (with --model)")
    r.add_argument("--model", default=None, help="a transformers model directory (--provider local)")
    r.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when present)")
    r.add_argument("--threads", type=int, default=None, help="torch CPU threads for the run (default: torch's)")
    r.add_argument("--out", default=None, help="directory for results.json, report.md, PNGs and vectors.pt")
    r.add_argument("--resume", action="store_true", help="reuse finished restarts from OUT/vectors.pt")
    r.add_argument("--note", action="append", default=[], help="a line for the report's notes (repeatable)")
    r.add_argument("--dry-run", action="store_true", help="run on a tiny in-memory Llama (seconds; for tests)")
    r.add_argument("--json", action="store_true", help="print the summary as JSON")
    r.set_defaults(func=_run)
    rep = ssub.add_parser("report", help="re-render report.md and the plots of a run from its results.json")
    rep.add_argument("dir", help="a run's --out directory")
    rep.set_defaults(func=_report)


def _report(a: argparse.Namespace) -> int:
    from genesis_ps.softprompt.plots import write_plots
    from genesis_ps.softprompt.report import write_report

    out = Path(a.dir)
    try:
        result = json.loads((out / "results.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError("dir", f"cannot read {out / 'results.json'}: {e}") from e
    write_plots(result, out)
    write_report(result, out / "report.md")
    print(f"wrote {out / 'report.md'} and {', '.join(result['meta'].get('plots', []))}")
    return 0


def _config(a: argparse.Namespace) -> Any:
    from genesis_ps.softprompt.config import SoftPromptConfig

    return SoftPromptConfig(
        k=a.k, restarts=a.restarts, steps=a.steps, lr=a.lr, schedule=a.schedule, patience=a.patience,
        stop_loss=a.stop_loss, weight_q=a.weight_q, weight_a=a.weight_a, mode=a.mode, calibration=a.calibration,
        progressive=a.progressive, gate=a.gate, sample=a.sample, k_sweep=a.k_sweep, sweep_pairs=a.sweep_pairs,
        batch=a.batch, first_success=a.first_success, seed=a.seed, baseline_draws=a.baseline_draws,
    )


def _run(a: argparse.Namespace) -> int:
    from genesis_ps.softprompt import data
    from genesis_ps.softprompt.lm import check_provider
    from genesis_ps.softprompt.pipeline import parse_stages
    from genesis_ps.softprompt.prepare import SELECTIONS

    cfg = _config(a)
    stages = parse_stages(a.stage)
    if a.select not in SELECTIONS:
        raise ConfigError("--select", f"unknown selection {a.select!r}; choose one of {', '.join(SELECTIONS)}")
    if a.resume and not a.out:
        raise ConfigError("--resume", "needs --out DIR (the run to resume)")
    if a.threads is not None and a.threads < 1:
        raise ConfigError("--threads", f"must be an integer >= 1, got {a.threads!r}")
    if not a.dry_run:
        check_provider(a.provider, a.model)
    pairs = data.load_pairs(a.pairs, n=a.n, seed=a.seed, math500=a.math500)
    if a.paraphrases:
        pairs = data.attach_paraphrases(pairs, a.paraphrases)
    max_k = max(cfg.k, *cfg.k_sweep) if "4" in stages else cfg.k

    import torch

    threads = torch.get_num_threads()
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    try:
        return _execute(a, cfg, stages, pairs, max_k)
    finally:
        torch.set_num_threads(threads)


def _execute(a: argparse.Namespace, cfg: Any, stages: set[str], pairs: list[Any], max_k: int) -> int:
    from genesis_ps.softprompt import data
    from genesis_ps.softprompt.cli_progress import RichProgress
    from genesis_ps.softprompt.lm import open_lm, tiny_frozen
    from genesis_ps.softprompt.pipeline import run_pipeline
    from genesis_ps.softprompt.prepare import prepare_pairs

    lm = tiny_frozen(seed=a.seed) if a.dry_run else open_lm(a.provider, model=a.model, device=a.device)
    prep = prepare_pairs(lm, pairs, n=a.n, max_k=max_k, eos=cfg.eos, select=a.select)
    meta = {"dataset": a.pairs if a.pairs in data.BUILTIN else Path(a.pairs).name, "select": a.select,
            "command": "genesis-ps " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["softprompt"] else None,
            "notes": list(a.note)}
    out = Path(a.out) if a.out else None
    with RichProgress() as progress:
        result = run_pipeline(lm, prep, cfg, stages=stages, out=out, resume=a.resume, progress=progress, meta=meta)
    if a.json:
        print(json.dumps({"summary": result["summary"], "timing": result["timing"], "meta": result["meta"]},
                         indent=1, default=float))
    else:
        from genesis_ps.softprompt.report import render_report

        print(render_report(result))
    return 0

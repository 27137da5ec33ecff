"""Stage 4: ablations on a subset (the first ``sweep_pairs`` pairs) — K, the progressive schedule, and the
paraphrase regulariser (when the pairs carry paraphrases). Each row is a full stage 2 + stage 3 on the
subset; a row whose settings equal the main run's reuses the main stage 2's restarts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from genesis_ps.softprompt.run import Runner
from genesis_ps.softprompt.summary import summarise

__all__ = ["ablations"]


def _row(runner: Runner, idx: list[int], **kw: Any) -> dict[str, Any]:
    """One ablation row; ``timing`` names the :attr:`Runner.timing` entry its restarts were timed under."""
    cfg = kw.get("cfg", runner.cfg)
    per = runner.stage2(pairs=idx, record=False, **kw)
    dec = runner.stage3(per)
    key = runner.timing_key(runner.stage2_label(cfg, paraphrases=kw.get("paraphrases", False)), kw.get("k", cfg.k))
    return {**summarise(per, dec, weight_q=cfg.weight_q, weight_a=cfg.weight_a), "timing": key}


def ablations(runner: Runner) -> dict[str, Any]:
    """``{"pairs", "k_sweep": [...], "progressive": {...}, "paraphrases": {...} | None}``."""
    cfg = runner.cfg
    idx = list(range(min(cfg.sweep_pairs, len(runner.prep.pairs))))
    sweep = []
    for k in cfg.k_sweep:
        sweep.append({"k": k, **_row(runner, idx, k=k)})
    toggled = replace(cfg, progressive=not cfg.progressive)
    prog = {
        "off" if not cfg.progressive else "on": _row(runner, idx),
        "on" if not cfg.progressive else "off": _row(runner, idx, cfg=toggled),
    }
    para = None
    with_para = [i for i in idx if runner.prep.q_para[i] or runner.prep.a_para[i]]
    if with_para:
        para = {"pairs": len(with_para), "without": _row(runner, with_para),
                "with": _row(runner, with_para, paraphrases=True)}
    return {"pairs": len(idx), "k_sweep": sweep, "progressive": prog, "paraphrases": para}

"""The whole run: which stages, in which order, the stage-1 gate, and the files it writes.

``stages`` is a set of ``"1"``–``"4"``. Stage 3 decodes stage 2's vectors, so asking for 3 runs 2 as well
(or reuses it from ``vectors.pt`` with ``resume``). With all four stages the stage-1 gate applies: when
fewer than ``gate`` of the single targets converge, the run stops after stage 1 (``"stopped_by_gate"``).
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from genesis_ps.softprompt.config import SoftPromptConfig
from genesis_ps.softprompt.lm import FrozenLM
from genesis_ps.softprompt.prepare import Prepared
from genesis_ps.softprompt.run import Progress, Runner
from genesis_ps.softprompt.summary import summarise

__all__ = ["parse_stages", "run_pipeline"]


def parse_stages(spec: str) -> set[str]:
    """``"all"`` or a comma list of 1–4; stage 3 implies 2."""
    from genesis_ps.errors import ConfigError

    parts = {s.strip() for s in spec.split(",") if s.strip()}
    if parts == {"all"}:
        return {"1", "2", "3", "4"}
    if not parts or not parts <= {"1", "2", "3", "4"}:
        raise ConfigError("--stage", f"must be 1, 2, 3, 4, all or a comma list of 1-4, got {spec!r}")
    if "3" in parts:
        parts.add("2")
    return parts


def _machine() -> str:
    import os

    import torch

    dev = f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "CPU only"
    return f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, {dev}"


def run_pipeline(
    lm: FrozenLM,
    prep: Prepared,
    cfg: SoftPromptConfig,
    *,
    stages: set[str],
    out: Path | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``stages`` and return ``results.json``'s content; with ``out``, also write the report, plots and
    ``vectors.pt`` there."""
    t0 = time.perf_counter()
    runner = Runner(lm, prep, cfg, out=out, resume=resume, progress=progress)
    runner.baselines()
    summary: dict[str, Any] = {}
    stopped = False
    if "1" in stages:
        summary["stage1"] = s1 = runner.stage1()
        stopped = stages == {"1", "2", "3", "4"} and not s1["passed_gate"]
    if "2" in stages and not stopped:
        per = runner.stage2()
        dec = runner.stage3(per) if "3" in stages else None
        if dec is not None:
            for i, row in dec.items():
                runner.records[i]["stage3"] = row
        summary["stage2"] = summarise(per, dec, weight_q=cfg.weight_q, weight_a=cfg.weight_a)
    if "4" in stages and not stopped:
        from genesis_ps.softprompt.ablate import ablations

        summary["stage4"] = ablations(runner)
    runner.store.save()
    result: dict[str, Any] = {
        "meta": {"model": lm.name, "machine": _machine(), "stages": sorted(stages), "stopped_by_gate": stopped,
                 "resumed_restarts": runner.store.resumed, "wall_seconds": time.perf_counter() - t0,
                 **(meta or {})},
        "config": asdict(cfg),
        "summary": summary,
        "timing": runner.timing,
        "pairs": runner.records,
    }
    if out is not None:
        from genesis_ps.softprompt.plots import write_plots
        from genesis_ps.softprompt.report import write_report

        out.mkdir(parents=True, exist_ok=True)
        result["meta"]["plots"] = write_plots(result, out)
        (out / "results.json").write_text(json.dumps(result, indent=1, default=float) + "\n", encoding="utf-8")
        write_report(result, out / "report.md")
    return result

"""The learned vectors of a run, kept in ``vectors.pt`` (``torch.save``) so a run can be resumed or inspected.

The file holds ``{"model", "settings", "modes", "jobs", "timing"}``; ``timing`` is the measured
optimisation time per stage (kept so a resumed run still reports the throughput of the restarts it reuses);
``jobs`` maps ``"LABEL|k=K|PAIR_ID|r=RESTART"`` to
the finished restart (its best vectors ``(K, d)``, loss curve, stop reason, steps, first exact step,
seconds). Resuming with other optimisation settings or another model is refused: the stored vectors would
not be what the new settings produce. Within one run the store also lets a stage reuse a restart an
earlier stage already ran with the same settings (the K sweep's K = ``--k`` row reuses stage 2).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from genesis_ps.errors import ConfigError
from genesis_ps.softprompt.config import SoftPromptConfig
from genesis_ps.softprompt.optimize import JobResult

__all__ = ["VectorStore", "fingerprint"]

_OPT_FIELDS = ("restarts", "steps", "lr", "schedule", "patience", "stop_loss", "weight_q", "weight_a", "mode",
               "calibration", "first_success", "eos", "seed", "batch")


def fingerprint(cfg: SoftPromptConfig) -> dict[str, Any]:
    """The settings that change what a restart produces (``batch`` only changes the learned modes' path)."""
    d = asdict(cfg)
    return {k: d[k] for k in _OPT_FIELDS}


class VectorStore:
    """Finished restarts by key, saved to ``path`` (when given) at most every ``every`` seconds."""

    def __init__(self, path: Path | None, *, model: str, cfg: SoftPromptConfig, resume: bool, every: float = 20.0):
        self.path, self.model, self.settings, self.every = path, model, fingerprint(cfg), every
        self.jobs: dict[str, JobResult] = {}
        self.modes: Any = None
        self.timing: dict[str, dict[str, float]] = {}
        self.resumed = 0
        self._saved = time.monotonic()
        if resume and path is not None and path.is_file():
            self._load(path)

    def _load(self, path: Path) -> None:
        import torch

        data = torch.load(path, map_location="cpu", weights_only=True)
        if data.get("model") != self.model:
            raise ConfigError("--resume", f"{path} was made with model {data.get('model')!r}, not {self.model!r}")
        if data.get("settings") != self.settings:
            diff = sorted(k for k in self.settings if data.get("settings", {}).get(k) != self.settings[k])
            raise ConfigError("--resume", f"{path} was made with other settings ({', '.join(diff)} differ)")
        self.modes = data.get("modes")
        self.timing = {k: dict(v) for k, v in data.get("timing", {}).items()}
        for key, j in data.get("jobs", {}).items():
            self.jobs[key] = JobResult(
                pair=int(j["pair"]), restart=int(j["restart"]), k=int(j["k"]), curve=list(j["curve"]),
                stop=str(j["stop"]), steps=int(j["steps"]),
                exact_step=None if j["exact_step"] < 0 else int(j["exact_step"]),
                seconds=float(j["seconds"]), vectors=j["vectors"],
            )
        self.resumed = len(self.jobs)

    @staticmethod
    def key(label: str, k: int, pair_id: str, restart: int) -> str:
        return f"{label}|k={k}|{pair_id}|r={restart}"

    def get(self, key: str) -> JobResult | None:
        return self.jobs.get(key)

    def put(self, key: str, res: JobResult) -> None:
        self.jobs[key] = res
        if time.monotonic() - self._saved > self.every:
            self.save()

    def save(self) -> None:
        """Write the file now (no-op without a path)."""
        if self.path is None:
            return
        import torch

        jobs = {
            key: {"pair": r.pair, "restart": r.restart, "k": r.k, "curve": [float(x) for x in r.curve], "stop": r.stop,
                  "steps": r.steps, "exact_step": -1 if r.exact_step is None else r.exact_step,
                  "seconds": r.seconds, "vectors": r.vectors.detach().cpu()}
            for key, r in self.jobs.items()
        }
        modes = None if self.modes is None else self.modes.detach().cpu()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save({"model": self.model, "settings": self.settings, "modes": modes, "jobs": jobs,
                    "timing": self.timing}, tmp)
        tmp.replace(self.path)
        self._saved = time.monotonic()

"""Running the stages on prepared pairs: mode vectors, baselines, stage 1 (single targets), stage 2 (joint),
stage 3 (greedy decoding). Stage 4 lives in :mod:`~genesis_ps.softprompt.ablate`.

Every final loss is re-measured without gradients on the kept vectors, so a number in ``results.json``
does not depend on the batch a restart happened to run in.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from genesis_ps.errors import ConfigError
from genesis_ps.softprompt.baselines import measure_baselines
from genesis_ps.softprompt.config import SoftPromptConfig
from genesis_ps.softprompt.decode import greedy_decode, token_f1, verdict
from genesis_ps.softprompt.health import RANDOM_FACTOR, classify_curve, target_converged
from genesis_ps.softprompt.lm import FrozenLM
from genesis_ps.softprompt.loss import score_all
from genesis_ps.softprompt.optimize import Job, JobResult, Target, optimise
from genesis_ps.softprompt.prepare import Prepared
from genesis_ps.softprompt.store import VectorStore

__all__ = ["MODE_TEXTS", "NullProgress", "Progress", "Runner"]

MODE_TEXTS = ("Question", "Answer")


class Progress(Protocol):
    """What the runner tells a progress display: a stage of ``total`` restarts starts, one finishes, a note."""

    def start(self, label: str, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def note(self, text: str) -> None: ...


class NullProgress:
    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def note(self, text: str) -> None:
        pass


class Runner:
    """One run over ``prep``: holds the modes, baselines, per-pair records and stage timings."""

    def __init__(self, lm: FrozenLM, prep: Prepared, cfg: SoftPromptConfig, *, out: Path | None = None,
                 resume: bool = False, progress: Progress | None = None) -> None:
        self.lm, self.prep, self.cfg = lm, prep, cfg
        self.progress: Progress = progress or NullProgress()
        self.store = VectorStore(out / "vectors.pt" if out else None, model=lm.name, cfg=cfg, resume=resume)
        self.records: list[dict[str, Any]] = [
            {"id": p.id, "source": p.source, "question": p.question, "answer": p.answer,
             "tokens": {"q": len(prep.q[i]), "a": len(prep.a[i])}}
            for i, p in enumerate(prep.pairs)
        ]
        self.timing = self.store.timing
        """Optimisation seconds, pairs and restarts per stage label (``pairs_per_minute`` derived)."""
        self.modes = self._modes()

    # -- setup ----------------------------------------------------------------------------------
    def _modes(self) -> Any:
        import torch

        if self.store.modes is not None:
            return self.store.modes.to(self.lm.device)
        modes = torch.stack([self.lm.token_vector(t) for t in MODE_TEXTS])
        if self.cfg.mode == "token" and bool(torch.equal(modes[0], modes[1])):
            raise ConfigError("--mode", f"{MODE_TEXTS} start with the same token here; use --mode learned")
        if self.cfg.mode == "learned":
            n = min(self.cfg.calibration, len(self.prep.pairs))
            jobs = [Job(i, 0, self.joint_targets(i)) for i in range(n)]
            self.progress.start("calibrating mode vectors", len(jobs))
            optimise(self.lm.model, self.lm.embeddings, modes, jobs, replace(self.cfg, first_success=False),
                     k=self.cfg.k, learn_modes=True, on_done=lambda _r: self.progress.advance())
        self.store.modes = modes.detach()
        return self.store.modes

    def joint_targets(self, i: int, *, paraphrases: bool = False) -> tuple[Target, ...]:
        cfg, p = self.cfg, self.prep
        out = [Target("q", 0, p.q[i], cfg.weight_q), Target("a", 1, p.a[i], cfg.weight_a)]
        if paraphrases:
            out += [Target(f"q_para{j}", 0, t, cfg.weight_q) for j, t in enumerate(p.q_para[i])]
            out += [Target(f"a_para{j}", 1, t, cfg.weight_a) for j, t in enumerate(p.a_para[i])]
        return tuple(t for t in out if t.weight > 0)

    def baselines(self) -> None:
        """Measure the baselines of every pair into its record."""
        self.progress.note("measuring baselines")
        rows = measure_baselines(self.lm.model, self.lm.embeddings, self.modes, self.prep.q, self.prep.a,
                                 self.prep.q_prompt, k=self.cfg.k, seed=self.cfg.seed,
                                 draws=self.cfg.baseline_draws, batch=self.cfg.batch * 2)
        for rec, b in zip(self.records, rows, strict=True):
            rec["baselines"] = b

    # -- optimisation ---------------------------------------------------------------------------
    def run_jobs(self, label: str, jobs: list[Job], *, k: int, cfg: SoftPromptConfig | None = None) -> list[JobResult]:
        """Optimise ``jobs`` (reusing any the store holds under ``label``), timing the new ones."""
        cfg = cfg or self.cfg
        keys = [self.store.key(label, k, self.prep.pairs[j.pair].id, j.restart) for j in jobs]
        have = {i: r for i, key in enumerate(keys) if (r := self.store.get(key)) is not None}
        todo = [i for i in range(len(jobs)) if i not in have]
        self.progress.start(f"{label} (K={k})", len(jobs))
        self.progress.advance(len(have))
        t0 = time.perf_counter()
        at = {(jobs[i].pair, jobs[i].restart): keys[i] for i in todo}

        def done(r: JobResult) -> None:
            self.store.put(at[(r.pair, r.restart)], r)
            self.progress.advance()

        new = optimise(self.lm.model, self.lm.embeddings, self.modes, [jobs[i] for i in todo], cfg, k=k,
                       on_step=lambda a: self.progress.note(f"{a} restarts in the batch"), on_done=done)
        secs = time.perf_counter() - t0
        for i, r in zip(todo, new, strict=True):
            have[i] = r
        if todo:
            n_pairs = len({jobs[i].pair for i in todo})
            t = self.timing.setdefault(self.timing_key(label, k), {"seconds": 0.0, "pairs": 0, "restarts": 0})
            t["seconds"] += secs
            t["pairs"] += n_pairs
            t["restarts"] += len(todo)
            t["pairs_per_minute"] = 60 * t["pairs"] / max(t["seconds"], 1e-9)
        self.store.save()
        return [replace(have[i], pair=jobs[i].pair) for i in range(len(jobs))]

    def timing_key(self, label: str, k: int) -> str:
        """The :attr:`timing` entry of ``label`` at ``k`` (the main K carries no suffix)."""
        return label if k == self.cfg.k else f"{label} K={k}"

    @staticmethod
    def stage2_label(cfg: SoftPromptConfig, *, paraphrases: bool = False) -> str:
        return "stage2" + ("-progressive" if cfg.progressive else "") + ("-paraphrases" if paraphrases else "")

    def finals(self, jobs: list[Job], results: list[JobResult]) -> list[list[tuple[float, int]]]:
        """(loss, leading correct tokens) of each job's kept vectors on each of its targets, no gradients."""
        import torch

        prompts, targets = [], []
        for job, res in zip(jobs, results, strict=True):
            c = res.vectors.to(self.lm.device)
            for t in job.targets:
                prompts.append(torch.cat([self.modes[t.mode].unsqueeze(0), c]))
                targets.append(t.ids)
        losses, leading = score_all(self.lm.model, prompts, targets, batch=self.cfg.batch * 2)
        out, at = [], 0
        for job in jobs:
            n = len(job.targets)
            out.append(list(zip(losses[at : at + n], leading[at : at + n], strict=True)))
            at += n
        return out

    def _restart_record(self, job: Job, res: JobResult, fin: list[tuple[float, int]]) -> dict[str, Any]:
        pairs = list(zip(job.targets, fin, strict=True))
        per = {t.kind: {"loss": loss, "exact": lead >= len(t.ids)} for t, (loss, lead) in pairs}
        return {"restart": res.restart, "final": per, "joint": sum(t.weight * loss for t, (loss, _) in pairs),
                "stop": res.stop, "steps": res.steps, "exact_step": res.exact_step, "seconds": round(res.seconds, 3),
                "health": classify_curve(res.curve) if res.curve else "n/a",
                "curve": [round(x, 4) for x in res.curve]}

    def converged(self, i: int, kind: str, loss: float) -> bool:
        b = self.records[i]["baselines"]
        return target_converged(loss, b[f"random_{kind}"], b["full_context_a"] if kind == "a" else None)

    # -- stages ---------------------------------------------------------------------------------
    def stage1(self) -> dict[str, Any]:
        """Q alone and A alone on the first ``sample`` pairs; returns the stage summary with the gate."""
        n = min(self.cfg.sample, len(self.prep.pairs))
        out: dict[str, Any] = {"sample": n}
        for kind, mode in (("q", 0), ("a", 1)):
            ids = self.prep.q if kind == "q" else self.prep.a
            jobs = [Job(i, r, (Target(kind, mode, ids[i]),)) for r in range(self.cfg.restarts) for i in range(n)]
            label = f"stage1-{kind}" + ("-progressive" if self.cfg.progressive else "")
            res = self.run_jobs(label, jobs, k=self.cfg.k)
            fin = self.finals(jobs, res)
            best: dict[int, dict[str, Any]] = {}
            for job, r, f in zip(jobs, res, fin, strict=True):
                rec = self._restart_record(job, r, f)
                if job.pair not in best or rec["joint"] < best[job.pair]["joint"]:
                    best[job.pair] = rec
            conv = 0
            for i, rec in best.items():
                ok = self.converged(i, kind, rec["joint"])
                conv += ok
                self.records[i].setdefault("stage1", {})[kind] = {
                    "loss": rec["joint"], "exact": rec["final"][kind]["exact"], "converged": ok,
                    "health": rec["health"], "steps": rec["steps"], "stop": rec["stop"]}
            out[f"{kind}_convergence"] = conv / n
            out[f"{kind}_exact"] = sum(rec["final"][kind]["exact"] for rec in best.values()) / n
        out["convergence"] = (out["q_convergence"] + out["a_convergence"]) / 2
        out["gate"] = self.cfg.gate
        out["passed_gate"] = out["convergence"] >= self.cfg.gate
        return out

    def stage2(self, *, pairs: list[int] | None = None, k: int | None = None, cfg: SoftPromptConfig | None = None,
               paraphrases: bool = False, record: bool = True) -> dict[int, dict[str, Any]]:
        """Joint optimisation; per pair the restarts and the best one (lowest final joint loss), with
        convergence and health; ``record`` writes them into the pair records (the main stage 2)."""
        k = k or self.cfg.k
        cfg = cfg or self.cfg
        label = self.stage2_label(cfg, paraphrases=paraphrases)
        idx = pairs if pairs is not None else list(range(len(self.prep.pairs)))
        jobs = [Job(i, r, self.joint_targets(i, paraphrases=paraphrases)) for r in range(cfg.restarts) for i in idx]
        res = self.run_jobs(label, jobs, k=k, cfg=cfg)
        fin = self.finals(jobs, res)
        per: dict[int, dict[str, Any]] = {i: {"restarts": []} for i in idx}
        vectors: dict[int, Any] = {}
        for job, r, f in zip(jobs, res, fin, strict=True):
            rec = self._restart_record(job, r, f)
            per[job.pair]["restarts"].append(rec)
            if "best" not in per[job.pair] or rec["joint"] < per[job.pair]["restarts"][per[job.pair]["best"]]["joint"]:
                per[job.pair]["best"] = len(per[job.pair]["restarts"]) - 1
                vectors[job.pair] = r.vectors
        for i, s in per.items():
            b = s["restarts"][s["best"]]
            lq, la = b["final"]["q"]["loss"], b["final"]["a"]["loss"]
            base = self.records[i]["baselines"]
            rand = cfg.weight_q * base["random_q"] + cfg.weight_a * base["random_a"]
            s.update(final_q=lq, final_a=la, joint=b["joint"], health=b["health"], steps=b["steps"],
                     exact_step=b["exact_step"], converged_q=self.converged(i, "q", lq),
                     converged_a=self.converged(i, "a", la), ratio_vs_random=b["joint"] / rand,
                     teacher_forced_exact=b["final"]["q"]["exact"] and b["final"]["a"]["exact"])
            s["converged"] = s["converged_q"] and s["converged_a"]
            s["converged_random_rule"] = lq < RANDOM_FACTOR * base["random_q"] and la < RANDOM_FACTOR * base["random_a"]
            s["vectors"] = vectors[i]
        if record:
            for i, s in per.items():
                self.records[i]["stage2"] = {k2: v for k2, v in s.items() if k2 != "vectors"}
        return per

    def stage3(self, per: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """Greedy decoding from each pair's best vectors; EM, token F1 and the verdict."""
        import torch

        self.progress.note("greedy decoding")
        idx = sorted(per)
        out: dict[int, dict[str, Any]] = {}
        decoded = {}
        for mode, ids in ((0, self.prep.q), (1, self.prep.a)):
            prompts = [torch.cat([self.modes[mode].unsqueeze(0), per[i]["vectors"].to(self.lm.device)]) for i in idx]
            longest = max(len(ids[i]) for i in idx)
            decoded[mode] = greedy_decode(self.lm.model, prompts, max_new=longest + 2, eos=self.lm.eos,
                                          batch=self.cfg.batch * 2)
        eos = self.lm.eos
        for n, i in enumerate(idx):
            row: dict[str, Any] = {}
            for mode, name, ref in ((0, "q", self.prep.pairs[i].question), (1, "a", self.prep.pairs[i].answer)):
                toks = decoded[mode][n]
                ref_ids = [t for t in (self.prep.q if mode == 0 else self.prep.a)[i] if t != eos]
                text = self.lm.decode(toks)
                row[f"{name}_text"] = text
                row[f"{name}_exact"] = text.strip() == ref.strip()
                row[f"{name}_f1"] = token_f1(toks, ref_ids)
            row["verdict"] = verdict(row["q_exact"], row["a_exact"], row["q_f1"], row["a_f1"])
            out[i] = row
        return out

"""``genesis-ps bench exactness``: do the samplers really draw from p^α?

On toy models whose p^α is enumerable (:mod:`genesis_ps.testing.toys`), each power method runs many
independent times; the total-variation distance between the empirical distribution of the returned
sequences and the exact p^α is reported beside

* ``tv_noise_floor`` — the expected TV of the same number of i.i.d. *exact* draws (what a perfect sampler
  scores), and
* ``tv_low_temperature`` — the exact TV between token-level sampling at τ = 1/α and p^α (what plain
  low-temperature decoding would score with infinitely many samples).

Rows: ``mh`` (block-wise MH, :func:`~genesis_ps.sampling.mh.mh_chains` — the same kernel as ``run_mh``,
all chains in lockstep), ``mh_naive`` (the ablation without the stage limit and the length correction;
``--method mh_no_length_term`` / ``mh_own_length`` drop one of the two),
``smc`` and ``imh`` (``run_smc`` / ``run_imh`` once per sample), and ``low_temp`` (i.i.d. samples at
τ = 1/α). ``within_target`` is ``tv <= 1.5·floor + 0.01``.

SMC returns one particle drawn from N weighted ones, which is exact only as N → ∞: its TV carries an
O(1/N) bias that shows on the sharp toy at α = 4 (raise ``--particles`` to watch it shrink).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genesis_ps.errors import ConfigError
from genesis_ps.sampling.imh import run_imh
from genesis_ps.sampling.mh import mh_chains
from genesis_ps.sampling.params import SamplerParams
from genesis_ps.sampling.protocol import Prompt
from genesis_ps.sampling.smc import run_smc
from genesis_ps.sampling.target import Target
from genesis_ps.testing import exact
from genesis_ps.testing.toys import TOYS, ToyLM

__all__ = ["BENCH_METHODS", "ExactnessConfig", "register", "run_exactness"]

BENCH_METHODS = ("mh", "mh_naive", "smc", "imh", "low_temp")
EXTRA_METHODS = ("mh_no_length_term", "mh_own_length", "smc_anneal")
"""Optional rows (``--method``): MH with only the length term, or only the stage limit, dropped; SMC with
α annealed over two blocks."""
_MH_VARIANTS = {
    "mh": (True, True),
    "mh_naive": (False, False),
    "mh_no_length_term": (True, False),
    "mh_own_length": (False, True),
}
_PROMPT = Prompt.text("")


@dataclass(frozen=True, kw_only=True)
class ExactnessConfig:
    """What the benchmark runs (defaults keep it near a minute on 2 CPU cores)."""

    samples: int = 2000
    alphas: tuple[float, ...] = (2.0, 4.0)
    toys: tuple[str, ...] = ("sharp", "eos", "random")
    methods: tuple[str, ...] = BENCH_METHODS
    block_size: int = 2
    n_mcmc: int = 30
    """MH steps per block (mh, mh_naive)."""
    n_particles: int = 32
    imh_proposals: int = 40

    def __post_init__(self) -> None:
        for a in self.alphas:
            if not a > 0:
                raise ConfigError("alpha", f"must be > 0, got {a!r}")
        for name in ("samples", "block_size", "n_mcmc", "n_particles", "imh_proposals"):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"must be >= 1, got {getattr(self, name)!r}")


def _params(cfg: ExactnessConfig, method: str, alpha: float, t_max: int) -> SamplerParams:
    if method == "imh":
        return SamplerParams(method="imh", alpha=alpha, max_new_tokens=t_max, n_mcmc=cfg.imh_proposals)
    if method in ("smc", "smc_anneal"):
        return SamplerParams(
            method="smc", alpha=alpha, max_new_tokens=t_max, block_size=cfg.block_size, n_particles=cfg.n_particles,
            anneal_steps=2 if method == "smc_anneal" else 0,
        )
    return SamplerParams(method="mh", alpha=alpha, max_new_tokens=t_max, block_size=cfg.block_size, n_mcmc=cfg.n_mcmc)


async def draw(
    toy: ToyLM, method: str, alpha: float, t_max: int, n: int, rng: np.random.Generator, cfg: ExactnessConfig
) -> list[tuple[int, ...]]:
    """``n`` independent samples of one method."""
    target = Target(alpha)
    params = _params(cfg, method, alpha, t_max)
    if method in _MH_VARIANTS:
        stage_limit, length_term = _MH_VARIANTS[method]
        run = await mh_chains(
            toy, _PROMPT, params, n_chains=n, target=target, rng=rng, stage_limit=stage_limit, length_term=length_term
        )
        return [s.tokens for s in run.final]
    if method == "low_temp":
        segs = await toy.extend(_PROMPT, [()] * n, t_max, 1.0 / alpha, seed=int(rng.integers(2**63)))
        return [s.tokens for s in segs]
    fn = run_imh if method == "imh" else run_smc
    out = []
    for seed in rng.integers(2**63, size=n).tolist():
        r = await fn(
            toy, _PROMPT, params, target=target, rng=np.random.default_rng(seed), budget=None, evaluator=None,
            progress=None,
        )
        out.append(tuple(r.tokens))
    return out


def run_exactness(cfg: ExactnessConfig, seed: int = 0, *, log: Any = None) -> list[dict[str, Any]]:
    """Every (toy, α, method) row; see the module docstring for the columns."""
    rng = np.random.default_rng(seed)
    rows = []
    for name in cfg.toys:
        toy = TOYS[name]()
        t_max = toy.max_len + 1  # every sequence can end on EOS
        for alpha in cfg.alphas:
            p_alpha = exact.power_distribution(toy, t_max, alpha)
            floor = exact.noise_floor(p_alpha, cfg.samples, rng)
            tv_low = exact.tv_distance(exact.temperature_distribution(toy, t_max, 1.0 / alpha), p_alpha)
            for method in cfg.methods:
                t0 = time.perf_counter()
                samples = asyncio.run(draw(toy, method, alpha, t_max, cfg.samples, rng, cfg))
                tv = exact.tv_distance(exact.empirical(samples), p_alpha)
                row = {
                    "toy": name, "method": method, "alpha": alpha, "samples": len(samples),
                    "tv": round(tv, 4), "tv_noise_floor": round(floor, 4), "tv_low_temperature": round(tv_low, 4),
                    "within_target": bool(tv <= 1.5 * floor + 0.01),
                    "seconds": round(time.perf_counter() - t0, 2),
                }
                rows.append(row)
                if log is not None:
                    log(row)
    return rows


def _markdown(rows: list[dict[str, Any]], command: str, machine: str) -> str:
    cols = [
        "toy", "method", "alpha", "samples", "tv", "tv_noise_floor", "tv_low_temperature", "within_target", "seconds"
    ]
    lines = [
        "# Exactness of the power samplers on enumerable toys",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine}",
        "",
        "TV = total variation between the empirical distribution of the samples and the exact p^α. "
        "`tv_noise_floor`: expected TV of the same number of i.i.d. exact draws. `tv_low_temperature`: exact "
        "TV between token-level sampling at τ = 1/α and p^α. `within_target`: tv ≤ 1.5·floor + 0.01. "
        "`mh_naive` regenerates to the state's own length and omits the log-length term (on the sharp toy every "
        "sequence has the same length, so there it is as exact as `mh`). SMC returns one "
        "particle drawn from N weighted ones, exact only as N grows (an O(1/N) bias; see `--particles`).",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _machine() -> str:
    return (
        f"{platform.machine()} {platform.system()} {platform.release()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )


def main(args: argparse.Namespace) -> int:
    cfg = ExactnessConfig(
        samples=args.samples,
        alphas=tuple(args.alpha) if args.alpha else ExactnessConfig.alphas,
        toys=tuple(args.toy) if args.toy else ExactnessConfig.toys,
        methods=tuple(args.method) if args.method else ExactnessConfig.methods,
        n_mcmc=args.n_mcmc,
        n_particles=args.particles,
        imh_proposals=args.imh_proposals,
    )
    command = "genesis-ps bench exactness " + " ".join(
        [f"--samples {cfg.samples}", f"--seed {args.seed}", f"--n-mcmc {cfg.n_mcmc}", f"--particles {cfg.n_particles}",
         f"--imh-proposals {cfg.imh_proposals}"]
        + [f"--alpha {a:g}" for a in (args.alpha or [])]
        + [f"--toy {t}" for t in (args.toy or [])]
        + [f"--method {m}" for m in (args.method or [])]
    )
    log = None if args.json else (lambda r: print(
        f"{r['toy']:>7} α={r['alpha']:<4g} {r['method']:>17}  tv={r['tv']:.4f}  floor={r['tv_noise_floor']:.4f}  "
        f"low-temp={r['tv_low_temperature']:.4f}  {'ok ' if r['within_target'] else 'FAR'}  {r['seconds']:.1f}s",
        flush=True,
    ))
    rows = run_exactness(cfg, args.seed, log=log)
    machine = _machine()
    report = {"rows": rows, "command": command, "machine": machine}
    if args.json:
        print(json.dumps(report, indent=2))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "exactness.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "exactness.md").write_text(_markdown(rows, command, machine))
        if not args.json:
            print(f"wrote {out / 'exactness.json'} and {out / 'exactness.md'}")
    return 0


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return v


def register(bsub: Any) -> None:
    from genesis_ps.bench.options import add_common

    p = bsub.add_parser("exactness", help="TV distance of mh/smc/imh samples to the exact p^α on toy models")
    add_common(p)
    p.add_argument("--samples", type=_positive_int, default=ExactnessConfig.samples, help="samples per row")
    p.add_argument("--n-mcmc", type=_positive_int, default=ExactnessConfig.n_mcmc, help="MH steps per block")
    p.add_argument("--particles", type=_positive_int, default=ExactnessConfig.n_particles, help="SMC particles")
    p.add_argument(
        "--imh-proposals", type=_positive_int, default=ExactnessConfig.imh_proposals,
        help="IMH proposals after the first",
    )
    p.add_argument("--alpha", type=float, action="append", help="α to test (repeatable; default 2 and 4)")
    p.add_argument("--toy", choices=sorted(TOYS), action="append", help="toy to test (repeatable; default all)")
    p.add_argument(
        "--method", choices=BENCH_METHODS + EXTRA_METHODS, action="append",
        help="method (repeatable; default all but the single-correction ablations)",
    )
    p.set_defaults(func=main)

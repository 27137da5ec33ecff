"""``genesis-ps bench exactness``: do the samplers really draw from p^α?

On toy models whose p^α is enumerable (:mod:`genesis_ps.testing.toys`), each power method runs many
independent times; the total-variation distance between the empirical distribution of the returned
sequences and the exact p^α is reported beside

* ``tv_noise_floor`` — the expected TV of the same number of i.i.d. *exact* draws (what a perfect sampler
  scores), and
* ``tv_low_temperature`` — the exact TV between token-level sampling at τ = 1/α and p^α (what plain
  low-temperature decoding would score with infinitely many samples),

and ``tokens_per_sample``, every token the method generated per returned sample. ``within_target`` is
``tv <= 1.5·floor + 0.01``. Three sections:

* **main** — every toy at α ∈ {2, 4}: ``mh_full`` (uniform cuts, every proposal generated in full: the MH
  before early rejection), ``mh`` (uniform cuts with exact early rejection), ``mh_entropy``
  (decision-point cuts, with early rejection),
  ``mh_change`` (uniform cuts, the token at the cut redrawn without the current one: ``change_at_cut``),
  ``mh_differ`` (uniform cuts, every proposal differs from the current state: ``moves="differ"``),
  ``mh_decision`` (decision-point MH: entropy cuts with ``moves="decision"``), ``mh_decision_bt2`` (the
  same, each block started from two draws by importance weight: ``block_tries=2``), ``mh_adaptive`` (adaptive
  effort), ``mh_naive`` (the ablation without the stage limit and the length
  correction; ``--method mh_no_length_term`` / ``mh_own_length`` drop one of the two), ``smc``, ``imh``,
  ``smc_adaptive`` (rounds of particles pooled by Ẑ), ``tps`` (token-level power sampling, approximate, at
  each of ``--tps-rollouts``) and ``low_temp``;
* **large_alpha** — the trap toy (its likeliest sequences do not start with the likeliest token) at
  α ∈ {2, 4, 8, 16, 50}: ``mh`` and ``smc`` at the default proposal temperature max(1/α, 1/3) beside
  ``mh_cold`` / ``smc_cold`` at τ = 1/α, with ``unmixed_fraction``: the share of runs that could not
  have mixed (MH: no accepted move changed the first token; SMC: every particle drew the same one);
* **effort** — tokens to reach the target TV for ``mh_full``, ``mh``, ``mh_entropy``, ``mh_change``,
  ``mh_differ``, ``mh_decision`` and ``mh_decision_bt2``, sweeping N_MCMC.

All MH chains of a row run in lockstep (:func:`~genesis_ps.sampling.mh.mh_chains`, the kernel of
``run_mh``); SMC, IMH and TPS run once per sample. SMC returns one particle drawn from N weighted ones,
which is exact only as N → ∞: its TV carries an O(1/N) bias (raise ``--particles`` to watch it shrink).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
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
from genesis_ps.sampling.tps import run_tps
from genesis_ps.testing import exact
from genesis_ps.testing.toys import TOYS, ToyLM

__all__ = ["BENCH_METHODS", "CHANGE_AT_CUT", "ExactnessConfig", "draw", "register", "run_exactness", "tokens_to_target"]

BENCH_METHODS = ("mh_full", "mh", "mh_entropy", "mh_change", "mh_differ", "mh_decision", "mh_decision_bt2",
                 "mh_adaptive", "mh_naive", "smc", "smc_adaptive", "imh", "tps", "low_temp")  # fmt: skip
EXTRA_METHODS = ("mh_no_length_term", "mh_own_length", "smc_anneal", "smc_chopthin", "mh_cold",
                 "smc_cold", "mh_mtm", "mh_entropy_change")  # fmt: skip
"""Optional rows (``--method``): MH with only the length term or only the stage limit dropped; SMC with α
annealed over two blocks, with chopthin resampling, with adaptive rounds; MH / SMC at τ = 1/α; MH with
four tries per entropy cut; entropy cuts with the change at the cut (ρ = 0.5: the previous definition of
decision-point MH)."""
LARGE_ALPHA_METHODS = ("mh", "mh_cold", "smc", "smc_cold")
EFFORT_METHODS = ("mh_full", "mh", "mh_entropy", "mh_change", "mh_differ", "mh_decision", "mh_decision_bt2")
EFFORT_GRID = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48)
CHANGE_AT_CUT = 0.5
"""ρ of the change at the cut in the ``mh_change`` and ``mh_entropy_change`` rows."""
_MH_ABLATIONS = {"mh_naive": (False, False), "mh_no_length_term": (True, False), "mh_own_length": (False, True)}
_PROMPT = Prompt.text("")
_MOVES = {"mh_differ": "differ", "mh_decision": "decision", "mh_decision_bt2": "decision"}


@dataclass(frozen=True, kw_only=True)
class ExactnessConfig:
    """What the benchmark runs (the defaults take about ten minutes on 2 CPU cores)."""

    samples: int = 2000
    alphas: tuple[float, ...] = (2.0, 4.0)
    toys: tuple[str, ...] = ("sharp", "eos", "random", "trap")
    methods: tuple[str, ...] = BENCH_METHODS
    block_size: int = 2
    n_mcmc: int = 30
    """MH steps per block (the most, for ``mh_adaptive``)."""
    n_particles: int = 32
    imh_proposals: int = 40
    tps_rollouts: tuple[int, ...] = (2, 8)
    large_alphas: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0, 50.0)
    """α of the large-α section on the trap toy (empty: skip it)."""
    effort: bool = True
    """Whether to run the tokens-to-target sweep."""
    effort_grid: tuple[int, ...] = field(default=EFFORT_GRID)
    effort_repeats: int = 1
    """Sweeps per toy, α and method in the effort section (the median is reported): one sweep's first
    crossing of the target is a noisy statistic at 2000 samples."""

    def __post_init__(self) -> None:
        for a in (*self.alphas, *self.large_alphas):
            if not a > 0:
                raise ConfigError("alpha", f"must be > 0, got {a!r}")
        for name in ("samples", "block_size", "n_mcmc", "n_particles", "imh_proposals", "effort_repeats"):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"must be >= 1, got {getattr(self, name)!r}")
        if any(r < 1 for r in self.tps_rollouts):
            raise ConfigError("rollouts", f"must be >= 1, got {self.tps_rollouts!r}")
        unknown = set(self.toys) - set(TOYS)
        if unknown:
            raise ConfigError("toy", f"unknown toys {sorted(unknown)}; choose from {', '.join(TOYS)}")


def _params(cfg: ExactnessConfig, method: str, alpha: float, t_max: int, rollouts: int = 2) -> SamplerParams:
    cold = {"proposal_temperature": 1.0 / alpha} if method.endswith("_cold") else {}
    if method == "imh":
        return SamplerParams(method="imh", alpha=alpha, max_new_tokens=t_max, n_mcmc=cfg.imh_proposals)
    if method == "tps":
        return SamplerParams(method="tps", alpha=alpha, max_new_tokens=t_max, candidates=8, rollouts=rollouts,
                             horizon=t_max, decision_entropy=0.0)  # fmt: skip
    if method.startswith("smc"):
        return SamplerParams(
            method="smc", alpha=alpha, max_new_tokens=t_max, block_size=cfg.block_size, n_particles=cfg.n_particles,
            anneal_steps=2 if method == "smc_anneal" else 0, adaptive=method == "smc_adaptive",
            resampler="chopthin" if method == "smc_chopthin" else "systematic", **cold,  # type: ignore[arg-type]
        )
    return SamplerParams(
        method="mh", alpha=alpha, max_new_tokens=t_max, block_size=cfg.block_size, n_mcmc=cfg.n_mcmc,
        cuts="entropy" if method in ("mh_entropy", "mh_mtm", "mh_decision", "mh_decision_bt2", "mh_entropy_change")
        else "uniform", block_tries=2 if method == "mh_decision_bt2" else 1,
        adaptive=method == "mh_adaptive", n_tries=4 if method == "mh_mtm" else 1, early_reject=method != "mh_full",
        change_at_cut=CHANGE_AT_CUT if method in ("mh_change", "mh_entropy_change") else 0.0,
        moves=_MOVES.get(method, "plain"), **cold,  # type: ignore[arg-type]
    )


@dataclass
class Drawn:
    samples: list[tuple[int, ...]]
    tokens_per_sample: float
    unmixed_fraction: float | None = None


async def draw(
    toy: ToyLM, method: str, alpha: float, t_max: int, n: int, rng: np.random.Generator, cfg: ExactnessConfig,
    *, rollouts: int = 2, n_mcmc: int | None = None,
) -> Drawn:
    """``n`` independent samples of one method, with the tokens it generated per sample."""
    target = Target(alpha)
    params = _params(cfg, method, alpha, t_max, rollouts)
    if n_mcmc is not None:
        params = params.with_(n_mcmc=n_mcmc)
    if method.startswith("mh"):
        stage_limit, length_term = _MH_ABLATIONS.get(method, (True, True))
        run = await mh_chains(
            toy, _PROMPT, params, n_chains=n, target=target, rng=rng, stage_limit=stage_limit, length_term=length_term
        )
        unmixed = sum(1 for m in run.first_token_moves if m == 0) / n
        return Drawn([s.tokens for s in run.final], run.meter.tokens_generated / n, unmixed)
    if method == "low_temp":
        segs = await toy.extend(_PROMPT, [()] * n, t_max, 1.0 / alpha, seed=int(rng.integers(2**63)))
        return Drawn([s.tokens for s in segs], float(np.mean([s.n_tokens for s in segs])))
    fn = {"imh": run_imh, "tps": run_tps}.get(method, run_smc)
    out, tokens, unmixed = [], 0, 0
    for seed in rng.integers(2**63, size=n).tolist():
        r = await fn(
            toy, _PROMPT, params, target=target, rng=np.random.default_rng(seed), budget=None, evaluator=None,
            progress=None,
        )
        out.append(tuple(r.tokens))
        tokens += r.tokens_generated
        unmixed += int(r.extra.get("distinct_first_tokens", 2) == 1)
    return Drawn(out, tokens / n, unmixed / n if method.startswith("smc") else None)


def _row(section: str, name: str, method: str, alpha: float, d: Drawn, p_alpha: exact.Dist, floor: float,
         tv_low: float, seconds: float, rollouts: int | None = None) -> dict[str, Any]:  # fmt: skip
    tv = exact.tv_distance(exact.empirical(d.samples), p_alpha)
    return {
        "section": section, "toy": name, "method": method, "alpha": alpha, "samples": len(d.samples),
        "tv": round(tv, 4), "tv_noise_floor": round(floor, 4), "tv_low_temperature": round(tv_low, 4),
        "within_target": bool(tv <= 1.5 * floor + 0.01), "tokens_per_sample": round(d.tokens_per_sample, 2),
        "unmixed_fraction": None if d.unmixed_fraction is None else round(d.unmixed_fraction, 4),
        "rollouts": rollouts, "seconds": round(seconds, 2),
    }


def _section(section: str, names: tuple[str, ...], alphas: tuple[float, ...], methods: tuple[str, ...],
             cfg: ExactnessConfig, rng: np.random.Generator, log: Any) -> list[dict[str, Any]]:  # fmt: skip
    rows = []
    for name in names:
        toy = TOYS[name]()
        t_max = toy.max_len + 1  # every sequence can end on EOS
        for alpha in alphas:
            p_alpha = exact.power_distribution(toy, t_max, alpha)
            floor = exact.noise_floor(p_alpha, cfg.samples, rng)
            tv_low = exact.tv_distance(exact.temperature_distribution(toy, t_max, 1.0 / alpha), p_alpha)
            for method in methods:
                for r in (cfg.tps_rollouts if method == "tps" else (None,)):
                    t0 = time.perf_counter()
                    d = asyncio.run(draw(toy, method, alpha, t_max, cfg.samples, rng, cfg, rollouts=r or 2))
                    row = _row(section, name, method, alpha, d, p_alpha, floor, tv_low, time.perf_counter() - t0, r)
                    rows.append(row)
                    if log is not None:
                        log(row)
    return rows


def tokens_to_target(cfg: ExactnessConfig, rng: np.random.Generator, log: Any = None) -> list[dict[str, Any]]:
    """Per toy, α and method: the smallest N_MCMC of the grid whose TV is within target, and the tokens
    per sample it took (None when no grid point reached it) — in each of ``cfg.effort_repeats`` sweeps with
    fresh randomness. ``n_mcmc_to_target`` / ``tokens_to_target`` are the medians over the sweeps (None
    unless most sweeps reached the target); ``sweeps`` lists every sweep's, ``trace`` the first sweep's."""
    out = []
    for name in cfg.toys:
        toy = TOYS[name]()
        t_max = toy.max_len + 1
        for alpha in cfg.alphas:
            p_alpha = exact.power_distribution(toy, t_max, alpha)
            goal = 1.5 * exact.noise_floor(p_alpha, cfg.samples, rng) + 0.01
            for method in EFFORT_METHODS:
                sweeps, traces = [], []
                for _ in range(cfg.effort_repeats):
                    trace, hit = _sweep(toy, method, alpha, t_max, goal, p_alpha, cfg, rng)
                    traces.append(trace)
                    sweeps.append(hit)
                reached = [h for h in sweeps if h is not None]
                enough = 2 * len(reached) > len(sweeps)
                row = {"toy": name, "alpha": alpha, "method": method, "target_tv": round(goal, 4),
                       "n_mcmc_to_target": _median([h[0] for h in reached]) if enough else None,
                       "tokens_to_target": round(_median([h[1] for h in reached]), 2) if enough else None,
                       "sweeps": [None if h is None else {"n_mcmc": h[0], "tokens_per_sample": h[1]} for h in sweeps],
                       "trace": traces[0]}  # fmt: skip
                out.append(row)
                if log is not None:
                    log({**row, "section": "effort"})
    return out


Hit = tuple[int, float]


def _median(values: list[float]) -> float:
    """The median, as an int when it is one (one sweep's N_MCMC stays an integer)."""
    m = float(np.median(values))
    return int(m) if m.is_integer() else m


def _sweep(toy: ToyLM, method: str, alpha: float, t_max: int, goal: float, p_alpha: exact.Dist,
           cfg: ExactnessConfig, rng: np.random.Generator) -> tuple[list[list[float]], Hit | None]:  # fmt: skip
    """One N_MCMC sweep: its trace [N_MCMC, TV, tokens per sample] and (N_MCMC, tokens) where it first hit."""
    trace: list[list[float]] = []
    for n_mcmc in cfg.effort_grid:
        d = asyncio.run(draw(toy, method, alpha, t_max, cfg.samples, rng, cfg, n_mcmc=n_mcmc))
        tv = exact.tv_distance(exact.empirical(d.samples), p_alpha)
        trace.append([n_mcmc, round(tv, 4), round(d.tokens_per_sample, 2)])
        if tv <= goal:
            return trace, (n_mcmc, round(d.tokens_per_sample, 2))
    return trace, None


def run_exactness(cfg: ExactnessConfig, seed: int = 0, *, log: Any = None) -> list[dict[str, Any]]:
    """The main and large-α rows (see the module docstring); :func:`tokens_to_target` is the effort sweep."""
    rng = np.random.default_rng(seed)
    rows = _section("main", cfg.toys, cfg.alphas, cfg.methods, cfg, rng, log)
    if cfg.large_alphas:
        rows += _section("large_alpha", ("trap",), cfg.large_alphas, LARGE_ALPHA_METHODS, cfg, rng, log)
    return rows


def _print(r: dict[str, Any]) -> None:
    if r.get("section") == "effort":
        each = ", ".join("—" if h is None else f"{h['n_mcmc']}/{h['tokens_per_sample']}" for h in r["sweeps"])
        print(f"  effort {r['toy']:>7} α={r['alpha']:<4g} {r['method']:>11}: N_MCMC {r['n_mcmc_to_target']}, "
              f"{r['tokens_to_target']} tokens/sample to TV <= {r['target_tv']} (sweeps: {each})",
              flush=True)  # fmt: skip
        return
    extra = f" R={r['rollouts']}" if r["rollouts"] else ""
    print(
        f"{r['section']:>11} {r['toy']:>7} α={r['alpha']:<4g} {r['method'] + extra:>17}  tv={r['tv']:.4f}  "
        f"floor={r['tv_noise_floor']:.4f}  low-temp={r['tv_low_temperature']:.4f}  "
        f"{'ok ' if r['within_target'] else 'FAR'}  tokens={r['tokens_per_sample']:.1f}  {r['seconds']:.1f}s",
        flush=True,
    )


def main(args: argparse.Namespace) -> int:
    from genesis_ps.bench.exactness_report import command_line, machine, markdown

    cfg = ExactnessConfig(
        samples=args.samples,
        alphas=tuple(args.alpha) if args.alpha else ExactnessConfig.alphas,
        toys=tuple(args.toy) if args.toy else ExactnessConfig.toys,
        methods=tuple(args.method) if args.method else ExactnessConfig.methods,
        n_mcmc=args.n_mcmc,
        n_particles=args.particles,
        imh_proposals=args.imh_proposals,
        tps_rollouts=tuple(args.tps_rollouts) if args.tps_rollouts else ExactnessConfig.tps_rollouts,
        large_alphas=() if args.no_large_alpha else ExactnessConfig.large_alphas,
        effort=not args.no_effort,
        effort_repeats=args.effort_repeats,
    )
    command = command_line(cfg, args)
    log = None if args.json else _print
    rows = run_exactness(cfg, args.seed, log=log)
    effort = tokens_to_target(cfg, np.random.default_rng(args.seed + 1), log) if cfg.effort else []
    report = {"rows": rows, "effort": effort, "command": command, "machine": machine()}
    if args.json:
        print(json.dumps(report, indent=2))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "exactness.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "exactness.md").write_text(markdown(report))
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

    p = bsub.add_parser("exactness", help="TV distance of each sampler's samples to the exact p^α on toy models")
    add_common(p)
    p.add_argument("--samples", type=_positive_int, default=ExactnessConfig.samples, help="samples per row")
    p.add_argument("--n-mcmc", type=_positive_int, default=ExactnessConfig.n_mcmc, help="MH steps per block")
    p.add_argument("--particles", type=_positive_int, default=ExactnessConfig.n_particles, help="SMC particles")
    p.add_argument(
        "--imh-proposals", type=_positive_int, default=ExactnessConfig.imh_proposals,
        help="IMH proposals after the first",
    )
    p.add_argument("--tps-rollouts", type=_positive_int, action="append", help="TPS rollouts (repeatable; 2 and 8)")
    p.add_argument("--alpha", type=float, action="append", help="α of the main section (repeatable; 2 and 4)")
    p.add_argument("--toy", choices=sorted(TOYS), action="append", help="toy (repeatable; default all)")
    p.add_argument(
        "--method", choices=BENCH_METHODS + EXTRA_METHODS, action="append",
        help="main-section method (repeatable; default: " + ", ".join(BENCH_METHODS) + ")",
    )
    p.add_argument("--no-large-alpha", action="store_true", help="skip the large-α section (trap toy)")
    p.add_argument("--no-effort", action="store_true", help="skip the tokens-to-target sweep")
    p.add_argument("--effort-repeats", type=_positive_int, default=ExactnessConfig.effort_repeats,
                   help="tokens-to-target sweeps per toy, alpha and method (their median is reported)")
    p.set_defaults(func=main)

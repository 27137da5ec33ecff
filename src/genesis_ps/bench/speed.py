"""``genesis-ps bench speed``: wall time of power sampling against single-shot sampling, on the embedded
model, side by side in one run (same prompt, settings and seed).

Measured: single-shot sampling; our block-wise MH (KV-cache reuse, lean decode loop) as it was
(uniform cuts, τ = 1/α) and with decision-point cuts and adaptive effort; token-level power sampling;
the same MH done the paper's reference way — every proposal re-encodes prompt + kept prefix through
Hugging Face ``generate`` (batch 1, ``output_scores`` / ``output_logits``; log p and log q computed exactly
from those scores), as the reference code does; SMC with 8 particles (one batched forward per step) with
and without copy-on-write KV sharing; the decode rate of our loop against ``generate``'s; and the wall time
decision-point MH needs to reach today's MH's mean log-likelihood per token over several prompts
(:mod:`~genesis_ps.bench.speed_power`). Ratios are of times measured in this run, nothing else.

Our loop decodes from the GGUF's Q4_1/Q8_0 blocks when the block kernel is available
(:mod:`~genesis_ps.providers.local.blockmm`; same weights, bit for bit). Its decode rate on the fp32 weights is
measured beside it, in the same alternation, so both are on record.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from genesis_ps.bench.speed_power import paired_ratios, power_rows, time_to_loglik, tps_loglik
from genesis_ps.bench.speed_reference import hf_generate, reference_mh
from genesis_ps.sampling.params import check_int, check_positive, check_seed

__all__ = ["SpeedConfig", "reference_mh", "register", "run_speed"]


PROMPT = "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle."


@dataclass(frozen=True)
class SpeedConfig:
    """The settings every measured method shares."""

    alpha: float = 4.0
    block_size: int = 32
    n_mcmc: int = 4
    max_new_tokens: int = 128
    n_particles: int = 8
    repeats: int = 1
    """Decode-rate measurements (ours and ``generate``, alternating), and rounds of single-shot paired with
    SMC (with and without CoW) and TPS, whose ratios to single-shot have targets; medians are reported."""
    prompt: str = PROMPT
    num_threads: int | None = None
    loglik_prompts: int = 20
    """Prompts of the time-to-log-likelihood comparison (0 skips it)."""
    loglik_tokens: int = 64
    """New tokens per prompt in that comparison."""

    def __post_init__(self) -> None:
        check_positive("--alpha", self.alpha)
        for flag, value in (("--block-size", self.block_size), ("--n-mcmc", self.n_mcmc),
                            ("--max-new-tokens", self.max_new_tokens), ("--particles", self.n_particles),
                            ("--loglik-tokens", self.loglik_tokens)):  # fmt: skip
            check_int(flag, value, 1)
        check_int("--loglik-prompts", self.loglik_prompts, 0)


def register(bsub: Any) -> None:
    from genesis_ps.bench.options import add_common

    p = bsub.add_parser("speed", help="wall time: single-shot vs our MH vs reference-style MH vs SMC (embedded)")
    add_common(p)
    p.add_argument("--alpha", type=float, default=SpeedConfig.alpha)
    p.add_argument("--block-size", type=int, default=SpeedConfig.block_size)
    p.add_argument("--n-mcmc", type=int, default=SpeedConfig.n_mcmc)
    p.add_argument("--max-new-tokens", type=int, default=SpeedConfig.max_new_tokens)
    p.add_argument("--particles", type=int, default=SpeedConfig.n_particles)
    p.add_argument("--repeats", type=int, default=SpeedConfig.repeats,
                   help="decode-rate repeats, and rounds pairing single-shot with SMC and TPS (medians)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--prompt", default=SpeedConfig.prompt)
    p.add_argument("--loglik-prompts", type=int, default=SpeedConfig.loglik_prompts,
                   help="prompts of the time-to-MH-log-likelihood comparison (0 skips it)")
    p.add_argument("--loglik-tokens", type=int, default=SpeedConfig.loglik_tokens,
                   help="new tokens per prompt in that comparison")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from genesis_ps.errors import ConfigError

    if args.repeats < 1:
        raise ConfigError("--repeats", f"must be >= 1, got {args.repeats}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError("--threads", f"must be >= 1, got {args.threads}")
    check_seed(args.seed, "--seed")
    cfg = SpeedConfig(
        alpha=args.alpha, block_size=args.block_size, n_mcmc=args.n_mcmc, max_new_tokens=args.max_new_tokens,
        n_particles=args.particles, repeats=args.repeats, prompt=args.prompt, num_threads=args.threads,
        loglik_prompts=args.loglik_prompts, loglik_tokens=args.loglik_tokens,
    )
    stream = sys.stderr if args.json else sys.stdout
    report = run_speed(cfg, args.seed, log=lambda msg: print(msg, file=stream, flush=True))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)
    if args.out:
        from pathlib import Path

        from genesis_ps.bench.report import write_json

        path = write_json(Path(args.out) / "speed.json", report)
        if not args.json:
            print(f"wrote {path}")
    return 0


def run_speed(cfg: SpeedConfig, seed: int, *, log: Any = None) -> dict[str, Any]:
    """Measure everything once, side by side; return the report (times in seconds)."""
    import torch

    from genesis_ps.bench.report import machine_info
    from genesis_ps.generation import single_shot
    from genesis_ps.providers.local.embedded import load_embedded
    from genesis_ps.sampling.protocol import Prompt

    say = log or (lambda *_: None)
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    t0 = time.perf_counter()
    model = load_embedded()
    load_s = time.perf_counter() - t0
    prompt = Prompt.user(cfg.prompt)
    tau = 1.0 / cfg.alpha
    T = cfg.max_new_tokens
    run = asyncio.run

    def fresh() -> None:
        if model.kv_cache is not None:
            model.kv_cache.clear()

    fast = model._engine.fast
    blocks_used = fast.blocks_used if fast is not None else 0
    plain = None  # the same network on its fp32 weights, for the record
    if blocks_used:
        from genesis_ps.providers.local.model import LocalModel

        plain = LocalModel(model.hf_model, model.tokenizer, name=model.model, provider=model.provider)

    # warm-up (first calls allocate and dispatch); not measured
    run(model.generate(prompt, max_new_tokens=8, seed=seed))
    if plain is not None:
        run(plain.generate(prompt, max_new_tokens=8, seed=seed))
    hf_generate(model, prompt, 8, 1.0, seed)

    ours_rates, fp32_rates, hf_rates = [], [], []
    for r in range(cfg.repeats):
        fresh()
        t = time.perf_counter()
        c = run(model.generate(prompt, max_new_tokens=T, temperature=1.0, seed=seed + r))
        ours_rates.append(c.tokens_generated / (time.perf_counter() - t))
        if plain is not None:
            if plain.kv_cache is not None:
                plain.kv_cache.clear()
            t = time.perf_counter()
            c = run(plain.generate(prompt, max_new_tokens=T, temperature=1.0, seed=seed + r))
            fp32_rates.append(c.tokens_generated / (time.perf_counter() - t))
        t = time.perf_counter()
        n = hf_generate(model, prompt, T, 1.0, seed + r)
        hf_rates.append(n / (time.perf_counter() - t))
        fp32_msg = f", ours on fp32 weights {fp32_rates[-1]:.1f}" if fp32_rates else ""
        say(f"decode rate: ours {ours_rates[-1]:.1f} tok/s{fp32_msg}, generate {hf_rates[-1]:.1f} tok/s")
    del plain

    fresh()
    single = run(single_shot(model, prompt, max_new_tokens=T, temperature=tau, seed=seed))
    say(f"single-shot: {single.latency_s:.2f}s for {single.tokens_generated} tokens")
    rows = power_rows(model, prompt, cfg, seed, say)
    paired = paired_ratios(model, prompt, cfg, seed, say)
    mh, smc = rows["mh"], rows["smc"]
    ref = reference_mh(model, prompt, alpha=cfg.alpha, block_size=cfg.block_size, n_mcmc=cfg.n_mcmc,
                       max_new_tokens=T, seed=seed)
    say(f"mh (reference style): {ref['seconds']:.2f}s, {ref['tokens_generated']} tokens generated")
    loglik = time_to_loglik(model, cfg, seed, say) if cfg.loglik_prompts else None
    tps_ll = tps_loglik(model, cfg, seed, say) if cfg.loglik_prompts else None

    from genesis_ps.providers.local import blockmm

    decode = statistics.median(ours_rates)
    gen_rate = statistics.median(hf_rates)
    fp32_rate = statistics.median(fp32_rates) if fp32_rates else None
    single_tok = single.latency_s / max(single.tokens_generated, 1)
    mh_tok = mh["wall_s"] / max(mh["tokens_generated"], 1)
    ref_tok = ref["seconds"] / max(ref["tokens_generated"], 1)
    no_cow = rows["smc_no_cow"]
    return {
        "settings": {**asdict(cfg), "seed": seed, "proposal_temperature": tau, "single_temperature": tau,
                     "model": model.model, "device": str(model._engine.device), "load_s": round(load_s, 2),
                     "torch_threads": torch.get_num_threads(), "block_weight_matrices": blocks_used,
                     "block_kernel_unavailable": None if blocks_used else (
                         model.block_weights_note or blockmm.unavailable_reason())},
        "single_s": single.latency_s,
        "single_tokens": single.tokens_generated,
        "mh_s": mh["wall_s"],
        "mh_tokens_generated": mh["tokens_generated"],
        "mh_acceptance_rate": mh["acceptance_rate"],
        "mh_reference_style_s": ref["seconds"],
        "mh_reference_style_tokens_generated": ref["tokens_generated"],
        "mh_reference_style_acceptance_rate": ref["acceptance_rate"],
        "smc_s": smc["wall_s"],
        "smc_tokens_generated": smc["tokens_generated"],
        "smc_tokens_returned": smc["tokens_returned"],
        "rows": {"single": {"wall_s": single.latency_s, "tokens_generated": single.tokens_generated,
                            "ms_per_token": 1000 * single_tok}, **rows},
        "loglik": loglik,
        "tps_loglik": tps_ll,
        "paired_with_single": paired,
        "decode_tok_s": decode,
        "generate_tok_s": gen_rate,
        "decode_tok_s_runs": ours_rates,
        "generate_tok_s_runs": hf_rates,
        "decode_fp32_weights_tok_s": fp32_rate,
        "decode_fp32_weights_tok_s_runs": fp32_rates,
        "tokens": {"single": single.tokens_generated, "mh": mh["tokens_generated"],
                   "mh_reference_style": ref["tokens_generated"], "smc": smc["tokens_generated"],
                   **{k: v["tokens_generated"] for k, v in rows.items() if k not in ("mh", "smc")}},
        "ratios": {
            "decode_speedup_vs_generate": decode / gen_rate,
            "decode_fp32_weights_speedup_vs_generate": fp32_rate / gen_rate if fp32_rate else None,
            "mh_speedup_vs_reference_style": ref["seconds"] / mh["wall_s"],
            "mh_speedup_vs_reference_style_per_token": ref_tok / mh_tok,
            "mh_per_token_vs_single": mh_tok / single_tok,
            "smc_vs_single": paired["median"]["smc"],
            "smc_no_cow_vs_single": paired["median"]["smc_no_cow"],
            "smc_kv_peak_cow_vs_no_cow": (smc["kv_peak_bytes"] / no_cow["kv_peak_bytes"]
                                          if no_cow["kv_peak_bytes"] else None),
            "tps_vs_single": paired["median"]["tps"],
            "tps_fresh_vs_single": paired["median"]["tps_fresh"],
            "tps_wall_vs_single_over_prompts": tps_ll["tps_wall_vs_single"] if tps_ll else None,
            "mh_early_vs_mh": rows["mh_early"]["wall_s"] / mh["wall_s"],
            "mh_entropy_vs_mh": rows["mh_entropy"]["wall_s"] / mh["wall_s"],
            "mh_decision_vs_mh": rows["mh_decision"]["wall_s"] / mh["wall_s"],
            "mh_decision_bt2_vs_mh": rows["mh_decision_bt2"]["wall_s"] / mh["wall_s"],
            "mh_adaptive_vs_mh": rows["mh_adaptive"]["wall_s"] / mh["wall_s"],
            "mh_entropy_time_to_mh_loglik": loglik["ratio"] if loglik else None,
            "mh_early_time_ratio": loglik["mh_early_time_ratio"] if loglik else None,
        },
        "targets": {"decode_speedup_vs_generate": ">= 1.6", "mh_speedup_vs_reference_style": ">= 2",
                    "mh_per_token_vs_single": "<= 1.5", "smc_vs_single": "<= 2.5", "tps_vs_single": "<= 2",
                    "smc_kv_peak_cow_vs_no_cow": "< 1", "mh_entropy_time_to_mh_loglik": "<= 0.5"},
        "machine": machine_info(),
        "command": f"genesis-ps bench speed --seed {seed} --alpha {cfg.alpha:g} --block-size {cfg.block_size} "
                   f"--n-mcmc {cfg.n_mcmc} --max-new-tokens {T} --particles {cfg.n_particles} --repeats {cfg.repeats}"
                   + f" --loglik-prompts {cfg.loglik_prompts} --loglik-tokens {cfg.loglik_tokens}"
                   + (f" --threads {cfg.num_threads}" if cfg.num_threads else ""),
    }


def _ci(d: dict[str, Any]) -> str:
    return f"{d['mean']:+.4f} [{d['ci'][0]:+.4f}, {d['ci'][1]:+.4f}]"


def _print_table(report: dict[str, Any]) -> None:
    s = report["settings"]
    print(f"\nbench speed — {s['model']} on {s['device']} ({s['torch_threads']} threads), α={s['alpha']:g}, "
          f"B={s['block_size']}, N_MCMC={s['n_mcmc']}, T={s['max_new_tokens']}, SMC particles={s['n_particles']}, "
          f"seed={s['seed']}")
    pr = report["rows"]
    rows = [("single-shot", report["single_s"], report["single_tokens"]),
            ("MH (ours, today)", report["mh_s"], report["mh_tokens_generated"]),
            ("MH, entropy cuts", pr["mh_entropy"]["wall_s"], pr["mh_entropy"]["tokens_generated"]),
            ("MH, decision-point", pr["mh_decision"]["wall_s"], pr["mh_decision"]["tokens_generated"]),
            ("MH, decision, 2 block tries", pr["mh_decision_bt2"]["wall_s"], pr["mh_decision_bt2"]["tokens_generated"]),
            ("MH, adaptive", pr["mh_adaptive"]["wall_s"], pr["mh_adaptive"]["tokens_generated"]),
            ("TPS (defaults)", pr["tps"]["wall_s"], pr["tps"]["tokens_generated"]),
            ("TPS, no rollout reuse", pr["tps_fresh"]["wall_s"], pr["tps_fresh"]["tokens_generated"]),
            ("MH (reference style)", report["mh_reference_style_s"], report["mh_reference_style_tokens_generated"]),
            (f"SMC ({s['n_particles']}), no CoW", pr["smc_no_cow"]["wall_s"], pr["smc_no_cow"]["tokens_generated"]),
            (f"SMC ({s['n_particles']}), CoW KV", report["smc_s"], report["smc_tokens_generated"])]
    print(f"{'method':<28}{'wall s':>10}{'tokens':>10}{'ms/token':>10}")
    for name, sec, tok in rows:
        print(f"{name:<28}{sec:>10.2f}{tok:>10d}{1000 * sec / max(tok, 1):>10.1f}")
    print(f"KV peak: SMC no CoW {pr['smc_no_cow']['kv_peak_bytes'] / 2**20:.1f} MiB, "
          f"CoW {pr['smc']['kv_peak_bytes'] / 2**20:.1f} MiB")
    ll = report.get("loglik")
    if ll:
        hit = ll["mh_entropy_reached"]
        print(f"mean log-lik/token over {ll['prompts']} prompts (T={ll['max_new_tokens']}): today's MH "
              f"{ll['mh_mean_loglik']:.4f} in {ll['mh_wall_s']:.1f}s; entropy-cut MH "
              + (f"reached it at N_MCMC={hit['n_mcmc']}, {hit['n_tries']} tries, {hit.get('moves', 'plain')} moves, "
                 f"{hit.get('block_tries', 1)} block tries "
                 f"({hit['mean_loglik']:.4f}, paired difference {_ci(hit['difference'])}) in {hit['wall_s']:.1f}s"
                 if hit else "did not reach it"))
        if ll.get("paired_wall_s"):
            w = ll["paired_wall_s"]
            print(f"  timed again side by side, prompt by prompt: today's MH {w['mh']:.1f}s, entropy-cut MH "
                  f"{w['mh_entropy']:.1f}s (the search's own ratio: {ll['search_ratio']:.2f})")
    tl = report.get("tps_loglik")
    if tl:
        print(f"mean log-lik/token over {tl['prompts']} prompts (T={tl['max_new_tokens']}): single-shot "
              f"{tl['single']['mean_loglik']:.4f}, TPS {tl['tps']['mean_loglik']:.4f}, TPS without rollout reuse "
              f"{tl['tps_fresh']['mean_loglik']:.4f}; TPS − single {_ci(tl['tps_minus_single'])}, TPS − no reuse "
              f"{_ci(tl['tps_minus_tps_fresh'])} (paired, 95%); wall time over single-shot's: TPS "
              f"{tl['tps_wall_vs_single']:.2f}x, without reuse {tl['tps_fresh_wall_vs_single']:.2f}x")
    fp32 = report.get("decode_fp32_weights_tok_s")
    fp32_msg = f", ours on fp32 weights {fp32:.1f} tok/s" if fp32 else ""
    blocks = s.get("block_weight_matrices") or 0
    how = f"from GGUF blocks ({blocks} matrices)" if blocks else "fp32 weights"
    print(f"decode: ours {report['decode_tok_s']:.1f} tok/s ({how}){fp32_msg}, "
          f"HF generate {report['generate_tok_s']:.1f} tok/s")
    paired = report.get("paired_with_single")
    if paired:
        print(f"paired with single-shot, {len(paired['single_s'])} rounds (median): " + ", ".join(
            f"{n} {paired['median'][n]:.2f}x ({', '.join(f'{v:.2f}' for v in vs)})"
            for n, vs in paired["ratios"].items()))  # fmt: skip
    for k, v in report["ratios"].items():
        if v is not None:
            print(f"  {k:<42}{v:>8.2f}   target {report['targets'].get(k, '')}")

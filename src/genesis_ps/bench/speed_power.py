"""The power-sampling rows of ``bench speed``, and the time-to-log-likelihood comparison.

Rows, each one run on the embedded model with the same prompt, α, B, N_MCMC, length and seed:

* ``mh`` — today's MH: uniform cuts, proposals at τ = 1/α, every proposal generated in full;
* ``mh_early`` — the same chain with exact early rejection (``early_reject=True``; see
  :mod:`genesis_ps.sampling.early`), which alone separates it from ``mh``;
* ``mh_entropy`` — decision-point cuts, otherwise as ``mh``;
* ``mh_decision`` — decision-point MH: entropy cuts with ``moves="decision"`` (every proposal differs from
  the current state, generated from its first difference; some steps change the token before an entropy
  jump; exact; :mod:`genesis_ps.sampling.cuts`);
* ``mh_decision_bt2`` — decision-point MH whose blocks each start from one of two draws picked in
  proportion to its importance weight (``block_tries=2``: sampling-importance-resampling, one batched
  call; the chain's steps are unchanged);
* ``mh_adaptive`` — uniform cuts, adaptive effort (every block but the last stops after ``patience``
  unchanged steps);
* ``tps`` — token-level power sampling at its default settings (the tokens after a decision taken from the
  chosen candidate's rollout), and ``tps_fresh`` the same with those tokens drawn afresh
  (``reuse_rollouts=False``);
* ``smc`` — the upgraded SMC: copy-on-write KV sharing between particles after resampling (and
  ``smc_no_cow`` the same run without it), with the KV memory each held at peak.

The ratios to single-shot of ``smc``, ``smc_no_cow``, ``tps`` and ``tps_fresh`` are medians over
``repeats`` rounds that run single-shot and then each of them back to back (:func:`paired_ratios`).

**TPS over many prompts.** On the same prompts as below, single-shot at τ, ``tps`` and ``tps_fresh`` run
back to back on each prompt (:func:`tps_loglik`): each one's mean log-likelihood per token of the returned
text, with paired bootstrap intervals for tps − single and tps − tps_fresh (what reusing rollouts costs or
gains), and TPS's total wall time over single-shot's (``tps_wall_vs_single``) — the same ratio as
``tps_vs_single``, measured over many prompts rather than one.

**Time to today's MH log-likelihood.** Over ``loglik_prompts`` prompts (same α and B, ``loglik_tokens``
new tokens), today's MH gives a mean log-likelihood per token of the returned text; the same MH with early
rejection is run once at the same N_MCMC (its wall time over today's is ``mh_early_time_ratio``: the same
chain, so the same log-likelihood in distribution); decision-point MH (entropy cuts) is then run, in this
fixed order of roughly rising cost, at N_MCMC = 1 with decision moves and then differ moves (one try each), the
same two with two block tries (each block's start resampled from two draws by importance weight), then
with plain moves at 2, 4 and 8 tries per cut (``SEARCH``), then the same at N_MCMC = 2, … up to
2·n_mcmc, until its mean reaches that (the first of several configurations to reach a mean has
several chances to reach it by the prompts' noise: the paired interval ``difference`` is the honest read);
``mh_entropy_time_to_mh_loglik`` is its wall time there over today's MH's (None when none reached it),
both timed again side by side once it is found — today's MH and that configuration back to back on each
prompt, with the search's seeds — because the host's speed drifts over the minutes a search takes (the
search's own ratio is kept as ``search_ratio``). The
tries of a cut are one batched call (multiple-try MH, exact; it cannot combine with decision moves, whose
proposal depends on the current suffix): a batch of rows decodes in little more time per step than
one row, so tries can buy acceptance for less wall time than sequential steps (the trace's wall times show
it). Each prompt's seed is the same for every configuration, and the reached configuration's per-prompt
difference from today's MH comes with a paired bootstrap 95% interval (``difference``), which says what
the prompts can resolve.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from genesis_ps.bench.stats import paired_compare

__all__ = ["LOGLIK_PROMPTS", "PAIRED", "SEARCH", "paired_ratios", "power_rows", "time_to_loglik", "tps_loglik"]

PAIRED = ("smc", "smc_no_cow", "tps", "tps_fresh")
"""The rows whose ratio to single-shot has a target: measured in rounds paired with single-shot
(:func:`paired_ratios`)."""

SEARCH = (("decision", 1, 1), ("differ", 1, 1), ("differ", 1, 2), ("decision", 1, 2), ("plain", 2, 1), ("plain", 4, 1),
          ("plain", 8, 1))  # fmt: skip
"""(moves, tries per cut, block tries) that the time-to-log-likelihood search runs at each N_MCMC, in this
order: one try with decision moves, one with differ moves, the same two with each block's start resampled
from two draws (``block_tries=2``), then plain moves with 2, 4 and 8 tries (multiple tries need a proposal
that does not depend on the current suffix). Every configuration cuts at entropy jumps."""

LOGLIK_PROMPTS = (
    "Write a short story about a lighthouse keeper.", "Explain why the sky is blue.",
    "Describe a busy market in the morning.", "Give advice to a new programmer.",
    "Write a letter to a friend about a trip to the mountains.", "Explain how a bicycle works.",
    "Describe your favourite season and why.", "Write a recipe for a simple soup.",
    "Explain what a computer network is.", "Tell a story about a lost dog finding its way home.",
    "Describe the ocean to someone who has never seen it.", "Give three tips for studying well.",
    "Explain how plants make their food.", "Write a poem about the night sky.",
    "Describe a day in the life of a baker.", "Explain why exercise is good for you.",
    "Write a short dialogue between two friends planning a picnic.", "Explain how rain forms.",
    "Describe an old library.", "Write a thank-you note to a teacher.",
    "Explain what gravity does.", "Describe a train journey through the countryside.",
    "Give advice on keeping a small garden.", "Write a story about a robot learning to paint.",
)  # fmt: skip


def _clear(model: Any) -> None:
    if model.kv_cache is not None:
        model.kv_cache.clear()


def _sample(model: Any, prompt: Any, params: Any) -> Any:
    from genesis_ps.generation import power_sample

    _clear(model)
    model._engine.kv_bytes_peak = 0
    return asyncio.run(power_sample(model, prompt, params))


def _row(r: Any, model: Any) -> dict[str, Any]:
    return {
        "wall_s": r.latency_s, "tokens_generated": r.tokens_generated, "tokens_returned": r.tokens_returned,
        "ms_per_token": 1000 * r.latency_s / max(r.tokens_generated, 1),
        "loglik_per_token": (r.logp_sum / r.tokens_returned) if r.logp_sum is not None and r.tokens_returned else None,
        "acceptance_rate": r.acceptance_rate, "kv_peak_bytes": model._engine.kv_bytes_peak,
        "extra": {k: v for k, v in r.extra.items() if k in (
            "cuts", "mh_steps", "decision_points", "rollout_calls", "resampler", "proposal_temperature",
            "candidates", "rollouts", "horizon", "decision_entropy", "first_token_changes", "mixing_warning",
            "early_rejected", "change_at_cut", "moves", "reuse_rollouts", "reused_tokens", "block_tries")},
    }  # fmt: skip


def _runs(cfg: Any, seed: int) -> dict[str, Any]:
    """The sampler parameters of every row."""
    from genesis_ps.sampling.params import SamplerParams

    today = SamplerParams(method="mh", alpha=cfg.alpha, block_size=cfg.block_size, n_mcmc=cfg.n_mcmc,
                          max_new_tokens=cfg.max_new_tokens, seed=seed, proposal_temperature=1.0 / cfg.alpha)
    smc = today.with_(method="smc", n_particles=cfg.n_particles)
    tps = SamplerParams(method="tps", alpha=cfg.alpha, max_new_tokens=cfg.max_new_tokens, seed=seed)
    return {
        "mh": today.with_(early_reject=False),
        "mh_early": today.with_(early_reject=True),
        "mh_entropy": today.with_(cuts="entropy"),
        "mh_decision": today.with_(cuts="entropy", moves="decision"),
        "mh_decision_bt2": today.with_(cuts="entropy", moves="decision", block_tries=2),
        "mh_adaptive": today.with_(adaptive=True),
        "tps": tps,
        "tps_fresh": tps.with_(reuse_rollouts=False),
        "smc_no_cow": smc,
        "smc": smc,
    }


def power_rows(model: Any, prompt: Any, cfg: Any, seed: int, say: Any) -> dict[str, dict[str, Any]]:
    """Every row of the module docstring, one after another on ``model``."""
    out: dict[str, dict[str, Any]] = {}
    share = model._engine.share_kv
    try:
        for name, p in _runs(cfg, seed).items():
            model._engine.share_kv = name != "smc_no_cow"
            before = model._engine.shared_batches
            r = _sample(model, prompt, p)
            out[name] = _row(r, model)
            out[name]["shared_batches"] = model._engine.shared_batches - before
            say(f"{name}: {r.latency_s:.2f}s, {r.tokens_generated} tokens generated, "
                f"KV peak {out[name]['kv_peak_bytes'] / 2**20:.1f} MiB")  # fmt: skip
    finally:
        model._engine.share_kv = share
    return out


def paired_ratios(model: Any, prompt: Any, cfg: Any, seed: int, say: Any) -> dict[str, Any]:
    """``cfg.repeats`` rounds of single-shot, then ``PAIRED``'s samplers, back to back with the same prompt
    and seed: each run's wall time over its own round's single-shot. The machines this runs on are shared,
    and their speed drifts over minutes; a ratio of two runs seconds apart drifts far less than one of runs
    minutes apart, and the median over rounds damps one slow run."""
    from genesis_ps.generation import single_shot

    runs = _runs(cfg, seed)
    singles: list[float] = []
    ratios: dict[str, list[float]] = {name: [] for name in PAIRED}
    share = model._engine.share_kv
    try:
        for _ in range(cfg.repeats):
            _clear(model)
            single = asyncio.run(single_shot(model, prompt, max_new_tokens=cfg.max_new_tokens,
                                             temperature=1.0 / cfg.alpha, seed=seed)).latency_s  # fmt: skip
            singles.append(single)
            for name in PAIRED:
                model._engine.share_kv = name != "smc_no_cow"
                ratios[name].append(_sample(model, prompt, runs[name]).latency_s / single)
            say("paired with single-shot (" + f"{single:.2f}s): "
                + ", ".join(f"{n} {v[-1]:.2f}x" for n, v in ratios.items()))  # fmt: skip
    finally:
        model._engine.share_kv = share
    return {"single_s": singles, "ratios": ratios, "median": {n: statistics.median(v) for n, v in ratios.items()}}


def _mean_loglik(model: Any, params: Any, n_prompts: int, seed: int) -> tuple[float, float, list[float]]:
    from genesis_ps.sampling.protocol import Prompt

    lls, wall = [], 0.0
    for i, text in enumerate(LOGLIK_PROMPTS[:n_prompts]):
        r = _sample(model, Prompt.user(text), params.with_(seed=seed + i))
        wall += r.latency_s
        if r.logp_sum is not None and r.tokens_returned:
            lls.append(_loglik_per_token(r))
    return statistics.fmean(lls), wall, lls


def _loglik_per_token(r: Any) -> float:
    """Mean base log p per returned token of a result (NaN when it returned nothing scored)."""
    return r.logp_sum / r.tokens_returned if r.logp_sum is not None and r.tokens_returned else float("nan")


def time_to_loglik(model: Any, cfg: Any, seed: int, say: Any) -> dict[str, Any]:
    """Today's MH's mean log-likelihood per token over the prompts, and decision-point MH's time to it."""
    from genesis_ps.sampling.params import SamplerParams

    n = min(cfg.loglik_prompts, len(LOGLIK_PROMPTS))
    base = SamplerParams(method="mh", alpha=cfg.alpha, block_size=cfg.block_size, n_mcmc=cfg.n_mcmc,
                         max_new_tokens=cfg.loglik_tokens, proposal_temperature=1.0 / cfg.alpha)
    t0 = time.perf_counter()
    goal, mh_wall, mh_lls = _mean_loglik(model, base.with_(early_reject=False), n, seed)
    say(f"loglik: today's MH (N_MCMC={cfg.n_mcmc}) {goal:.4f} nats/token over {n} prompts in {mh_wall:.1f}s")
    early_ll, early_wall, early_lls = _mean_loglik(model, base.with_(early_reject=True), n, seed)
    say(f"loglik: MH with early rejection (N_MCMC={cfg.n_mcmc}) {early_ll:.4f} in {early_wall:.1f}s")
    trace = []
    reached: dict[str, Any] | None = None
    found = None
    for steps, (moves, tries, btries) in [(s, c) for s in range(1, 2 * cfg.n_mcmc + 1) for c in SEARCH]:
        p = base.with_(cuts="entropy", n_mcmc=steps, n_tries=tries, moves=moves, block_tries=btries)
        ll, wall, lls = _mean_loglik(model, p, n, seed)
        trace.append({"n_mcmc": steps, "n_tries": tries, "moves": moves, "block_tries": btries, "mean_loglik": ll,
                      "wall_s": wall})  # fmt: skip
        say(f"loglik: mh_entropy N_MCMC={steps} tries={tries} moves={moves} block_tries={btries}: {ll:.4f} in "
            f"{wall:.1f}s")  # fmt: skip
        if ll >= goal:
            diff = paired_compare(mh_lls, lls, name_a="mh", name_b="mh_entropy", metric="loglik_per_token")
            reached = {"n_mcmc": steps, "n_tries": tries, "moves": moves, "block_tries": btries, "mean_loglik": ll,
                       "wall_s": wall,
                       "per_prompt": lls, "difference": {"mean": diff.mean_diff, "ci": [diff.ci_low, diff.ci_high]}}
            say(f"loglik: reached; mh_entropy − today's MH {diff.mean_diff:+.4f} [{diff.ci_low:+.4f}, "
                f"{diff.ci_high:+.4f}] nats/token (paired, 95%)")
            found = p
            break
    timed = _paired_walls(model, base.with_(early_reject=False), found, n, seed) if found is not None else None
    if timed is not None:
        say(f"loglik: timed side by side, prompt by prompt: today's MH {timed[0]:.1f}s, mh_entropy {timed[1]:.1f}s")
    return {
        "prompts": n, "max_new_tokens": cfg.loglik_tokens, "mh_mean_loglik": goal, "mh_wall_s": mh_wall,
        "mh_per_prompt": mh_lls, "mh_early_mean_loglik": early_ll, "mh_early_wall_s": early_wall,
        "mh_early_per_prompt": early_lls, "mh_early_time_ratio": early_wall / mh_wall, "mh_entropy_trace": trace,
        "mh_entropy_reached": reached,
        "search_ratio": (reached["wall_s"] / mh_wall) if reached else None,
        "paired_wall_s": {"mh": timed[0], "mh_entropy": timed[1]} if timed else None,
        "ratio": (timed[1] / timed[0]) if timed else None, "seconds": time.perf_counter() - t0,
    }


def tps_loglik(model: Any, cfg: Any, seed: int, say: Any) -> dict[str, Any]:
    """Single-shot at τ, TPS and TPS without rollout reuse, back to back on each prompt (``loglik_tokens`` new
    tokens, the same seed): each one's mean log-likelihood per token with paired intervals, and TPS's total
    wall time over single-shot's — a second measure of ``tps_vs_single``, over many prompts."""
    from genesis_ps.generation import single_shot
    from genesis_ps.sampling.params import SamplerParams
    from genesis_ps.sampling.protocol import Prompt

    n = min(cfg.loglik_prompts, len(LOGLIK_PROMPTS))
    tps = SamplerParams(method="tps", alpha=cfg.alpha, max_new_tokens=cfg.loglik_tokens)
    runs = {"tps": tps, "tps_fresh": tps.with_(reuse_rollouts=False)}
    lls: dict[str, list[float]] = {k: [] for k in ("single", *runs)}
    walls = dict.fromkeys(lls, 0.0)
    for i, text in enumerate(LOGLIK_PROMPTS[:n]):
        _clear(model)
        results = {"single": asyncio.run(single_shot(model, Prompt.user(text), max_new_tokens=cfg.loglik_tokens,
                                                     temperature=1.0 / cfg.alpha, seed=seed + i))}  # fmt: skip
        for name, p in runs.items():
            results[name] = _sample(model, Prompt.user(text), p.with_(seed=seed + i))
        for name, r in results.items():
            walls[name] += r.latency_s
            lls[name].append(_loglik_per_token(r))
    out: dict[str, Any] = {"prompts": n, "max_new_tokens": cfg.loglik_tokens}
    for name in lls:
        out[name] = {"mean_loglik": statistics.fmean(lls[name]), "wall_s": walls[name], "per_prompt": lls[name]}
    for a, b in (("tps", "single"), ("tps", "tps_fresh")):
        d = paired_compare(lls[b], lls[a], name_a=b, name_b=a, metric="loglik_per_token")
        out[f"{a}_minus_{b}"] = {"mean": d.mean_diff, "ci": [d.ci_low, d.ci_high]}
    out["tps_wall_vs_single"] = walls["tps"] / walls["single"]
    out["tps_fresh_wall_vs_single"] = walls["tps_fresh"] / walls["single"]
    say(f"tps over {n} prompts: single-shot {out['single']['mean_loglik']:.4f} nats/token in {walls['single']:.1f}s, "
        f"tps {out['tps']['mean_loglik']:.4f} in {walls['tps']:.1f}s, tps_fresh {out['tps_fresh']['mean_loglik']:.4f} "
        f"in {walls['tps_fresh']:.1f}s")
    return out


def _paired_walls(model: Any, mh: Any, found: Any, n_prompts: int, seed: int) -> tuple[float, float]:
    """Total wall times of today's MH and of the configuration found, run back to back on each prompt (the
    same seeds as the search, so the same samples): the host's speed drifts over the minutes a search takes."""
    from genesis_ps.sampling.protocol import Prompt

    walls = [0.0, 0.0]
    for i, text in enumerate(LOGLIK_PROMPTS[:n_prompts]):
        for j, params in enumerate((mh, found)):
            walls[j] += _sample(model, Prompt.user(text), params.with_(seed=seed + i)).latency_s
    return walls[0], walls[1]

"""The decomposition benchmark's aggregates and paired tests, overall and per domain.

Every comparison pairs rows by (domain, record id): both methods ran on the same records with the same
seed. Three families, each a :func:`~genesis_ps.bench.stats.paired_compare` (difference ``b − a``,
paired bootstrap 95% interval, Wilcoxon and sign-flip permutation p) with a :func:`verdict` that says no
more than the interval:

- ``comparisons``: every method against the first listed (overall);
- ``matched_comparisons``: each power method (``b``) against each of its compute-matched baselines
  (``a``), with the relative difference ``mean_b / mean_a − 1`` and its paired bootstrap interval, and
  where that interval sits against the design plan's "+15–25%" claim (:func:`claim_reading`);
- ``tilt_comparisons``: each tilted method (``b``) against the same sampler untilted (``a``).

``domain_comparisons`` repeats the matched and tilt families per domain where a domain has at least
:data:`MIN_PAIRED_N` pairs (below that a bootstrap interval means little; the entry says it was not tested).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from genesis_ps.bench.quality_report import pareto_frontier, verdict
from genesis_ps.bench.report import mean_present
from genesis_ps.bench.stats import mean_ci, paired_compare

__all__ = ["CLAIM", "COMPARED_METRICS", "MIN_PAIRED_N", "aggregate", "claim_reading", "relative_ci", "summarise"]

COMPARED_METRICS = ("f1_chain", "f1_graph", "quality")
MIN_PAIRED_N = 5
CLAIM = (0.15, 0.25)
"""The design plan's claim: decomposition with power sampling is 15–25% better (relative)."""


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means (with bootstrap 95% intervals for f1_chain / f1_graph), rates, tokens and wall time."""
    n = len(rows)
    tg = sum(r["tokens_generated"] for r in rows)
    tr = sum(r["tokens_returned"] for r in rows)
    out: dict[str, Any] = {"n": n}
    for key in ("f1_chain", "f1_graph"):
        m, lo, hi = mean_ci([r[key] for r in rows])
        out[key] = {"mean": m, "ci_low": lo, "ci_high": hi}
    out.update(
        parse_rate=mean_present([float(r["parse_ok"]) for r in rows]),
        valid_rate=mean_present([float(r["valid"]) for r in rows]),
        strict_worfbench_parse_rate=mean_present([float(r["strict_worfbench_parse"]) for r in rows]),
        quality=mean_present([r["quality"] for r in rows]),
        tokens_generated_mean=tg / n if n else math.nan,
        cost_multiplier=tg / max(tr, 1),
        latency_s_mean=mean_present([r["latency_s"] for r in rows]),
        wall_s_total=sum(r["latency_s"] for r in rows),
        power_fallbacks=sum(len(r["generation_fallbacks"]) for r in rows),
        acceptance_rate_mean=mean_present([r.get("acceptance_rate") for r in rows]),
        accepted_any_rate=mean_present(
            [float(r["acceptance_rate"] > 0) for r in rows if r.get("acceptance_rate") is not None]
        ),
    )
    return out


def relative_ci(a: Sequence[float], b: Sequence[float], *, n_boot: int = 5000, seed: int = 0) -> dict[str, Any]:
    """``mean(b) / mean(a) − 1`` and a paired percentile-bootstrap 95% interval; None where ``mean(a)`` is 0
    (or is 0 in some resample: the ratio is then unbounded and no interval is given)."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.size == 0 or xa.mean() <= 0:
        return {"relative_diff": None, "rel_ci_low": None, "rel_ci_high": None}
    rel = float(xb.mean() / xa.mean() - 1)
    idx = np.random.default_rng(seed).integers(0, xa.size, size=(n_boot, xa.size))
    ma, mb = xa[idx].mean(axis=1), xb[idx].mean(axis=1)
    if np.any(ma <= 0):
        return {"relative_diff": rel, "rel_ci_low": None, "rel_ci_high": None}
    lo, hi = np.percentile(mb / ma - 1, [2.5, 97.5])
    return {"relative_diff": rel, "rel_ci_low": float(lo), "rel_ci_high": float(hi)}


def claim_reading(lo: float | None, hi: float | None, claim: tuple[float, float] = CLAIM) -> str:
    """Where a relative-difference interval sits against the claimed range, and nothing stronger."""
    if lo is None or hi is None:
        return "no interval (baseline mean 0 in some resample)"
    c_lo, c_hi = claim
    if hi < c_lo:
        return f"interval below +{c_lo:.0%}: claim not supported"
    if lo > c_hi:
        return f"interval above +{c_hi:.0%}"
    if lo >= c_lo and hi <= c_hi:
        return "interval inside the claimed range"
    return "interval overlaps the claimed range: neither confirmed nor ruled out"


def _pairs(rows_a: Sequence[dict[str, Any]], rows_b: Sequence[dict[str, Any]], metric: str) -> tuple[list[float], ...]:
    a = {(r["domain"], r["id"]): r for r in rows_a}
    b = {(r["domain"], r["id"]): r for r in rows_b}
    keys = [k for k in a if k in b and a[k][metric] is not None and b[k][metric] is not None]
    return [float(a[k][metric]) for k in keys], [float(b[k][metric]) for k in keys]


def _compare(rows_a: Sequence[dict[str, Any]], rows_b: Sequence[dict[str, Any]], name_a: str, name_b: str,
             metric: str, family: str, scope: str) -> dict[str, Any]:  # fmt: skip
    xa, xb = _pairs(rows_a, rows_b, metric)
    c: dict[str, Any] = paired_compare(xa, xb, name_a=name_a, name_b=name_b, metric=metric).to_dict()
    same = bool(xa) and xa == xb
    c.update(family=family, scope=scope, verdict="identical on every record" if same else verdict(c))
    if family == "matched":
        ids_a = {(r["domain"], r["id"]) for r in rows_b}
        c["tokens_power"] = mean_present([float(r["tokens_generated"]) for r in rows_b])
        c["tokens_baseline"] = mean_present(
            [float(r["tokens_generated"]) for r in rows_a if (r["domain"], r["id"]) in ids_a]
        )
        rel = relative_ci(xa, xb)
        reading = claim_reading(rel["rel_ci_low"], rel["rel_ci_high"])
        if rel["relative_diff"] is None:
            reading = "baseline mean 0: no relative difference"
        c.update(rel, claim=reading)
    return c


def _families(by_method: dict[str, list[dict[str, Any]]], tilt_pairs: dict[str, str],
              scope: str) -> list[dict[str, Any]]:  # fmt: skip
    out = []
    for m, rows in by_method.items():
        if "[" in m and rows:
            pw = m[m.index("[") + 1 : -1]
            out += [_compare(rows, by_method.get(pw, []), m, pw, metric, "matched", scope)
                    for metric in ("f1_chain", "f1_graph")]  # fmt: skip
    for tilted, plain in tilt_pairs.items():
        if by_method.get(tilted) and by_method.get(plain):
            out += [_compare(by_method[plain], by_method[tilted], plain, tilted, metric, "tilt", scope)
                    for metric in COMPARED_METRICS]  # fmt: skip
    return out


def summarise(rows: list[dict[str, Any]], methods: Sequence[str], tilt_pairs: dict[str, str]) -> dict[str, Any]:
    """Aggregates per method and per domain × method, and the paired comparisons (module docstring).
    ``tilt_pairs`` maps each tilted method to its untilted sampler's name."""
    by_method = {m: [r for r in rows if r["method"] == m] for m in methods}
    domains = sorted({r["domain"] for r in rows})
    per_domain = {
        d: {m: aggregate([r for r in by_method[m] if r["domain"] == d]) for m in methods if by_method[m]}
        for d in domains
    }
    base = methods[0] if methods else ""
    comparisons = [
        _compare(by_method[base], by_method[m], base, m, metric, "vs_first", "overall")
        for m in methods[1:] if by_method[m] for metric in COMPARED_METRICS
    ]  # fmt: skip
    overall = _families(by_method, tilt_pairs, "overall")
    domain_comparisons = []
    for d in domains:
        sub = {m: [r for r in rs if r["domain"] == d] for m, rs in by_method.items()}
        for c in _families(sub, tilt_pairs, d):
            if c["n"] < MIN_PAIRED_N:
                c = {k: c[k] for k in ("a", "b", "metric", "n", "family", "scope")}
                c["verdict"] = f"not tested (n < {MIN_PAIRED_N})"
            domain_comparisons.append(c)
    agg = {m: aggregate(by_method[m]) for m in methods if by_method[m]}
    return {
        "methods": agg,
        "per_domain": per_domain,
        "comparisons": comparisons,
        "matched_comparisons": [c for c in overall if c["family"] == "matched"],
        "tilt_comparisons": [c for c in overall if c["family"] == "tilt"],
        "domain_comparisons": domain_comparisons,
        "pareto_frontier": pareto_frontier(
            {n: (a["tokens_generated_mean"], a["f1_graph"]["mean"]) for n, a in agg.items()}
        ),
    }

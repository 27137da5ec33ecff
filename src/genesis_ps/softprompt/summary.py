"""Dataset-level figures of a stage-2 (+ stage-3) result, and the thresholds a dataset is judged by.

The thresholds are this package's declared yardstick, not measurements: a dataset reaches a level when
its convergence rate and its greedy pass rate among converged pairs are both at least the level's values.
"""

from __future__ import annotations

from collections import Counter
from statistics import mean
from typing import Any

from genesis_ps.softprompt.health import HEALTH_CLASSES

__all__ = ["LEVELS", "level_of", "summarise"]

LEVELS: tuple[tuple[str, float, float], ...] = (
    ("excellent", 0.95, 0.90),
    ("good", 0.80, 0.60),
    ("minimum viable", 0.50, 0.25),
)
"""(name, convergence rate, pass rate among converged), best first."""


def level_of(convergence: float, pass_converged: float | None) -> str:
    """The best level both rates reach, or ``"below minimum viable"``."""
    for name, conv, pas in LEVELS:
        if convergence >= conv and pass_converged is not None and pass_converged >= pas:
            return name
    return "below minimum viable"


def _mean(xs: list[float]) -> float | None:
    return mean(xs) if xs else None


def summarise(per: dict[int, dict[str, Any]], decoded: dict[int, dict[str, Any]] | None,
              *, weight_q: float = 1.0, weight_a: float = 1.0) -> dict[str, Any]:
    """Convergence rate, mean loss ratio vs random, Q/A balance, health counts, steps, verdicts, level."""
    idx = sorted(per)
    conv = [i for i in idx if per[i]["converged"]]
    shares = []
    for i in idx:
        wq, wa = weight_q * per[i]["final_q"], weight_a * per[i]["final_a"]
        if wq + wa > 0:
            shares.append(wq / (wq + wa))
    exact_steps = [float(per[i]["exact_step"]) for i in idx if per[i]["exact_step"] is not None]
    out: dict[str, Any] = {
        "pairs": len(idx),
        "convergence_rate": len(conv) / len(idx),
        "convergence_rate_random_rule": sum(per[i]["converged_random_rule"] for i in idx) / len(idx),
        "q_convergence_rate": sum(per[i]["converged_q"] for i in idx) / len(idx),
        "a_convergence_rate": sum(per[i]["converged_a"] for i in idx) / len(idx),
        "mean_ratio_vs_random": mean(per[i]["ratio_vs_random"] for i in idx),
        "mean_final_q": mean(per[i]["final_q"] for i in idx),
        "mean_final_a": mean(per[i]["final_a"] for i in idx),
        "q_share_of_loss": _mean(shares),
        "teacher_forced_exact_rate": sum(per[i]["teacher_forced_exact"] for i in idx) / len(idx),
        "health": {h: sum(per[i]["health"] == h for i in idx) for h in HEALTH_CLASSES},
        "mean_steps": mean(per[i]["steps"] for i in idx),
        "mean_steps_to_exact": _mean(exact_steps),
    }
    if decoded is not None:
        v = Counter(decoded[i]["verdict"] for i in idx)
        out["verdicts"] = {k: v.get(k, 0) for k in ("pass", "partial", "fail")}
        out["pass_rate"] = v.get("pass", 0) / len(idx)
        out["pass_rate_converged"] = (sum(decoded[i]["verdict"] == "pass" for i in conv) / len(conv)) if conv else None
        out["q_exact_rate"] = sum(decoded[i]["q_exact"] for i in idx) / len(idx)
        out["a_exact_rate"] = sum(decoded[i]["a_exact"] for i in idx) / len(idx)
        out["mean_q_f1"] = mean(decoded[i]["q_f1"] for i in idx)
        out["mean_a_f1"] = mean(decoded[i]["a_f1"] for i in idx)
        out["level"] = level_of(out["convergence_rate"], out["pass_rate_converged"])
    return out

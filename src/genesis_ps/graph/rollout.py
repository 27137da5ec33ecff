"""Feature flags and deterministic rollout: does this request power-sample in this layer, and if not, why?

The rollout bucket is a hash of the request id (SHA-256 → 0 ≤ bucket < 100), so a request always lands on
the same side of ``POWER_SAMPLING_ROLLOUT_PERCENT``, on every machine and every run.
"""

from __future__ import annotations

import hashlib

from genesis_ps.settings import Settings

__all__ = ["in_rollout", "power_decision", "request_id_for", "rollout_bucket"]


def rollout_bucket(request_id: str) -> float:
    """A stable bucket in [0, 100) with 0.01 resolution."""
    h = hashlib.sha256(str(request_id).encode("utf-8")).digest()
    return (int.from_bytes(h[:8], "big") % 10_000) / 100.0


def in_rollout(request_id: str, percent: float) -> bool:
    """True when the request falls inside the rollout share (100 → always, 0 → never)."""
    if percent >= 100.0:
        return True
    if percent <= 0.0:
        return False
    return rollout_bucket(request_id) < percent


def power_decision(settings: Settings, layer: str, request_id: str) -> tuple[bool, str | None]:
    """``(True, None)`` when the layer power-samples this request, else ``(False, reason)`` with reason
    ``flag_off`` (master or layer flag off) or ``rollout`` (outside the rollout share)."""
    if not settings.layer(layer).enabled:
        return False, "flag_off"
    if not in_rollout(request_id, settings.rollout_percent):
        return False, "rollout"
    return True, None


def request_id_for(request: str) -> str:
    """The default request id: a hash of the request text (the same request, the same id)."""
    return "req-" + hashlib.sha256(request.encode("utf-8")).hexdigest()[:16]

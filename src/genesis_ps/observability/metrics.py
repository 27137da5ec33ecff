"""Prometheus metrics, in their own ``CollectorRegistry`` (namespace ``genesis_ps_``), and the helpers that
record a sampling call, a finished generation, a plan fallback, an evaluation and a graph node run."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from genesis_ps.observability.tracing import current_layer, span

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from genesis_ps.sampling.result import GenerationResult

__all__ = [
    "METRIC_NAMES",
    "PLANNED_FALLBACKS",
    "metric_value",
    "metrics",
    "node_span",
    "record_call",
    "record_evaluation",
    "record_outcome",
    "record_plan_fallback",
    "record_provider_error",
    "registry",
    "reset_metrics",
    "start_metrics_server",
]

NAMESPACE = "genesis_ps"
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
RATIO_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
COST_BUCKETS = (1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 50.0, 100.0)

METRIC_NAMES: dict[str, str] = {
    "genesis_ps_sampling_calls_total": "counter",
    "genesis_ps_generations_total": "counter",
    "genesis_ps_fallbacks_total": "counter",
    "genesis_ps_tokens_generated_total": "counter",
    "genesis_ps_sampling_latency_seconds": "histogram",
    "genesis_ps_acceptance_rate": "histogram",
    "genesis_ps_cost_multiplier": "histogram",
    "genesis_ps_quality_score": "histogram",
    "genesis_ps_evaluations_total": "counter",
    "genesis_ps_graph_node_duration_seconds": "histogram",
    "genesis_ps_graph_node_runs_total": "counter",
    "genesis_ps_provider_errors_total": "counter",
    "genesis_ps_plan_fallbacks_total": "counter",
}
"""Every series family this module exports (name as scraped, without ``_bucket``/``_sum``/``_count``)."""


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        r = self.registry = CollectorRegistry(auto_describe=True)
        ns = NAMESPACE
        self.calls = Counter(
            "sampling_calls",
            "power_sample / single_shot calls by layer, method and status (ok or the error type)",
            ["layer", "method", "status"],
            namespace=ns,
            registry=r,
        )
        self.generations = Counter(
            "generations",
            "Finished generations by layer and outcome (power, fallback, single)",
            ["layer", "outcome"],
            namespace=ns,
            registry=r,
        )
        self.fallbacks = Counter(
            "fallbacks", "Fallbacks to single-shot by layer and reason", ["layer", "reason"], namespace=ns, registry=r
        )
        self.tokens = Counter(
            "tokens_generated",
            "Tokens sampled (all proposals and particles)",
            ["layer", "method"],
            namespace=ns,
            registry=r,
        )
        self.latency = Histogram(
            "sampling_latency_seconds",
            "Latency of one generation call",
            ["layer", "method"],
            namespace=ns,
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.acceptance = Histogram(
            "acceptance_rate",
            "MH acceptance rate of a power-sampling run",
            ["layer", "method"],
            namespace=ns,
            registry=r,
            buckets=RATIO_BUCKETS,
        )
        self.cost = Histogram(
            "cost_multiplier",
            "Measured tokens generated / tokens returned of a run",
            ["layer", "method"],
            namespace=ns,
            registry=r,
            buckets=COST_BUCKETS,
        )
        self.quality = Histogram(
            "quality_score",
            "Evaluator scores in [0, 1]",
            ["layer", "evaluator"],
            namespace=ns,
            registry=r,
            buckets=RATIO_BUCKETS,
        )
        self.evaluations = Counter(
            "evaluations",
            "Evaluations by evaluator and status (ok or failed)",
            ["evaluator", "status"],
            namespace=ns,
            registry=r,
        )
        self.node_duration = Histogram(
            "graph_node_duration_seconds",
            "Duration of one graph node run",
            ["node"],
            namespace=ns,
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.node_runs = Counter(
            "graph_node_runs", "Graph node runs by node and status", ["node", "status"], namespace=ns, registry=r
        )
        self.provider_errors = Counter(
            "provider_errors",
            "Failed provider attempts by provider and error (a refused malformed response is MalformedResponseError)",
            ["provider", "error"],
            namespace=ns,
            registry=r,
        )
        self.plan_fallbacks = Counter(
            "plan_fallbacks",
            "Decompositions that fell back to the rule-based planner, by reason (unparseable, invalid, ...)",
            ["reason"],
            namespace=ns,
            registry=r,
        )


_METRICS: list[_Metrics | None] = [None]


def metrics() -> _Metrics:
    """The metric objects (created on first use, in their own registry)."""
    m = _METRICS[0]
    if m is None:
        m = _METRICS[0] = _Metrics()
    return m


def registry() -> CollectorRegistry:
    """The ``CollectorRegistry`` holding every genesis_ps metric."""
    return metrics().registry


def metric_value(name: str, **labels: str) -> float:
    """One sample of :func:`registry` by full name and labels (0 when it has not been recorded)."""
    v = registry().get_sample_value(name, labels)
    return 0.0 if v is None else v


def reset_metrics() -> None:
    """Start again with a fresh, empty registry (tests; a running metrics server keeps the old one)."""
    _METRICS[0] = None


def start_metrics_server(port: int, addr: str = "127.0.0.1") -> Any:
    """Serve :func:`registry` at ``http://addr:port/metrics``; returns what prometheus_client returns
    (the server and its thread). ``port`` 0 picks a free port (``server.server_port``). The default
    address is loopback; pass ``addr="0.0.0.0"`` to let a Prometheus on another host scrape it."""
    from prometheus_client import start_http_server

    from genesis_ps.errors import ConfigError

    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError("metrics_port", f"must be an integer port 0-65535, got {port!r}")
    return start_http_server(port, addr=addr, registry=registry())


def record_call(
    method: str,
    status: str,
    result: GenerationResult | None = None,
    *,
    layer: str | None = None,
    latency_s: float | None = None,
) -> None:
    """One ``power_sample`` / ``single_shot`` call; with its result, its measured figures too."""
    m, lay = metrics(), layer or current_layer()
    m.calls.labels(lay, method, status).inc()
    if latency_s is not None:
        m.latency.labels(lay, method).observe(latency_s)
    if result is not None:
        m.tokens.labels(lay, result.method).inc(result.tokens_generated)
        if result.tokens_returned > 0:
            m.cost.labels(lay, result.method).observe(result.cost_multiplier)
        if result.acceptance_rate is not None:
            m.acceptance.labels(lay, result.method).observe(result.acceptance_rate)


def record_outcome(result: GenerationResult, *, layer: str | None = None) -> None:
    """A finished generation: power-sampled, a fallback (counted with its reason) or plain single-shot."""
    m, lay = metrics(), layer or current_layer()
    if result.fallback:
        m.generations.labels(lay, "fallback").inc()
        m.fallbacks.labels(lay, result.fallback.split(":", 1)[0]).inc()
    else:
        m.generations.labels(lay, "single" if result.method == "single" else "power").inc()


def record_provider_error(provider: str, error: str) -> None:
    """One failed provider attempt (retried or not): HTTP errors, timeouts, refused malformed responses."""
    metrics().provider_errors.labels(provider or "?", error).inc()
PLANNED_FALLBACKS = ("flag_off", "rollout", "disabled")
"""Fallback reasons that are configured decisions, not failures: the alert and the dashboard's fallback
panel leave them out (``reason!~"flag_off|rollout|disabled"``; a test checks both)."""


def record_plan_fallback(reason: str) -> None:
    """A decomposition that used the rule-based planner (``heuristic:<reason>``)."""
    metrics().plan_fallbacks.labels(reason.removeprefix("heuristic:").split(":", 1)[0]).inc()


def record_evaluation(evaluator: str, value: float | None, *, layer: str | None = None) -> None:
    """An evaluation: its score (when it succeeded) and its status."""
    m = metrics()
    m.evaluations.labels(evaluator or "?", "ok" if value is not None else "failed").inc()
    if value is not None:
        m.quality.labels(layer or current_layer(), evaluator or "?").observe(value)


@contextlib.contextmanager
def node_span(node: str, *, parent: Mapping[str, Any] | None = None, **attributes: Any) -> Iterator[Any]:
    """A graph node run: a span ``genesis_ps.node.<node>`` plus duration and run-count metrics. With
    ``parent`` (a run's trace record, :func:`start_run`) the span is a child of the run's span and carries
    its request and thread ids, wherever and whenever the node runs."""
    m, t0, status = metrics(), time.perf_counter(), "ok"
    run = dict(parent or {})
    attrs = {"request_id": run.get("request_id"), "thread_id": run.get("thread_id"), **attributes}
    try:
        with span(f"genesis_ps.node.{node}", run, node=node, **attrs) as sp:
            yield sp
    except BaseException as exc:
        status = type(exc).__name__
        raise
    finally:
        m.node_duration.labels(node).observe(time.perf_counter() - t0)
        m.node_runs.labels(node, status).inc()

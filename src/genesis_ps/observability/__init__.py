"""OpenTelemetry spans and Prometheus metrics.

Spans use the OpenTelemetry *API* only, imported at call time: with no SDK configured they are no-ops.
:func:`configure_tracing` points genesis_ps at a specific ``TracerProvider`` (tests pass one with an
in-memory exporter) without touching the global one. A graph run is one trace: :func:`start_run` opens
the run's span, and every node span (:func:`node_span`) and sampling span is its child, with the
request and thread ids as attributes (:mod:`.tracing`).

Metrics live in their own ``CollectorRegistry`` (:func:`registry`), namespace ``genesis_ps_``, so an
application's registry is never polluted and tests can read values back; :func:`start_metrics_server`
serves it over HTTP (on loopback by default). Every metric name is listed in :data:`METRIC_NAMES` (the
deploy files' alert rules and dashboard may only reference those — a test checks it) (:mod:`.metrics`).

The *layer* (``htdag``, ``sica``, ``se_darwin``, or ``direct`` outside any) of a generation comes from
:func:`layer_scope`, a context variable, so the sampling functions need no extra parameter.
"""

from genesis_ps.observability.metrics import (
    METRIC_NAMES,
    PLANNED_FALLBACKS,
    metric_value,
    metrics,
    node_span,
    record_call,
    record_evaluation,
    record_outcome,
    record_plan_fallback,
    record_provider_error,
    registry,
    reset_metrics,
    start_metrics_server,
)
from genesis_ps.observability.tracing import (
    block_progress,
    configure_tracing,
    current_layer,
    end_run,
    layer_scope,
    set_attributes,
    span,
    start_run,
)

__all__ = [
    "METRIC_NAMES",
    "PLANNED_FALLBACKS",
    "block_progress",
    "configure_tracing",
    "current_layer",
    "end_run",
    "layer_scope",
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
    "set_attributes",
    "span",
    "start_metrics_server",
    "start_run",
]

"""Shared fixtures: an in-memory span exporter with fresh metrics, and a metric reader."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genesis_ps import observability as obs


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing into memory, and metrics reset before and after the test."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    obs.configure_tracing(provider)
    obs.reset_metrics()
    yield exporter
    obs.configure_tracing(None)
    obs.reset_metrics()


def metric_value(name: str, **labels: str) -> float:
    """A sample of the package's Prometheus registry (0 when absent)."""
    v = obs.registry().get_sample_value(name, labels)
    return 0.0 if v is None else v

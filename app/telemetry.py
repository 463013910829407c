"""The process's OpenTelemetry meter provider: where the metrics go.

Every process that runs the pipeline installs it once: the instruments
(`app.pipeline.telemetry`, `plugin_runtime.telemetry`) then record into it. It always
has a Prometheus reader (the worker serves it as `GET /metrics` on its HTTP port) and an
in-memory one (the embedded mode's summary); when the standard `OTEL_EXPORTER_OTLP_ENDPOINT`
or `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` is set, it also exports over OTLP/HTTP every
`OTEL_METRIC_EXPORT_INTERVAL` ms (the SDK reads those variables itself).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    MetricReader,
    NumberDataPoint,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
EVENTS_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000)
OTLP_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")


@dataclass
class Telemetry:
    provider: MeterProvider
    memory: InMemoryMetricReader
    exporters: list[str] = field(default_factory=list)


_installed: Telemetry | None = None


def install() -> Telemetry:
    """The process's provider, made on the first call (OpenTelemetry has one per process)."""
    global _installed
    if _installed is not None:
        return _installed
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    memory = InMemoryMetricReader()
    readers: list[MetricReader] = [memory, PrometheusMetricReader()]
    exporters = ["prometheus"]
    if any(os.environ.get(name) for name in OTLP_VARIABLES):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        exporters.append("otlp")
    views = [
        View(instrument_name="*.duration", aggregation=_buckets(SECONDS_BUCKETS)),
        View(instrument_name="plugin_server.event.latency", aggregation=_buckets(SECONDS_BUCKETS)),
        View(
            instrument_name="plugin_server.stage.batch.size", aggregation=_buckets(EVENTS_BUCKETS)
        ),
    ]
    service = os.environ.get("OTEL_SERVICE_NAME") or "plugin-server"
    provider = MeterProvider(
        metric_readers=readers, views=views, resource=Resource.create({"service.name": service})
    )
    metrics.set_meter_provider(provider)
    from app import tracing

    if tracing.install():
        exporters.append("traces")
    _installed = Telemetry(provider, memory, exporters)
    return _installed


def _buckets(bounds: Iterable[float]) -> ExplicitBucketHistogramAggregation:
    return ExplicitBucketHistogramAggregation(boundaries=list(bounds))


def prometheus_text() -> bytes:
    """The metrics in Prometheus' text format, for `GET /metrics`."""
    from prometheus_client import REGISTRY, generate_latest

    return bytes(generate_latest(REGISTRY))


# -- the embedded mode's summary -----------------------------------------------------

Snapshot = dict[tuple[str, tuple[tuple[str, Any], ...]], tuple[float, float]]


def snapshot() -> Snapshot:
    """Every counter's value and every histogram's (count, sum) so far, by name and
    attributes."""
    data = install().memory.get_metrics_data()
    values: Snapshot = {}
    if data is None:
        return values
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    key = (metric.name, tuple(sorted((point.attributes or {}).items())))
                    if isinstance(point, HistogramDataPoint):
                        values[key] = (float(point.count), float(point.sum))
                    elif isinstance(point, NumberDataPoint):
                        values[key] = (float(point.value), 0.0)
    return values


def summary(before: Snapshot, after: Snapshot) -> str:
    """What the pipeline and the plugins did between two snapshots, as a few lines."""
    moved = {
        key: (value[0] - before.get(key, (0.0, 0.0))[0], value[1] - before.get(key, (0.0, 0.0))[1])
        for key, value in after.items()
    }
    lines = [f"{'stage':<18}{'in':>8}{'out':>8}{'dropped':>9}{'dead':>6}{'ms/batch':>10}"]
    for stage in _attribute_values(moved, "plugin_server.stage.events", "stage"):
        count = _by(moved, "plugin_server.stage.events", stage=stage)
        batches, seconds = _histogram(moved, "plugin_server.stage.duration", stage=stage)
        per_batch = f"{1000 * seconds / batches:.1f}" if batches else "-"
        lines.append(
            f"{stage:<18}{count('in'):>8}{count('out'):>8}{count('dropped'):>9}"
            f"{count('dead_lettered'):>6}{per_batch:>10}"
        )
    calls = {
        dict(attrs).get("plugin", "?"): value[0]
        for (name, attrs), value in moved.items()
        if name == "plugin_server.plugin.calls" and value[0]
    }
    for plugin, count in sorted(calls.items()):
        errors = sum(
            value[0]
            for (name, attrs), value in moved.items()
            if name == "plugin_server.plugin.errors" and dict(attrs).get("plugin") == plugin
        )
        lines.append(f"plugin {plugin}: {count:.0f} calls, {errors:.0f} errors")
    return "\n".join(lines)


def _attribute_values(moved: Snapshot, metric: str, attribute: str) -> list[str]:
    order = ["parse", "plugins", "plugins_overflow", "persons", "write", "exports"]
    seen = {
        str(dict(attrs).get(attribute))
        for (name, attrs), value in moved.items()
        if name == metric and value[0]
    }
    return sorted(seen, key=lambda s: order.index(s) if s in order else len(order))


def _by(moved: Snapshot, metric: str, **match: str) -> Any:
    def count(outcome: str) -> int:
        return int(
            sum(
                value[0]
                for (name, attrs), value in moved.items()
                if name == metric and _matches(attrs, {**match, "outcome": outcome})
            )
        )

    return count


def _histogram(moved: Snapshot, metric: str, **match: str) -> tuple[float, float]:
    count = total = 0.0
    for (name, attrs), (points, seconds) in moved.items():
        if name == metric and _matches(attrs, match):
            count, total = count + points, total + seconds
    return count, total


def _matches(attrs: tuple[tuple[str, Any], ...], wanted: Mapping[str, str]) -> bool:
    have = dict(attrs)
    return all(have.get(k) == v for k, v in wanted.items())

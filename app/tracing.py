"""Traces: a span per batch per stage, and sampled per-event traces from capture to the end
of the chain, across the Kafka hops.

Off unless `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`) or an OTLP endpoint
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; off, nothing
here runs. An event is traced when the capture that produced it was (its message carries
a W3C `traceparent` header), or else when its uuid falls in the sampled share:
`OTEL_TRACES_SAMPLER=traceidratio` (or `parentbased_traceidratio`) with
`OTEL_TRACES_SAMPLER_ARG`, every event with `always_on`, none with `always_off`, and one
in a hundred when `OTEL_TRACES_SAMPLER` is not set.

A batch message between stages carries one message's worth of events, so per-event
contexts travel in a header of the batch (`EVENT_TRACES_HEADER`: JSON, the traced events'
`traceparent` by uuid, or by input offset before parse has read the uuids), as
OpenTelemetry's messaging conventions do for batches: each stage's batch span links to
the traced events' contexts, and each traced event gets a span of its own per stage,
with its uuid as `plugin_server.event.uuid`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

EVENT_TRACES_HEADER = "event_traces"
EVENT_UUID = "plugin_server.event.uuid"
_OTLP = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("plugin_server")

enabled = False
_ratio = 1.0
_threshold = 16**12
# the share of events traced when OTEL_TRACES_SAMPLER is not set: a span per stage for
# every event would cost far more than the event itself
DEFAULT_SHARE = 0.01

Traces = dict[str, Context]  # a batch's traced events: uuid (or input offset) -> parent
Headers = Mapping[str, Any] | list[tuple[str, bytes]] | None  # Kafka message headers


def wanted() -> bool:
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return bool(exporter) or any(os.environ.get(name) for name in _OTLP)


def install() -> bool:
    """Set up the process's tracer provider when the environment asks for traces."""
    global enabled, _ratio, _threshold
    if enabled or not wanted():
        return enabled
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

    service = os.environ.get("OTEL_SERVICE_NAME") or "plugin-server"
    # which events are traced is decided here (`sampled`, or the capture's own choice,
    # which a parent-based sampler follows): the SDK must not sample them a second time
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}), sampler=ParentBased(ALWAYS_ON)
    )
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if exporter_name == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _ratio = _sampled_share()
    _threshold = int(_ratio * 16**12)
    enabled = True
    return True


def _sampled_share() -> float:
    sampler = os.environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if not sampler:
        return DEFAULT_SHARE
    if sampler in ("always_off", "parentbased_always_off"):
        return 0.0
    if sampler in ("traceidratio", "parentbased_traceidratio"):
        try:
            return min(1.0, max(0.0, float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", "1"))))
        except ValueError:
            return 1.0
    return 1.0


def sampled(event_uuid: str) -> bool:
    """Whether an event with no traced capture behind it is traced: the same for every
    worker and stage, from the uuid's last 12 hex digits."""
    if _ratio >= 1.0:
        return True
    try:
        return int(event_uuid[-12:], 16) < _threshold
    except ValueError:
        return False


# -- carrying contexts --------------------------------------------------------------


def message_headers(event_uuid: str, topic: str) -> list[tuple[str, bytes]] | None:
    """A capture message's `traceparent` for a sampled event, from a producer span."""
    if not enabled or not sampled(event_uuid):
        return None
    with _tracer.start_as_current_span(
        f"send {topic}",
        kind=SpanKind.PRODUCER,
        attributes={
            EVENT_UUID: event_uuid,
            "messaging.system": "kafka",
            "messaging.destination.name": topic,
            "messaging.operation.type": "send",
        },
    ):
        carrier: dict[str, str] = {}
        _propagator.inject(carrier)
    return [(k, v.encode()) for k, v in carrier.items()]


def parent_of(headers: Headers) -> str | None:
    """The `traceparent` a message's headers carry, if any."""
    for name, value in _items(headers):
        if name == "traceparent" and value:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def batch_header(traces: Mapping[str, str]) -> list[tuple[str, bytes]] | None:
    """The header of a batch message carrying its traced events' contexts."""
    return [(EVENT_TRACES_HEADER, orjson.dumps(dict(traces)))] if traces else None


def from_batch(headers: Headers) -> Traces:
    """The contexts a batch message's header carries, by uuid or input offset."""
    for name, value in _items(headers):
        if name == EVENT_TRACES_HEADER:
            try:
                carried = orjson.loads(value)
            except orjson.JSONDecodeError:
                return {}
            if isinstance(carried, dict):
                return {
                    str(key): _propagator.extract({"traceparent": str(parent)})
                    for key, parent in carried.items()
                }
    return {}


def to_header(traces: Traces, events: list[dict[str, Any]]) -> list[tuple[str, bytes]] | None:
    """The header for sending `events` on: the contexts of those of them that are traced."""
    if not traces:
        return None
    carried = {}
    for event in events:
        context = traces.get(str(event.get("uuid")))
        if context is not None:
            carrier: dict[str, str] = {}
            _propagator.inject(carrier, context=context)
            if "traceparent" in carrier:
                carried[str(event["uuid"])] = carrier["traceparent"]
    return batch_header(carried)


def _items(
    headers: Mapping[str, Any] | list[tuple[str, bytes]] | None,
) -> Iterator[tuple[str, Any]]:
    if not headers:
        return
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in pairs:
        yield str(name), value


def by_uuid(traces: Traces, events: list[dict[str, Any]], offset_of: Any) -> Traces:
    """Parse's events, traced when their input message was (its offset is in `traces`) or
    their uuid is sampled (a trace starts here)."""
    out: Traces = {}
    for event in events:
        event_uuid = str(event.get("uuid"))
        parent = None
        if traces:
            offset = offset_of(event)
            parent = traces.get(str(offset)) if offset is not None else None
        if parent is not None:
            out[event_uuid] = parent
        elif sampled(event_uuid):
            out[event_uuid] = Context()  # a root: the event's trace starts at parse
    return out


# -- spans ------------------------------------------------------------------------------


def record_stage(stage: str, count: int, traces: Traces, started_ns: int, ended_ns: int) -> None:
    """The span of a batch of `count` events through `stage` (from `started_ns` to
    `ended_ns`), linked to its traced events, and a span per traced event under its own
    context. `traces` holds this batch's traced events only; a trace that starts in this
    stage continues under its first span (`traces` is updated)."""
    links = [Link(c) for c in (_span_context(p) for p in traces.values()) if c.is_valid]
    attributes: dict[str, str | int] = {
        "plugin_server.stage": stage,
        "messaging.batch.message_count": count,
    }
    batch = _tracer.start_span(
        f"process {stage}", kind=SpanKind.CONSUMER, links=links, attributes=attributes,
        start_time=started_ns,
    )  # fmt: skip
    batch.end(end_time=ended_ns)
    for event_uuid, parent in list(traces.items()):
        span = _tracer.start_span(
            stage, context=parent, start_time=started_ns, attributes={EVENT_UUID: event_uuid}
        )
        span.end(end_time=ended_ns)
        if not _span_context(parent).is_valid:
            traces[event_uuid] = trace.set_span_in_context(span)


def keep_only(traces: Traces, events: list[dict[str, Any]]) -> None:
    """Forget the traced events a stage did not hand on (dropped, dead-lettered)."""
    left = {str(e.get("uuid")) for e in events}
    for event_uuid in [u for u in traces if u not in left]:
        del traces[event_uuid]


def _span_context(context: Context) -> trace.SpanContext:
    return trace.get_current_span(context).get_span_context()

"""What the pipeline records with the OpenTelemetry metrics API, in both run modes.

The instruments come from the global meter provider (`app/telemetry.py` sets it up); a
stage's counts and time are recorded once per batch by `record_stage`, which both run
modes call through `app.pipeline.stages`. Attribute names: `stage`, `outcome`, `store`,
`partition`; an error's class is `error.type`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from app.pipeline.output import StageOutput
from app.pipeline.positions import position_of

_meter = metrics.get_meter("plugin_server")

STAGE_EVENTS = _meter.create_counter(
    "plugin_server.stage.events",
    unit="{event}",
    description="events through a stage, by outcome: in, out, dropped (by a plugin), "
    "dead_lettered, overflowed (to the overflow plugins stage)",
)
STAGE_BATCH = _meter.create_histogram(
    "plugin_server.stage.batch.size", unit="{event}", description="events in a stage's batch"
)
STAGE_DURATION = _meter.create_histogram(
    "plugin_server.stage.duration",
    unit="s",
    description="time a stage took over one batch, retries included",
)
EVENT_LATENCY = _meter.create_histogram(
    "plugin_server.event.latency",
    unit="s",
    description="from the capture message on the input topic to the event stored (one "
    "event in LATENCY_SAMPLE_STRIDE, 10)",
)
STORE_WRITE = _meter.create_histogram(
    "plugin_server.store.write.duration", unit="s", description="one write to a store"
)
STORE_FAILURES = _meter.create_counter(
    "plugin_server.store.write.failures", unit="{write}", description="writes a store refused"
)


def record_stage(stage: str, received: int, out: StageOutput, seconds: float) -> None:
    """One batch of `received` events through `stage`, with what it handed on."""
    attrs = {"stage": stage}
    STAGE_BATCH.record(received, attrs)
    STAGE_DURATION.record(seconds, attrs)
    handed_on, refused, overflowed = len(out.events), len(out.dead_letters), len(out.overflow)
    outcomes = {
        "in": received,
        "out": handed_on,
        "dead_lettered": refused,
        "overflowed": overflowed,
        # what a stage neither handed on nor refused, a plugin dropped (only plugins drop)
        "dropped": max(0, received - handed_on - refused - overflowed),
    }
    for outcome, count in outcomes.items():
        if count:
            STAGE_EVENTS.add(count, {"stage": stage, "outcome": outcome})


@contextmanager
def store_write(store: str) -> Iterator[None]:
    """Time one write to `store`; count it as failed when it raises."""
    started = time.perf_counter()
    try:
        yield
    except Exception as exc:
        STORE_FAILURES.add(1, {"store": store, "error.type": type(exc).__name__})
        raise
    finally:
        STORE_WRITE.record(time.perf_counter() - started, {"store": store})


# one stored event in this many has its latency recorded: a histogram record costs about
# 9 µs, a tenth of what the whole chain spends on an event; a fixed stride across all
# batches samples every event alike, whatever the size of its batch
LATENCY_SAMPLE_STRIDE = 10
_stored_count = 0


def record_stored(events: list[dict[str, Any]]) -> None:
    """Produce-to-stored latency of (a sample of) events just written, from the time of
    their input messages."""
    global _stored_count
    now_ms = time.time() * 1000
    first = -_stored_count % LATENCY_SAMPLE_STRIDE
    _stored_count += len(events)
    for event in events[first::LATENCY_SAMPLE_STRIDE]:
        position = position_of(event)
        if position is not None and position.written_ms > 0:
            EVENT_LATENCY.record(max(0.0, (now_ms - position.written_ms) / 1000))


# messages not yet read per topic and partition, as this worker's consumers last saw them
consumer_lag: dict[tuple[str, int], int] = {}


def _lag(_options: CallbackOptions) -> Iterator[Observation]:
    for (topic, partition), lag in list(consumer_lag.items()):
        yield Observation(lag, {"messaging.destination.name": topic, "partition": partition})


_meter.create_observable_gauge(
    "plugin_server.consumer.lag",
    callbacks=[_lag],
    unit="{message}",
    description="messages not yet processed, per topic and partition this worker reads",
)

"""The export buffer and export retries (spec 3.7, R86-R95)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from plugin_runtime.export_buffer import BufferSettings, ExportBuffer, event_size
from plugin_runtime.exports import EXPORT_MAX_RETRIES, retry_delay
from tests.plugin_runtime.runtime_fixtures import TEAM, event, make_runtime, record

EXPORTED = {
    "distinct_id": "my_id",
    "ip": "127.0.0.1",
    "site_url": "http://localhost",
    "team_id": 3,
    "now": "2020-11-26T12:58:58.453Z",
    "event": "exported",
}

RECORD_BATCHES = """
def export_events(events, meta):
    batches = meta.global_.setdefault("batches", [])
    batches.append([e["event"] for e in events])
    meta.storage.set("batches", batches)
"""


def test_event_size_is_its_compact_json_length():
    assert event_size(EXPORTED) == 134


def test_batches_fill_up_to_the_byte_limit():
    buffer = ExportBuffer(BufferSettings(max_bytes=1000))
    ready = [batch for _ in range(100) for batch in buffer.add(dict(EXPORTED))]
    assert [len(b) for b in ready] == [7] * 14
    assert len(buffer.drain()) == 2


def test_a_one_byte_limit_makes_batches_of_one():
    buffer = ExportBuffer(BufferSettings(max_bytes=1))
    ready = [batch for _ in range(100) for batch in buffer.add(dict(EXPORTED))]
    assert [len(b) for b in ready] == [1] * 100


@pytest.mark.parametrize(
    ("config", "max_bytes", "max_seconds"),
    [
        ({"exportEventsBufferBytes": "0"}, 1, 10),
        ({"exportEventsBufferBytes": "abc"}, 1_048_576, 10),
        ({"exportEventsBufferBytes": "999999999"}, 104_857_600, 10),
        ({"exportEventsBufferBytes": "2048"}, 2048, 10),
        ({"exportEventsBufferSeconds": "0"}, 1_048_576, 1),
        ({"exportEventsBufferSeconds": "1000"}, 1_048_576, 600),
        ({"exportEventsBufferSeconds": "5.9"}, 1_048_576, 5),
    ],
)
def test_buffer_settings_are_parsed_and_clamped(config, max_bytes, max_seconds):
    settings = BufferSettings.from_config(config)
    assert (settings.max_bytes, settings.max_seconds) == (max_bytes, max_seconds)


def test_retry_delays_double_from_six_seconds():
    delays = [retry_delay(n).total_seconds() for n in range(EXPORT_MAX_RETRIES)]
    assert delays[:3] == [6, 12, 24]
    assert delays[-1] == 98304


async def test_ignored_events_are_not_exported_and_time_flush_sends_the_rest():
    h = make_runtime(tick=0.05)
    config = {"exportEventsBufferSeconds": "1", "exportEventsToIgnore": "default event,otherEvent"}
    await h.runtime.load([record(RECORD_BATCHES, config=config)])
    names = ["default event", "otherEvent", "otherEvent2", "otherEvent3"]
    await h.runtime.export_events(TEAM, [event(n) for n in names])
    await asyncio.sleep(0.5)
    assert h.storage.rows(39) == {}
    await asyncio.sleep(0.7)
    rows = h.storage.rows(39)
    assert rows.keys() == {"batches"}
    assert json.loads(rows["batches"]) == [["otherEvent2", "otherEvent3"]]
    assert h.runtime.metrics(39)["events_delivered_successfully"] == 2
    await h.runtime.close()


async def test_close_flushes_waiting_batches():
    h = make_runtime()
    await h.runtime.load([record(RECORD_BATCHES, config={"exportEventsBufferSeconds": "600"})])
    await h.runtime.export_events(TEAM, [event("a")])
    await h.runtime.close()
    assert h.storage.rows(39) == {"batches": '[["a"]]'}


async def test_retry_error_reenqueues_the_batch_until_it_succeeds():
    h = make_runtime()
    code = """
def export_events(events, meta):
    if meta.cache.incr("calls") < 3:
        raise RetryError("later")
    meta.storage.set("delivered", len(events))
"""
    await h.runtime.load([record(code)])
    await h.runtime.export_events(TEAM, [event("a"), event("b"), event("c")])
    await h.runtime.flush_exports()
    started = datetime.now(UTC)
    (job,) = h.jobs.jobs
    assert job.name == "exportEventsWithRetry"
    assert job.payload["retriesPerformedSoFar"] == 1
    assert 0 <= job.payload["batchId"] < 1_000_000
    assert abs(job.run_at - (started + timedelta(seconds=6))) < timedelta(seconds=1)
    (job,) = h.jobs.take_due(datetime.now(UTC) + timedelta(days=1))
    await h.runtime.run_job(39, job.name, job.payload)
    (second,) = h.jobs.take_due(datetime.now(UTC) + timedelta(days=1))
    assert second.payload["retriesPerformedSoFar"] == 2
    assert second.payload["batchId"] == job.payload["batchId"]
    await h.runtime.run_job(39, second.name, second.payload)
    assert h.jobs.jobs == []
    assert h.storage.rows(39) == {"delivered": "3"}
    assert h.runtime.metrics(39)["events_seen"] == 3


async def test_exhausted_retries_hand_the_batch_to_the_failure_hook():
    h = make_runtime()
    await h.runtime.load(
        [record("def export_events(events, meta):\n    raise RetryError('down')\n")]
    )
    await h.runtime.export_events(TEAM, [event("a"), event("b")])
    await h.runtime.flush_exports()
    enqueued = 0
    while due := h.jobs.take_due(datetime.now(UTC) + timedelta(days=365)):
        enqueued += len(due)
        for job in due:
            await h.runtime.run_job(39, job.name, job.payload)
    assert enqueued == 15
    (failure,) = h.failures
    assert [e["event"] for e in failure.events] == ["a", "b"]
    assert failure.attempts == 16
    metrics = h.runtime.metrics(39)
    assert metrics["events_seen"] == 2
    assert metrics["retry_errors"] == 32
    assert metrics["undelivered_events"] == 2
    assert any("batch of 2 events" in e.message for e in h.logs.read_logs(39, source="SYSTEM"))


async def test_other_errors_are_recorded_and_not_retried():
    h = make_runtime()
    await h.runtime.load(
        [record("def export_events(events, meta):\n    raise ValueError('broken')\n")]
    )
    await h.runtime.export_events(TEAM, [event("a")])
    await h.runtime.flush_exports()
    assert h.jobs.jobs == []
    (failure,) = h.failures
    assert failure.error == "ValueError: broken"
    assert h.errors.errors[39]["message"] == "broken"
    assert h.runtime.metrics(39)["other_errors"] == 1
    assert h.runtime.metrics(39)["undelivered_events"] == 1


async def test_export_plugin_counts_as_deferred_in_the_chain():
    h = make_runtime()
    await h.runtime.load([record(RECORD_BATCHES)])
    (out,) = await h.runtime.process_events(TEAM, [event()])
    assert out["properties"]["$plugins_deferred"] == ["test-plugin (39)"]
    assert h.runtime.configs_with("exportEvents") == [39]

"""The exports stage delivers each event once, even when earlier stages send it again
(their offsets were not committed when a worker died), and never loses one for it."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from app.pipeline.exports import export_events
from app.pipeline.positions import POSITION_KEY
from app.stores.delivery_marks import DeliveryMarks
from tests.app.pipeline_fixtures import embedded

COUNTER = """
def on_event(event, meta):
    seen = meta.storage.get(event["uuid"]) or 0
    meta.storage.set(event["uuid"], seen + 1)
    if "$$input" in event:
        meta.storage.set("saw position", True)
"""


def stored(offset: int | None, *, partition: int = 0, written_ms: int = 1) -> dict[str, Any]:
    event: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "event": "$pageview",
        "distinct_id": "u",
        "team_id": 1,
        "properties": {},
        "timestamp": "2026-11-01T00:00:00.000Z",
        "elements": [],
        "person": {"uuid": "p", "properties": {}, "created_at": "2026-11-01T00:00:00.000Z"},
    }
    if offset is not None:
        event[POSITION_KEY] = [partition, offset, written_ms]
    return event


async def deliveries(tmp_path: Path, batches: list[list[dict[str, Any]]]) -> dict[str, Any]:
    plugin = tmp_path / "counter"
    plugin.mkdir()
    (plugin / "plugin.json").write_text('{"name": "counter", "main": "plugin.py"}')
    (plugin / "plugin.py").write_text(COUNTER)
    async with embedded(tmp_path, [str(plugin)]) as resources:
        for batch in batches:
            await export_events(resources.context, [dict(e) for e in batch])
        config = resources.context.plugins.configs_with("on_event")[0]
        storage = resources.host.backends.storage
        keys = {e["uuid"] for batch in batches for e in batch} | {"saw position"}
        return {key: storage.get(config, key) for key in keys}


async def test_a_batch_sent_again_is_not_delivered_again(tmp_path: Path) -> None:
    first = [stored(offset) for offset in range(10)]
    later = [stored(offset) for offset in range(10, 15)]
    # a stage that died resends its last batches: part of the first, then new events
    counts = await deliveries(tmp_path, [first, first[5:], [*later, *first[8:]], later])
    assert all(counts[e["uuid"]] == "1" for e in first + later)
    assert counts["saw position"] is None  # plugins never see where an event came from


async def test_events_without_a_position_are_always_delivered(tmp_path: Path) -> None:
    event = stored(None)
    counts = await deliveries(tmp_path, [[stored(5)], [event], [event]])
    assert counts[event["uuid"]] == "2"


async def test_an_input_topic_made_anew_is_delivered_from_its_first_offset(
    tmp_path: Path,
) -> None:
    before = [stored(offset) for offset in range(100, 110)]
    anew = [stored(offset, written_ms=int(time.time() * 1000) + 60_000) for offset in range(5)]
    other = [stored(3, partition=1)]
    counts = await deliveries(tmp_path, [before, anew, other])
    assert all(counts[e["uuid"]] == "1" for e in before + anew + other)


@pytest.mark.integration
async def test_a_worker_taking_a_partition_over_knows_how_far_it_was_delivered() -> None:
    key = f"test:delivered:{uuid.uuid4().hex}"
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:56379")
    died, takes_over = (DeliveryMarks(aioredis.from_url(url), key=key) for _ in range(2))
    try:
        await died.advance({0: 41, 3: 7})
        marks = await takes_over.get([0, 1, 3])
    finally:
        await died.close()
        await takes_over.close()
    assert {p: m.offset for p, m in marks.items()} == {0: 41, 3: 7}
    assert all(m.recorded_ms <= time.time() * 1000 for m in marks.values())


async def test_marks_that_cannot_be_written_are_kept_and_written_later() -> None:
    unreachable = aioredis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.2)
    marks = DeliveryMarks(unreachable, key="k")
    await marks.advance({0: 9})  # logs, does not raise
    seen = await marks.get([0])  # unreadable: this process still knows its own
    await marks.close()
    assert seen[0].offset == 9

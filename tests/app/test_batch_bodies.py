"""Batch messages between stages: as full as the byte limit allows, sized as encoded."""

from __future__ import annotations

import orjson

from schemas.records import CaptureBatch, EventBatch
from topologies.forwarding import event_batches, pack
from topologies.ingress import capture_batches


def test_pack_fills_each_range_up_to_the_limits() -> None:
    assert list(pack([4, 4, 4, 4, 4], max_items=10, max_bytes=8)) == [(0, 2), (2, 4), (4, 5)]
    assert list(pack([4, 4, 4], max_items=2, max_bytes=100)) == [(0, 2), (2, 3)]
    # an item over the limit is a range of its own, between its neighbours' ranges
    assert list(pack([2, 50, 2, 2], max_items=10, max_bytes=8)) == [(0, 1), (1, 2), (2, 4)]
    assert list(pack([], max_items=10, max_bytes=8)) == []


def test_capture_batches_are_capture_batch_records_within_the_byte_limit() -> None:
    # texts that grow when put inside JSON: quotes, backslashes, non-ASCII
    messages = [(f'{{"q":"{chr(34) * 40}\\\\é{i}"}}', [0, i, 1000 + i]) for i in range(50)]
    bodies = list(capture_batches(messages, max_messages=1000, max_bytes=2_000))
    assert len(bodies) > 1
    texts, positions = [], []
    for body, part in bodies:
        assert len(body) <= 2_000
        record = CaptureBatch.loads(body, serializer="orjson")
        assert record.messages == [t for t, _ in part]
        texts += record.messages
        positions += record.positions or []
    assert texts == [t for t, _ in messages] and positions == [p for _, p in messages]


def test_event_batches_are_event_batch_records_within_the_byte_limit() -> None:
    events = [{"uuid": str(i), "properties": {"text": '"' * 30}} for i in range(40)]
    seen = []
    for body, part in event_batches(events, max_events=15, max_bytes=1_000):
        assert len(body) <= 1_000 and len(part) <= 15
        seen += EventBatch.loads(body, serializer="orjson").events
    assert seen == events
    (body, part), *_ = event_batches([{"blob": "x" * 2_000}], 15, 1_000)
    assert len(body) > 1_000 and orjson.loads(body)["events"] == part

"""Sending a stage's output on: batches straight through the producer, to the same partition.

Going through the producer directly, not `Topic.send`, halves Faust's cost per message;
awaiting each delivery before the input is acknowledged keeps delivery at-least-once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson

from app.pipeline.output import StageOutput
from topologies.topics import app, dead_letter_topic, settings


def _chunks(events: list[dict[str, Any]], max_bytes: int) -> Iterator[bytes]:
    """The events as EventBatch bodies of at most `max_bytes` (a lone larger event still goes)."""
    body = orjson.dumps({"events": events})
    if len(body) <= max_bytes or len(events) == 1:
        yield body
        return
    middle = len(events) // 2
    yield from _chunks(events[:middle], max_bytes)
    yield from _chunks(events[middle:], max_bytes)


async def send_events(topic: Any, events: list[dict[str, Any]], partition: int) -> None:
    max_events = settings.KAFKA_PRODUCER_MAX_QUEUE_SIZE
    pending = []
    for start in range(0, len(events), max_events):
        for body in _chunks(
            events[start : start + max_events], settings.KAFKA_MAX_MESSAGE_BATCH_SIZE
        ):
            pending.append(
                await app.producer.send(
                    topic=topic.get_topic_name(),
                    key=None,
                    value=body,
                    partition=partition,
                    timestamp=None,
                    headers=None,
                )
            )
    if pending:
        await asyncio.gather(*pending)


async def send_output(topic: Any | None, out: StageOutput, partition: int) -> None:
    """Events to the next stage's topic (None: the end of the chain), dead letters to the DLQ."""
    if topic is not None and out.events:
        await send_events(topic, out.events, partition)
    if out.dead_letters:
        deliveries = [
            await app.producer.send(
                topic=dead_letter_topic.get_topic_name(),
                key=(letter.event_uuid or letter.id).encode(),
                value=letter.dumps(),
                partition=None,
                timestamp=None,
                headers=None,
            )
            for letter in out.dead_letters
        ]
        await asyncio.gather(*deliveries)

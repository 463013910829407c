"""Ingress: capture messages from the input topic into batches for the parse agent.

The input topic holds one capture message per Kafka message, written by capture
endpoints we do not control. Faust's stream pays about 200 µs of CPU per message, more
than the whole chain spends on an event, so this consumer reads the input with
aiokafka's `getmany` instead and forwards one batch per input partition. Offsets are
committed only after the batches are delivered: at-least-once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterator
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.structs import RecordMetadata

from app import tracing
from app.connections import aiokafka_consumer
from app.faust_app import APP_ID
from app.pipeline.dead_letters import dead_letter
from app.pipeline.output import StageOutput
from app.pipeline.telemetry import consumer_lag
from schemas.records import DeadLetter
from topologies.forwarding import pack, send_output
from topologies.topics import app, parse_topic, settings

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 100  # how long one poll waits for what a fetch brought
OVERSIZED_KEPT_CHARS = 10_000  # of a message too large to forward, kept in its dead letter
INGRESS_GROUP = f"{APP_ID}-ingestion"


Received = tuple[str, list[int]]  # a capture message and [partition, offset, timestamp]


def _size(text: str) -> int:
    # bytes as sent; a text of at most a quarter of the limit in characters cannot be over
    return (
        len(text) if len(text) * 4 <= settings.KAFKA_MAX_MESSAGE_BATCH_SIZE else len(text.encode())
    )


def oversized(text: str, limit: int) -> DeadLetter:
    """The dead letter of a capture message too large to forward: its size, the limit, its
    team and uuid when it names them, and its first `OVERSIZED_KEPT_CHARS` characters."""
    event: dict[str, Any] | None = None
    with contextlib.suppress(orjson.JSONDecodeError):
        decoded = orjson.loads(text)
        if isinstance(decoded, dict):
            event = {k: decoded.get(k) for k in ("team_id", "uuid", "distinct_id")}
    letter = dead_letter(
        "ingress",
        f"capture message of {_size(text):,} bytes is over the {limit:,}-byte limit of one "
        "message between stages (KAFKA_MAX_MESSAGE_BATCH_SIZE)",
        event=event,
        raw=text[:OVERSIZED_KEPT_CHARS],
    )
    return letter


def capture_batches(
    messages: list[Received], max_messages: int, max_bytes: int
) -> Iterator[tuple[bytes, list[Received]]]:
    """CaptureBatch bodies of the messages, as full as `max_bytes` allows, each text
    encoded once and sized as encoded (a text inside JSON grows by its escapes); a body
    over `max_bytes` holds one message too large to forward."""
    texts = [orjson.dumps(text) for text, _ in messages]
    positions = [orjson.dumps(position) for _, position in messages]
    sizes = [len(t) + len(p) + 2 for t, p in zip(texts, positions, strict=True)]
    envelope = len(b'{"messages":[],"positions":[]}')
    for start, end in pack(sizes, max_messages, max_bytes - envelope):
        body = (
            b'{"messages":[' + b",".join(texts[start:end])
            + b'],"positions":[' + b",".join(positions[start:end]) + b"]}"
        )  # fmt: skip
        yield body, messages[start:end]


async def _forward(
    partition: int, messages: list[Received], parents: dict[int, str] | None = None
) -> list[Awaitable[RecordMetadata]]:
    """Forward the partition's messages as batches; `parents`: the `traceparent` of the
    traced ones, by offset, carried in the batch's header."""
    target = partition % settings.KAFKA_PARTITIONS
    limit = settings.KAFKA_MAX_MESSAGE_BATCH_SIZE
    letters, futures = [], []
    for body, part in capture_batches(messages, settings.KAFKA_PRODUCER_MAX_QUEUE_SIZE, limit):
        if len(body) > limit:
            # a message too large to forward (as it is, or once escaped inside JSON) comes
            # alone and costs only itself: the partition goes on
            letters.append(oversized(part[0][0], limit))
            continue
        futures.append(
            await app.producer.send(
                topic=parse_topic.get_topic_name(),
                key=None,
                value=body,
                partition=target,
                timestamp=None,
                headers=_trace_header(part, parents) if parents else None,
            )
        )
    if letters:
        await send_output(None, StageOutput(dead_letters=letters), target)
    return futures


def _trace_header(part: list[Received], parents: dict[int, str]) -> list[tuple[str, bytes]] | None:
    offsets = (position[1] for _text, position in part)
    return tracing.batch_header({str(o): parents[o] for o in offsets if o in parents})


@app.task
async def ingest_capture_messages() -> None:
    consumer = aiokafka_consumer(
        settings,
        settings.KAFKA_CONSUMPTION_TOPIC,
        group_id=INGRESS_GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
        max_poll_records=settings.KAFKA_PRODUCER_MAX_QUEUE_SIZE * settings.KAFKA_PARTITIONS,
        # the broker holds each fetch until a batch's worth of bytes waits (over the
        # partitions) or KAFKA_FLUSH_FREQUENCY_MS is up. Answering at once, it gave a
        # message or two per fetch under a light load, and every later stage pays per
        # batch (200 events/s made some 200 batches/s and the chain fell seconds behind);
        # gathering in the worker instead cost a round trip per message meanwhile
        fetch_min_bytes=settings.KAFKA_MAX_MESSAGE_BATCH_SIZE,
        fetch_max_wait_ms=settings.KAFKA_FLUSH_FREQUENCY_MS,
        # a backlog comes in fills of about two batch messages a partition: at aiokafka's
        # 1 MB, each fill made one full message and a small remainder, a batch of its own
        max_partition_fetch_bytes=2 * settings.KAFKA_MAX_MESSAGE_BATCH_SIZE,
        request_timeout_ms=settings.KAFKA_FLUSH_FREQUENCY_MS + 40_000,  # past the wait
    )
    try:
        # inside: a worker stopped while the consumer joins its group still closes it
        await consumer.start()
        while True:
            polled = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
            if not polled:
                continue
            deliveries = []
            offsets: dict[TopicPartition, int] = {}
            for tp, records in polled.items():
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    consumer_lag[(tp.topic, tp.partition)] = highwater - records[-1].offset - 1
                received = [
                    (
                        r.value.decode("utf-8", "replace") if r.value is not None else "null",
                        [tp.partition, r.offset, r.timestamp],
                    )
                    for r in records
                ]
                parents = _traced(records) if tracing.enabled else None
                deliveries.extend(await _forward(tp.partition, received, parents))
                offsets[tp] = records[-1].offset + 1
            await asyncio.gather(*deliveries)
            await consumer.commit(offsets)
    finally:
        await consumer.stop()


def _traced(records: list[Any]) -> dict[int, str]:
    """The `traceparent` of each input message whose capture was traced, by offset."""
    parents = {}
    for record in records:
        parent = tracing.parent_of(record.headers)
        if parent is not None:
            parents[record.offset] = parent
    return parents

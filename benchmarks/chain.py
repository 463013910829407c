"""End-to-end throughput of the agent chain on the real broker, beside a bare passthrough.

    scripts/services.sh up && eval "$(scripts/services.sh env)"
    .venv/bin/python benchmarks/chain.py [--events 50000] [--mode cluster|dev|both]

Starts one `faust -A app worker` process (cluster mode, the example plugin installed for
the team), pushes capture messages into a fresh input topic and waits until every event
is stored. In the same run, a bare aiokafka+orjson consume -> produce passthrough moves
the same messages on the same broker. Prints events/s, p50/p99 produce-to-stored latency
and our rate as a ratio of the passthrough's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.local_cluster import LocalCluster, capture_message

PARTITIONS = 4
DISTINCT_IDS = 1_000


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    """Send all messages as fast as the client goes; returns the time the first was sent."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024, acks=1
    )
    await producer.start()
    try:
        started = time.time()
        for key, value in messages:
            await producer.send(topic, value, key=key)
        await producer.flush()
        return started
    finally:
        await producer.stop()


async def passthrough(bootstrap: str, source: str, count: int) -> float:
    """Bare aiokafka+orjson consume -> parse, set a property, dump -> produce; events/s."""
    sink = f"{source}_passthrough"
    consumer = AIOKafkaConsumer(
        source, bootstrap_servers=bootstrap, group_id=f"passthrough-{uuid.uuid4()}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024, acks=1
    )
    await consumer.start()
    await producer.start()
    try:
        seen = 0
        started = None
        while seen < count:
            polled = await consumer.getmany(timeout_ms=500, max_records=500)
            if started is None and polled:
                started = time.perf_counter()
            for records in polled.values():
                for record in records:
                    event = orjson.loads(record.value)
                    event["passthrough"] = True
                    await producer.send(sink, orjson.dumps(event), key=record.key)
                    seen += 1
        await producer.flush()
        assert started is not None
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()


async def create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([n for n in names if n in await admin.list_topics()])
    finally:
        await admin.close()


EMBEDDED_BATCH = 1_000  # capture messages per run of the embedded chain


async def embedded_rate(count: int) -> float:
    """The embedded mode (`plugin-server dev`: SQLite, chDB, the example plugin, no
    servers): events/s of the same chain over the same messages, in batches."""
    import tempfile

    from app.dev import EXAMPLE, open_local
    from app.embedded import run_chain
    from app.settings import load_settings

    with tempfile.TemporaryDirectory() as data_dir:
        settings = load_settings(DATA_DIR=data_dir)
        _settings, resources, _dir = await open_local(settings, [str(EXAMPLE / "plugin")], {1})
        try:
            values = [
                capture_message(team_id=1, distinct_id=f"user-{i % DISTINCT_IDS}", index=i)[1]
                for i in range(count)
            ]
            started = time.perf_counter()
            for start in range(0, count, EMBEDDED_BATCH):
                await run_chain(resources.context, values[start : start + EMBEDDED_BATCH])
            return count / (time.perf_counter() - started)
        finally:
            await resources.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument(
        "--mode",
        choices=["cluster", "dev", "both"],
        default="cluster",
        help="the worker on Kafka beside a passthrough, the embedded mode, or both",
    )
    args = parser.parse_args()
    dev_rate = await embedded_rate(args.events) if args.mode in ("dev", "both") else None
    if args.mode == "dev":
        print(f"{'pipeline':<44}{'events/s':>12}")
        print(f"{'embedded chain (dev mode, 1 plugin)':<44}{dev_rate:>12,.0f}")
        return
    bootstrap = os.environ.get("KAFKA_HOSTS", "127.0.0.1:19092")
    run_id = uuid.uuid4().hex[:8]
    input_topic = f"bench_{run_id}_input"
    await create_topic(bootstrap, input_topic)

    async with LocalCluster(
        run_id=run_id, input_topic=input_topic, partitions=PARTITIONS, owns_input_topic=False
    ) as run:
        messages = [
            capture_message(team_id=run.team_id, distinct_id=f"user-{i % DISTINCT_IDS}", index=i)
            for i in range(args.events)
        ]
        print(f"worker ready in {run.ready_seconds:.1f} s; producing {args.events} events")
        first_sent = await produce(bootstrap, input_topic, messages)
        stored = await run.wait_for_events(args.events, timeout=600)
        last_stored = max(created for created, _ in stored)
        chain_rate = args.events / (last_stored - first_sent)
        latencies = [(created - sent) * 1000 for created, sent in stored]

    try:
        baseline = await passthrough(bootstrap, input_topic, args.events)
    finally:
        await delete_topics(bootstrap, [input_topic, f"{input_topic}_passthrough"])
    print()
    print(f"{'pipeline':<44}{'events/s':>12}{'p50 ms':>10}{'p99 ms':>10}")
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    name = "agent chain (5 agents, 1 plugin, 1 worker)"
    print(f"{name:<44}{chain_rate:>12,.0f}{p50:>10,.0f}{p99:>10,.0f}")
    print(f"{'bare aiokafka+orjson passthrough':<44}{baseline:>12,.0f}{'':>10}{'':>10}")
    if dev_rate is not None:
        print(f"{'embedded chain (dev mode, 1 plugin)':<44}{dev_rate:>12,.0f}")
    print(
        f"\nchain / passthrough = {chain_rate / baseline:.2f}x  (aim: >= 0.25x, >= 10,000 events/s)"
    )


if __name__ == "__main__":
    asyncio.run(main())

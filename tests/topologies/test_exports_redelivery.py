"""Exports after `kill -9` of a worker: every stored event still reaches the exporter,
and what a restart sends again is at most the batch each partition was delivering.

The exports stage flushes its buffers before its input is acknowledged, so a killed
worker loses no export; it knows the events it delivered before by their input position,
so the batches the earlier stages send again after the kill are not exported twice.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from app.local_cluster import LocalCluster, capture_message
from tests.topologies.helpers import Sink, serving

pytestmark = pytest.mark.integration

WEBHOOK = Path(__file__).resolve().parents[2] / "examples" / "plugins" / "webhook-exporter"
EVENTS = 3_000
PARTITIONS = 4
BATCH = 100  # events in one batch between stages: one export buffer's worth


@pytest.fixture
def sink() -> Iterator[tuple[Sink, str]]:
    found = Sink(lambda body: (e["uuid"] for e in body["batch"]))
    with serving(found, "/hook") as url:
        yield found, url


async def test_a_killed_worker_loses_no_export(
    sink: tuple[Sink, str],
) -> None:
    received, url = sink
    run = uuid.uuid4().hex[:8]
    async with LocalCluster(
        run_id=run,
        input_topic=f"redeliver_{run}_input",
        events_store="postgres",
        plugin=WEBHOOK,
        plugin_config={"url": url, "exportEventsBufferSeconds": "1"},
        partitions=PARTITIONS,
        env={
            **os.environ,
            "FETCH_ALLOWED_HOSTS": "127.0.0.1",
            "KAFKA_PRODUCER_MAX_QUEUE_SIZE": str(BATCH),
        },
    ) as cluster:
        messages = [
            capture_message(team_id=1, distinct_id=f"{run}-{i % 50}", index=i)
            for i in range(EVENTS)
        ]
        mine = {orjson.loads(value)["uuid"] for _key, value in messages}
        await cluster.produce(messages)
        await cluster.wait_for(lambda n: n >= EVENTS // 2, "1 = 1", timeout=120)
        cluster.kill_worker()
        await cluster.start_worker()
        await cluster.wait_for(lambda n: n >= EVENTS + 2, "1 = 1", timeout=180)  # 2 warm-ups
        for _ in range(60):
            with received.lock:
                if mine <= set(received.received):
                    break
            await asyncio.sleep(0.5)
    with received.lock:
        counts = {u: received.received[u] for u in mine}
    missing = [u for u, n in counts.items() if n == 0]
    again = sum(n - 1 for n in counts.values() if n > 1)
    print(f"exported {len(mine) - len(missing)} of {len(mine)}; sent again: {again}")
    assert missing == []
    assert again <= PARTITIONS * BATCH  # one batch in flight per partition, at most

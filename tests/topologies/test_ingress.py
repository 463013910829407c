"""Ingress under a light load: the input goes on in batches of what the fill time
gathered (`KAFKA_FLUSH_FREQUENCY_MS`), not a batch per capture message."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from app.local_cluster import LocalCluster, capture_message
from tests.topologies.helpers import free_port, stage_batches

pytestmark = pytest.mark.integration

MESSAGES = 40


async def test_a_trickle_of_messages_goes_on_in_a_few_batches() -> None:
    run, port = uuid.uuid4().hex[:8], free_port()
    async with LocalCluster(
        run_id=run,
        input_topic=f"trickle_{run}_input",
        events_store="postgres",
        env={**os.environ, "WORKER_HTTP_PORT": str(port)},
    ) as cluster:
        before = await stage_batches(port, "parse")
        producer = AIOKafkaProducer(bootstrap_servers=os.environ.get("KAFKA_HOSTS"))
        await producer.start()
        try:
            for i in range(MESSAGES):  # one every 10 ms: 0.4 s in all
                key, value = capture_message(team_id=1, distinct_id=f"{run}-{i}", index=i)
                await producer.send_and_wait(cluster.input_topic, value, key=key)
                await asyncio.sleep(0.01)
        finally:
            await producer.stop()
        await cluster.wait_for_events(MESSAGES, timeout=60)
        after = await stage_batches(port, "parse")

    batches = after["parse"] - before["parse"]
    # 0.4 s falls in at most two fills, each a batch per partition (four): not one apiece
    assert batches <= 12, batches

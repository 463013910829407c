"""`plugin-server replay` as an operator runs it, against a real worker and broker."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import uuid

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from app.local_cluster import LocalCluster, capture_message
from app.stores.plugin_configs import ensure_team

pytestmark = pytest.mark.integration


def plugin_server(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


async def dead_letter_headers(event_uuid: str) -> list[dict[str, str]]:
    consumer = AIOKafkaConsumer(
        "events_dead_letter_queue",
        bootstrap_servers=os.environ.get("KAFKA_HOSTS", "127.0.0.1:19092"),
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    found = []
    try:
        for _ in range(10):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if orjson.loads(record.value).get("event_uuid") == event_uuid:
                        found.append({k: v.decode() for k, v in record.headers})
    finally:
        await consumer.stop()
    return found


async def test_replay_publishes_the_selected_dead_letters_to_their_stage_once_fixed() -> None:
    run = uuid.uuid4().hex[:8]
    team = random.randrange(100_000, 900_000)  # a team no other run uses
    async with LocalCluster(
        run_id=run, input_topic=f"replay_{run}_input", events_store="postgres"
    ) as cluster:
        key, value = capture_message(team_id=team, distinct_id="late", index=1)
        event_uuid = orjson.loads(value)["uuid"]
        await cluster.produce([(key, value)])  # the team does not exist yet: a dead letter
        for _ in range(60):
            headers = await dead_letter_headers(event_uuid)
            if headers:
                break
            await asyncio.sleep(0.5)
        (first,) = headers
        assert first["stage"] == "persons" and first["team_id"] == str(team)
        assert first["attempt"] == "1" and first["first_failure"] and "team" in first["reason"]

        dry = plugin_server(cluster.env, "replay", "--team", str(team), "--dry-run")
        assert "would replay 1 of" in dry.stderr
        other = plugin_server(cluster.env, "replay", "--team", str(team), "--stage", "write")
        assert "replayed 0 of" in other.stderr

        await ensure_team(cluster._engine, team)
        done = plugin_server(cluster.env, "replay", "--team", str(team))
        assert "replayed 1 of" in done.stderr
        where = f"uuid = '{event_uuid}'"
        assert await cluster.wait_for(lambda n: n == 1, where, timeout=60) == 1

        again = plugin_server(cluster.env, "replay", "--team", str(team))  # safe to repeat
        assert "replayed 1 of" in again.stderr
        await asyncio.sleep(5)
        assert await cluster.wait_for(lambda n: n >= 1, where, timeout=10) == 1

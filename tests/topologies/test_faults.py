"""Real faults against a real worker: a server stopped mid-run, a poison message.

A server that is down makes its stage wait; when it is back every event is stored, none
went to the dead-letter topic, and what queued up meanwhile goes on in few batches. A
message too large to forward becomes one dead letter and its neighbours are stored.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from app.local_cluster import LocalCluster, capture_message
from tests.topologies.helpers import free_port, stage_batches

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OUTAGE_SECONDS = 12.0  # longer than the in-place retries used to last (about 7.5 s)
DEAD_LETTER_TOPIC = "events_dead_letter_queue"
PIECES = 10  # arriving one by one while a server is down


def services(*args: str) -> None:
    subprocess.run([str(ROOT / "scripts" / "services.sh"), *args], check=True)


async def dead_letters_for(uuids: set[str], seconds: float = 5.0) -> list[dict[str, object]]:
    """Records on the dead-letter topic naming one of `uuids`."""
    consumer = AIOKafkaConsumer(
        DEAD_LETTER_TOPIC,
        bootstrap_servers=os.environ.get("KAFKA_HOSTS", "127.0.0.1:19092"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    found = []
    try:
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            polled = await consumer.getmany(timeout_ms=500)
            for records in polled.values():
                for record in records:
                    letter = orjson.loads(record.value)
                    if letter.get("event_uuid") in uuids:
                        found.append(letter)
    finally:
        await consumer.stop()
    return found


def messages(count: int, run: str) -> list[tuple[bytes, bytes]]:
    return [
        capture_message(team_id=1, distinct_id=f"{run}-{i % 20}", index=i) for i in range(count)
    ]


def uuids_of(batch: list[tuple[bytes, bytes]]) -> set[str]:
    return {orjson.loads(value)["uuid"] for _key, value in batch}


async def health(port: int) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/_health") as response,
    ):
        return response.status, await response.json()


# the store /_health names while the server is down (the broker is the transport, not a store)
UNHEALTHY_STORE = {"postgres": "sql", "clickhouse": "events", "redis": "redis"}


@pytest.mark.parametrize(
    "server, store",
    [
        ("postgres", "postgres"),
        ("clickhouse", "clickhouse"),
        ("redis", "postgres"),
        ("kafka", "postgres"),
    ],
)
async def test_a_stopped_server_stalls_the_chain_and_no_valid_event_is_dead_lettered(
    server: str, store: str
) -> None:
    run, port = uuid.uuid4().hex[:8], free_port()
    async with LocalCluster(
        run_id=run,
        input_topic=f"fault_{run}_input",
        events_store=store,
        env={**os.environ, "WORKER_HTTP_PORT": str(port)},
    ) as cluster:
        assert (await health(port))[0] == 200
        before, after = messages(100, run), messages(100, run + "b")
        await cluster.produce(before)
        await cluster.wait_for_events(100, timeout=60)
        if server == "kafka":
            # the broker cannot take messages while it is down: these are in the
            # stages' hands when it stops
            await cluster.produce(after)
        services("stop", server)
        try:
            if server != "kafka":
                await cluster.produce(after)  # arrives while the server is down
            await asyncio.sleep(OUTAGE_SECONDS / 2)
            if server in UNHEALTHY_STORE:
                status, body = await health(port)
                assert status == 503, body  # not ready, and still alive to say so
                assert UNHEALTHY_STORE[server] in body["stores"]  # type: ignore[operator]
            await asyncio.sleep(OUTAGE_SECONDS / 2)
        finally:
            services("start", server)
        await cluster.wait_for_events(200, timeout=120)
        for _ in range(40):  # ready again by itself
            if (await health(port))[0] == 200:
                break
            await asyncio.sleep(0.5)
        assert await health(port) == (200, {"status": "ok"})
        assert await dead_letters_for(uuids_of(before + after)) == []


async def test_what_queued_up_during_an_outage_goes_on_in_few_batches() -> None:
    run, port = uuid.uuid4().hex[:8], free_port()
    async with LocalCluster(
        run_id=run,
        input_topic=f"backlog_{run}_input",
        events_store="postgres",
        env={**os.environ, "WORKER_HTTP_PORT": str(port)},
    ) as cluster:
        before = await stage_batches(port, "parse", "write")
        pieces = [messages(20, f"{run}{piece}") for piece in range(PIECES)]
        services("stop", "postgres")
        try:
            for piece in pieces:  # each its own batch per partition: apart by more than
                await cluster.produce(piece)  # KAFKA_FLUSH_FREQUENCY_MS (500 ms)
                await asyncio.sleep(0.7)
        finally:
            services("start", "postgres")
        await cluster.wait_for_events(20 * PIECES, timeout=120)
        after = await stage_batches(port, "parse", "write")
        assert await dead_letters_for(set().union(*map(uuids_of, pieces))) == []

    parsed = after["parse"] - before["parse"]
    stored = after["write"] - before["write"]
    assert parsed >= 2 * PIECES  # each piece a message to each partition it fell in
    # a partition's first batches were in flight when the server went (or went through
    # before it was quite gone); the rest waited and went on together once it was back
    assert stored <= parsed / 2, (parsed, stored)


async def test_a_message_too_large_to_forward_costs_only_itself() -> None:
    run = uuid.uuid4().hex[:8]
    async with LocalCluster(
        run_id=run, input_topic=f"poison_{run}_input", events_store="postgres"
    ) as cluster:
        normal = messages(20, run)
        key, value = capture_message(team_id=1, distinct_id="big", index=1)
        big = orjson.loads(value)
        big["data"] = orjson.dumps(
            {"event": "huge", "properties": {"blob": "x" * 950_000}}
        ).decode()
        await cluster.produce([*normal[:10], (key, orjson.dumps(big)), *normal[10:]])
        await cluster.wait_for_events(20, timeout=60)
        (letter,) = await dead_letters_for({big["uuid"]})
        assert "over the 900,000-byte limit" in str(letter["error"])
        # the partition went on: more events after it are stored too
        more = messages(5, run + "c")
        await cluster.produce(more)
        await cluster.wait_for_events(25, timeout=60)


def quoted(index: int, run: str, quotes: int) -> tuple[bytes, bytes]:
    """A capture message whose text grows by half again or more each time it is put
    inside JSON (a property of `quotes` double quotes)."""
    key, value = capture_message(team_id=1, distinct_id=f"quoted-{run}", index=index)
    message = orjson.loads(value)
    properties = {"q": '"' * quotes, "sent": orjson.loads(message["data"])["properties"]["sent"]}
    message["data"] = orjson.dumps({"event": "quoted", "properties": properties}).decode()
    return key, orjson.dumps(message)


async def test_messages_that_grow_past_the_limit_inside_a_batch_cost_only_themselves() -> None:
    run = uuid.uuid4().hex[:8]
    async with LocalCluster(
        run_id=run, input_topic=f"escape_{run}_input", events_store="postgres"
    ) as cluster:
        # three that fit one by one but not together once escaped; one that fits as text
        # (600 kB) but not escaped inside a batch (1.2 MB): the worker must not crash
        medium = [quoted(i, run, 50_000) for i in range(3)]
        key, alone = quoted(9, run, 150_000)
        assert len(alone) < 900_000
        normal = messages(10, run)
        await cluster.produce([*normal[:5], *medium, (key, alone), *normal[5:]])
        await cluster.wait_for_events(13, timeout=60)
        (letter,) = await dead_letters_for({orjson.loads(alone)["uuid"]})
        assert "over the 900,000-byte limit" in str(letter["error"])
        assert await dead_letters_for(uuids_of([*normal, *medium])) == []


async def test_a_stopped_redis_does_not_stop_the_worker() -> None:
    run = uuid.uuid4().hex[:8]
    async with LocalCluster(
        run_id=run, input_topic=f"redis_{run}_input", events_store="postgres"
    ) as cluster:
        services("stop", "redis")
        try:
            await cluster.produce(messages(50, run))
            await asyncio.sleep(OUTAGE_SECONDS)  # several health pings fail meanwhile
            assert cluster.process is not None and cluster.process.poll() is None
        finally:
            services("start", "redis")
        await cluster.wait_for_events(50, timeout=60)

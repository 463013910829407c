"""One event end to end, in both run modes, through the same stage functions.

The cluster driver produces a capture message to the input topic on the real broker and
reads the result from Postgres, where the worker process stored it; the embedded driver
runs the same message through `plugin-server dev`'s in-process chain on SQLite and chDB.
The example plugin adds a property in `process_event` and keeps a storage record in
`on_event`.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import orjson
import pytest
from sqlalchemy import select

from app.dev import EXAMPLE, open_local
from app.embedded import run_chain
from app.local_cluster import LocalCluster, capture_message
from app.settings import load_settings
from schemas.tables import plugin_storage

WAIT_SECONDS = 60.0


class Driver(Protocol):
    async def send(self, messages: list[tuple[bytes, bytes]]) -> None: ...
    async def stored_event(self, event_uuid: str) -> dict[str, Any] | None: ...
    async def storage_value(self, key: str) -> Any: ...


class ClusterDriver:
    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster

    async def send(self, messages: list[tuple[bytes, bytes]]) -> None:
        await self.cluster.produce(messages)

    async def stored_event(self, event_uuid: str) -> dict[str, Any] | None:
        return await self.cluster.stored_event(event_uuid)

    async def storage_value(self, key: str) -> Any:
        return await self.cluster.storage_value(key)


class EmbeddedDriver:
    def __init__(self, resources: Any, team_id: int) -> None:
        self.resources = resources
        self.team_id = team_id

    async def send(self, messages: list[tuple[bytes, bytes]]) -> None:
        await run_chain(self.resources.context, [value for _key, value in messages])

    async def stored_event(self, event_uuid: str) -> dict[str, Any] | None:
        rows = await self.resources.context.events.read(self.team_id, limit=1000)
        return next((row for row in rows if row["uuid"] == event_uuid), None)

    async def storage_value(self, key: str) -> Any:
        async with self.resources.engine.connect() as conn:
            value = (
                await conn.execute(
                    select(plugin_storage.c.value).where(plugin_storage.c.key == key)
                )
            ).scalar_one_or_none()
        return None if value is None else orjson.loads(value)


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("cluster-clickhouse", marks=pytest.mark.integration),
        pytest.param("cluster-postgres", marks=pytest.mark.integration),
        # every stage its own agent and topic, and the whole chain in one agent
        pytest.param("cluster-split-plugins,persons,write,exports", marks=pytest.mark.integration),
        pytest.param("cluster-split-", marks=pytest.mark.integration),
    ]
)
async def driver(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Driver]:
    if request.param.startswith("cluster"):
        run_id = uuid.uuid4().hex[:8]
        store, env = request.param.removeprefix("cluster-"), dict(os.environ)
        if store.startswith("split-"):
            store, env["PIPELINE_BREAKS"] = "clickhouse", store.removeprefix("split-")
        async with LocalCluster(
            run_id=run_id, input_topic=f"e2e_{run_id}_input", events_store=store, env=env
        ) as cluster:
            yield ClusterDriver(cluster)
        return
    settings = load_settings(DATA_DIR=str(tmp_path))
    _settings, resources, _data_dir = await open_local(settings, [str(EXAMPLE / "plugin")], {1})
    try:
        yield EmbeddedDriver(resources, team_id=1)
    finally:
        await resources.close()


async def eventually(read: Any, timeout: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while (value := await read()) is None:
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.2)
    return value


async def test_event_passes_the_chain_with_the_plugins_property_and_on_event_record(
    driver: Driver,
) -> None:
    key, value = capture_message(team_id=1, distinct_id="e2e-user", index=1)
    event_uuid = orjson.loads(value)["uuid"]

    await driver.send([(key, value)])

    stored = await eventually(lambda: driver.stored_event(event_uuid))
    assert stored is not None, "the event was not stored"
    properties = stored["properties"]
    if isinstance(properties, str):
        properties = orjson.loads(properties)
    assert properties["stamped_by"] == "event-stamp"
    assert properties["$ip"] == "127.0.0.1"
    assert stored["distinct_id"] == "e2e-user"
    assert stored["person_id"]

    record = await eventually(lambda: driver.storage_value(f"stored:{event_uuid}"))
    assert record == {"event": "$pageview", "distinct_id": "e2e-user"}

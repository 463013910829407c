"""Building what the stages need, for each run mode, and closing it again.

Cluster: Postgres (persons, plugin configs, storage, logs), Redis (cache), ClickHouse
or the Postgres events table (events). Embedded: one SQLite file, an in-process cache,
and chDB for events (the SQLite events table where chDB is not installed).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from app.connections import async_engine, sync_engine
from app.pipeline.context import PipelineContext
from app.plugin_host import open_runtime
from app.settings import Settings
from app.stores.events import ClickHouseEventStore, EventStore, SqlEventStore
from app.stores.persons import PersonStore
from app.stores.plugin_configs import enabled_configs
from app.stores.teams import TeamStore


@dataclass
class Resources:
    context: PipelineContext
    engine: AsyncEngine
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        for close in reversed(self.closers):
            await close()


EventStoreFactory = Callable[[AsyncEngine], EventStore]


async def _open(settings: Settings, events: EventStoreFactory, *, embedded: bool) -> Resources:
    engine = async_engine(settings)
    blocking: Engine = sync_engine(settings)
    runtime, close_runtime = await open_runtime(settings, blocking, embedded=embedded)
    context = PipelineContext(
        teams=TeamStore(engine),
        persons=PersonStore(engine, lru_size=settings.DISTINCT_ID_LRU_SIZE),
        events=events(engine),
        plugins=runtime,
    )
    resources = Resources(context=context, engine=engine)

    async def dispose() -> None:
        await engine.dispose()
        blocking.dispose()

    resources.closers.extend([dispose, close_runtime])
    await runtime.load(await enabled_configs(engine))
    return resources


async def open_cluster_resources(settings: Settings) -> Resources:
    if settings.EVENTS_STORE == "postgres":
        return await _open(settings, SqlEventStore, embedded=False)
    from app.clickhouse import NativeClickHouse

    client = NativeClickHouse.from_settings(settings)
    return await _open(settings, lambda _: ClickHouseEventStore(client), embedded=False)


def chdb_available() -> bool:
    return importlib.util.find_spec("chdb") is not None


async def open_embedded_resources(settings: Settings, data_dir: Path) -> Resources:
    """Resources of the embedded mode in `data_dir` (settings must point at SQLite there)."""
    if not chdb_available():
        return await _open(settings, SqlEventStore, embedded=True)
    from app.clickhouse import ChdbClickHouse
    from schemas.clickhouse import migrate as migrate_clickhouse

    client = ChdbClickHouse(str(data_dir / "chdb"))
    migrate_clickhouse(client)
    resources = await _open(settings, lambda _: ClickHouseEventStore(client), embedded=True)

    async def close_chdb() -> None:
        client.close()

    resources.closers.append(close_chdb)
    return resources

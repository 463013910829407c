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

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from app.connections import async_engine, async_redis, clickhouse, sync_engine
from app.pipeline.context import PipelineContext
from app.pipeline.dead_letters import dead_letter
from app.pipeline.slow_teams import SlowTeams
from app.plugin_host import PluginHost, open_host
from app.plugin_metrics import MetricsFlusher
from app.readiness import Readiness
from app.schedule import Scheduler
from app.settings import Settings
from app.stores.definitions import DefinitionStore
from app.stores.delivery_marks import DeliveryMarks
from app.stores.events import ClickHouseEventStore, EventStore, SqlEventStore
from app.stores.groups import GroupStore
from app.stores.persons import PersonStore
from app.stores.plugin_configs import enabled_configs
from app.stores.plugin_metrics import PluginMetricStore
from app.stores.schedule_book import MemoryScheduleBook, RedisScheduleBook, ScheduleBook
from app.stores.teams import TeamStore
from plugin_runtime.backends.memory import MemoryCaptureSink
from plugin_runtime.exports import ExportFailure
from schemas.records import DeadLetter

EventStoreFactory = Callable[[AsyncEngine], EventStore]
DeadLetterHook = Callable[[DeadLetter], Awaitable[None]]


@dataclass
class Resources:
    context: PipelineContext
    engine: AsyncEngine
    host: PluginHost
    scheduler: Scheduler
    readiness: Readiness
    metrics: MetricsFlusher
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def take_captured(self) -> list[bytes]:
        """Capture messages plugins sent with `posthog.capture` (embedded mode), once each."""
        sink = self.host.backends.captures
        if not isinstance(sink, MemoryCaptureSink):
            return []
        taken, sink.messages = sink.messages, []
        return [orjson.dumps(dict(message)) for message in taken]

    async def reload_plugins(self) -> None:
        """Run the enabled configs as the database has them now (live reload)."""
        await self.host.runtime.load(await enabled_configs(self.engine))

    async def close(self) -> None:
        await self.scheduler.close()
        await self.metrics.flush()  # what was counted since the last flush is kept
        await self.host.close()
        for close in reversed(self.closers):
            await close()


def export_dead_letter(failure: ExportFailure) -> list[DeadLetter]:
    """An export batch the plugin did not take, as one dead letter per event."""
    reason = (
        f"export_events of {failure.plugin_name} ({failure.plugin_config_id}) failed "
        f"after {failure.attempts} attempts: {failure.error}"
    )
    return [dead_letter("exports", reason, event=event) for event in failure.events]


def delivery_marks(settings: Settings) -> DeliveryMarks:
    """The cluster's marks of what the exports stage delivered, in Redis."""
    return DeliveryMarks(
        async_redis(settings), key=f"plugin-server:delivered:{settings.KAFKA_CONSUMPTION_TOPIC}"
    )


async def _open(
    settings: Settings,
    events: EventStoreFactory,
    *,
    embedded: bool,
    on_dead_letter: DeadLetterHook | None,
) -> Resources:
    engine = async_engine(settings)
    blocking = sync_engine(settings)

    async def route_export_failure(failure: ExportFailure) -> None:
        if on_dead_letter is not None:
            for letter in export_dead_letter(failure):
                await on_dead_letter(letter)

    host = open_host(settings, blocking, embedded=embedded, on_export_failure=route_export_failure)
    delivered = DeliveryMarks() if embedded else delivery_marks(settings)
    context = PipelineContext(
        teams=TeamStore(engine),
        persons=PersonStore(engine),
        events=events(engine),
        plugins=host.runtime,
        definitions=DefinitionStore(engine),
        groups=GroupStore(engine),
        delivered=delivered,
        # one process has no second stage to hand a slow team to
        slow_teams=None
        if embedded or not settings.PLUGIN_OVERFLOW_SECONDS_PER_EVENT
        else SlowTeams(
            seconds_per_event=settings.PLUGIN_OVERFLOW_SECONDS_PER_EVENT,
            hold_seconds=settings.PLUGIN_OVERFLOW_HOLD_SECONDS,
        ),
    )
    book: ScheduleBook = (
        MemoryScheduleBook()
        if embedded
        else RedisScheduleBook(async_redis(settings), namespace=settings.KAFKA_TOPIC_PREFIX)
    )
    scheduler = Scheduler(
        host.runtime,
        book,
        lock_ttl=settings.SCHEDULE_LOCK_TTL,
        task_timeout=settings.TASK_TIMEOUT,
        test_period=settings.SCHEDULE_TEST_PERIOD_SECONDS,
    )
    readiness = Readiness(settings, engine, context.events, redis=not embedded)
    resources = Resources(
        context=context,
        engine=engine,
        host=host,
        scheduler=scheduler,
        readiness=readiness,
        metrics=MetricsFlusher(host.runtime, PluginMetricStore(engine)),
    )
    resources.closers.append(delivered.close)

    async def dispose() -> None:
        await engine.dispose()
        blocking.dispose()

    resources.closers.append(dispose)
    await host.runtime.load(await enabled_configs(engine))
    return resources


async def open_cluster_resources(
    settings: Settings, *, on_dead_letter: DeadLetterHook | None = None
) -> Resources:
    if settings.EVENTS_STORE == "postgres":
        return await _open(settings, SqlEventStore, embedded=False, on_dead_letter=on_dead_letter)
    client = clickhouse(settings)
    return await _open(
        settings,
        lambda _: ClickHouseEventStore(client),
        embedded=False,
        on_dead_letter=on_dead_letter,
    )


def chdb_available() -> bool:
    return importlib.util.find_spec("chdb") is not None


async def open_embedded_resources(
    settings: Settings, data_dir: Path, *, on_dead_letter: DeadLetterHook | None = None
) -> Resources:
    """Resources of the embedded mode in `data_dir` (settings must point at SQLite there)."""
    if not chdb_available():
        return await _open(settings, SqlEventStore, embedded=True, on_dead_letter=on_dead_letter)
    from app.clickhouse import ChdbClickHouse
    from schemas.clickhouse import migrate as migrate_clickhouse

    client = ChdbClickHouse(str(data_dir / "chdb"))
    migrate_clickhouse(client)
    resources = await _open(
        settings,
        lambda _: ClickHouseEventStore(client),
        embedded=True,
        on_dead_letter=on_dead_letter,
    )

    async def close_chdb() -> None:
        client.close()

    resources.closers.append(close_chdb)
    return resources

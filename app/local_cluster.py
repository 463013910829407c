"""A throwaway cluster-mode worker on the local servers: a fresh database, a plugin
installed for one team, and one `faust -A app worker` process.

The end-to-end tests and `benchmarks/chain.py` use it; the servers are the ones
`scripts/services.sh up` starts (addresses from the environment).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg
import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.clickhouse import NativeClickHouse
from app.connections import database_url
from app.faust_app import APP_ID
from app.migrate import migrate_sql
from app.settings import load_settings
from app.stores.events import ClickHouseEventStore
from app.stores.plugin_configs import ensure_team, install_plugin
from schemas.clickhouse import migrate as migrate_clickhouse
from schemas.tables import events, plugin_storage

EXAMPLE_PLUGIN = Path(__file__).resolve().parent / "example" / "plugin"
WORKER_STOP_SECONDS = 30.0


def capture_message(
    *, team_id: int, distinct_id: str, index: int, now: float | None = None
) -> tuple[bytes, bytes]:
    """(key, value) of a capture message as PostHog's capture endpoint produces it, sent
    `now` (epoch seconds; the current time by default)."""
    now = time.time() if now is None else now
    data = {
        "event": "$pageview" if index % 3 else "signed_up",
        "properties": {"$current_url": f"https://example.com/p/{index % 50}", "sent": now},
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now)),
    }
    value = {
        "distinct_id": distinct_id,
        "ip": "127.0.0.1",
        "site_url": "http://127.0.0.1",
        "team_id": team_id,
        "now": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now)),
        "sent_at": "",
        "uuid": str(uuid.uuid4()),
        "data": orjson.dumps(data).decode(),
    }
    return f"{team_id}:{distinct_id}".encode(), orjson.dumps(value)


class LocalCluster:
    def __init__(
        self,
        *,
        run_id: str,
        input_topic: str,
        partitions: int = 4,
        team_id: int = 1,
        plugin: Path = EXAMPLE_PLUGIN,
        events_store: str = "clickhouse",
        owns_input_topic: bool = True,
        env: dict[str, str] | None = None,
        plugin_config: dict[str, Any] | None = None,
        prefill: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """`owns_input_topic`: delete the input topic at the end too (the caller's otherwise);
        `plugin_config`: the plugin's config over its defaults; `prefill`: messages put on
        the input topic before the worker starts (it is ready once it stored them too)."""
        self.plugin_config = dict(plugin_config or {})
        self.prefill = list(prefill or [])
        self.run_id = run_id
        self.input_topic = input_topic
        self.partitions = partitions
        self.team_id = team_id
        self.plugin = plugin
        base = env if env is not None else dict(os.environ)
        self._server_url = base.get(
            "DATABASE_URL", "postgres://postgres@127.0.0.1:55432/plugin_server"
        )
        self.database = f"run_{run_id}"
        self.database_url = self._server_url.rsplit("/", 1)[0] + "/" + self.database
        self.env = {
            **base,
            "DATABASE_URL": self.database_url,
            "KAFKA_CONSUMPTION_TOPIC": input_topic,
            "KAFKA_TOPIC_PREFIX": f"run_{run_id}_",
            "KAFKA_PARTITIONS": str(partitions),
            "EVENTS_STORE": events_store,
            "CLICKHOUSE_DATABASE": self.database,
            "WORKER_HTTP_PORT": base.get("WORKER_HTTP_PORT", "0"),  # 0: no web server
            "DATA_DIR": f"/tmp/plugin-server-{run_id}",
            "LOG_LEVEL": base.get("LOG_LEVEL", "warning"),
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        self.ready_seconds = 0.0
        self.plugin_config_id = 0
        self._engine = create_async_engine(database_url(self.database_url), pool_pre_ping=True)
        self.events_store = events_store
        self.owns_input_topic = owns_input_topic
        self._clickhouse: NativeClickHouse | None = None

    async def __aenter__(self) -> LocalCluster:
        await self._admin(f'CREATE DATABASE "{self.database}"')
        await migrate_sql(self.database_url)
        if self.events_store == "clickhouse":
            await asyncio.to_thread(self._create_clickhouse_database)
        await ensure_team(self._engine, self.team_id)
        from plugin_runtime.authoring import default_config
        from plugin_runtime.loading import load_plugin

        source = load_plugin(self.plugin)
        self.plugin_config_id = await install_plugin(
            self._engine,
            source,
            team_id=self.team_id,
            config={**default_config(source.plugin_json), **self.plugin_config},
        )
        if self.prefill:
            await self.produce(self.prefill)
        await self.start_worker()
        return self

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The worker started last."""
        return self.processes[-1] if self.processes else None

    async def start_worker(self) -> None:
        """Start one more worker process (in the same consumer group) and wait until the
        cluster stores an event and every running worker is a member of the group."""
        started = time.monotonic()
        self.spawn_worker()
        try:
            await self._wait_until_processing()
            await self._wait_until_members(sum(p.poll() is None for p in self.processes))
        except BaseException:
            await self._stop_worker()
            raise
        self.ready_seconds = time.monotonic() - started

    def spawn_worker(self) -> subprocess.Popen[bytes]:
        """Start one more worker process and return at once."""
        # each worker its own Faust data directory, as on separate machines
        env = {**self.env, "DATA_DIR": f"{self.env['DATA_DIR']}/w{len(self.processes)}"}
        with open(self.log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    async def group_state(self) -> tuple[str, int]:
        """The workers' consumer group: its state (`Stable`, `PreparingRebalance`, ...)
        and how many members it has."""
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(**self._kafka())
        await admin.start()
        try:
            (response,) = await admin.describe_consumer_groups([APP_ID])
        finally:
            await admin.close()
        _error, _group, state, _protocol_type, _protocol, members, *_ = response.groups[0]
        return str(state), len(members)

    async def _wait_until_members(self, count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while await self.group_state() != ("Stable", count):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the group did not settle on {count} members; see {self.log_path}"
                )
            await asyncio.sleep(0.2)

    def kill_worker(self, which: int = -1) -> None:
        """`kill -9` a worker (the last started by default): no shutdown, no flush, no
        commit."""
        process = self.processes[which] if self.processes else None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    async def __aexit__(
        self, *exc: tuple[type[BaseException], BaseException, TracebackType]
    ) -> None:
        await self._stop_worker()
        await self._delete_topics()
        await self._engine.dispose()
        await self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        if self._clickhouse is not None:
            self._clickhouse.execute(f"DROP DATABASE IF EXISTS {self.database}")
            self._clickhouse.close()

    async def _delete_topics(self) -> None:
        """Remove this run's topics, so repeated runs leave the broker as it was."""
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(**self._kafka())
        await admin.start()
        try:
            prefix = self.env["KAFKA_TOPIC_PREFIX"]
            mine = [
                t
                for t in await admin.list_topics()
                if t.startswith(prefix) or (t == self.input_topic and self.owns_input_topic)
            ]
            if mine:
                await admin.delete_topics(mine)
        finally:
            await admin.close()

    async def _stop_worker(self) -> None:
        running = [p for p in self.processes if p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                await asyncio.to_thread(process.wait, WORKER_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()

    def _create_clickhouse_database(self) -> None:
        """A database of its own on the ClickHouse server, with the events table.

        The local server is Debian's ClickHouse 18.16, so the table is the variant of
        the events DDL that it accepts (same columns, older types).
        """
        settings = load_settings(**{k: v for k, v in self.env.items() if k.isupper()})
        admin = NativeClickHouse.from_settings(
            settings.model_copy(update={"CLICKHOUSE_DATABASE": "default"})
        )
        admin.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        admin.close()
        self._clickhouse = NativeClickHouse.from_settings(settings)
        migrate_clickhouse(self._clickhouse)  # the DDL for the server's version

    def _kafka(self) -> dict[str, Any]:
        """The workers' Kafka options (bootstrap, TLS) for this harness's own clients."""
        from app.connections import kafka_options

        return kafka_options(load_settings(**{k: v for k, v in self.env.items() if k.isupper()}))

    @property
    def log_path(self) -> str:
        return f"/tmp/plugin-server-worker-{self.run_id}.log"

    async def _admin(self, statement: str) -> None:
        url = self._server_url.replace("postgres://", "postgresql://", 1)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    async def produce(self, messages: list[tuple[bytes, bytes]]) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(**self._kafka())
        await producer.start()
        try:
            for key, value in messages:
                await producer.send(self.input_topic, value, key=key)
            await producer.flush()
        finally:
            await producer.stop()

    async def _wait_until_processing(self, timeout: float = 120.0) -> None:
        """Send one event and wait until it is stored: the worker is then fully up."""
        key, value = capture_message(team_id=self.team_id, distinct_id="warm-up", index=0)
        await self.produce([(key, value)])
        event_uuid = orjson.loads(value)["uuid"]
        await self.wait_for(
            lambda rows: rows > 0,
            f"toString(uuid) = '{event_uuid}'"
            if self._clickhouse is not None
            else f"uuid = '{event_uuid}'",
            timeout=timeout,
        )

    async def _count(self, where: str) -> int:
        if self._clickhouse is not None:
            rows = await asyncio.to_thread(
                self._clickhouse.execute, f"SELECT count() FROM events FINAL WHERE {where}"
            )
            return int(rows[0][0])
        async with self._engine.connect() as conn:
            return int(
                (
                    await conn.execute(text(f"SELECT count(*) FROM events WHERE {where}"))
                ).scalar_one()
            )

    async def wait_for(self, done: Any, where: str, *, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            if self.processes and all(p.poll() is not None for p in self.processes):
                codes = [p.returncode for p in self.processes]
                raise RuntimeError(f"workers exited with {codes}; see {self.log_path}")
            count = await self._count(where)
            if done(count):
                return int(count)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{count} events matched {where!r} after {timeout} s; see {self.log_path}"
                )
            await asyncio.sleep(0.25)

    async def wait_for_events(self, count: int, *, timeout: float) -> list[tuple[float, float]]:
        """(stored at, sent at) epoch seconds of `count` events besides the warm-up one.

        The count is read from the store; the times from the write stage's output topic,
        whose message timestamps (ms) say when each batch had been stored.
        """
        await self.wait_for(lambda rows: rows >= count + 1, "1 = 1", timeout=timeout)
        return await self._written_times(count)

    async def _written_times(self, count: int) -> list[tuple[float, float]]:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            f"{self.env['KAFKA_TOPIC_PREFIX']}events_written",
            **self._kafka(),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        await consumer.start()
        times: dict[str, tuple[float, float]] = {}
        try:
            while len(times) < count:
                polled = await consumer.getmany(timeout_ms=2000)
                if not polled:
                    break
                for records in polled.values():
                    for record in records:
                        for event in orjson.loads(record.value)["events"]:
                            if event["distinct_id"] != "warm-up":
                                sent = float(event["properties"]["sent"])
                                times[event["uuid"]] = (record.timestamp / 1000, sent)
        finally:
            await consumer.stop()
        return list(times.values())

    async def stored_event(self, event_uuid: str) -> dict[str, Any] | None:
        if self._clickhouse is not None:
            store = ClickHouseEventStore(self._clickhouse)
            rows = await store.read(self.team_id, limit=10_000)
            return next((row for row in rows if row["uuid"] == event_uuid), None)
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(events).where(events.c.uuid == event_uuid))).first()
        if row is None:
            return None
        return {**row._mapping, "person_id": row.person_uuid}

    async def storage_value(self, key: str) -> Any:
        async with self._engine.connect() as conn:
            value = (
                await conn.execute(
                    select(plugin_storage.c.value).where(
                        plugin_storage.c.plugin_config_id == self.plugin_config_id,
                        plugin_storage.c.key == key,
                    )
                )
            ).scalar_one_or_none()
        return None if value is None else orjson.loads(value)

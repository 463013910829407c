"""Where the write stage stores events: ClickHouse (production), or a SQL events table
(the Postgres pipeline, and SQLite where the embedded mode has no chDB).

Every store makes a re-written event a no-op: the event uuid is the key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

import orjson
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.tables import events as events_table


class EventStore(Protocol):
    async def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Store rows (see `app.pipeline.write.stored_row`); re-writing a uuid changes nothing."""

    async def read(self, team_id: int, *, limit: int = 100) -> list[dict[str, Any]]:
        """The team's latest events, newest first, deduplicated."""


class SqlEventStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        async with self._engine.begin() as conn:
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            values = [
                {
                    "uuid": r["uuid"],
                    "team_id": r["team_id"],
                    "event": r["event"],
                    "distinct_id": r["distinct_id"],
                    "person_uuid": r["person_id"],
                    "properties": r["properties"],
                    "elements_chain": r["elements_chain"],
                    "timestamp": r["timestamp"],
                    "created_at": r["created_at"],
                }
                for r in rows
            ]
            await conn.execute(
                insert(events_table).on_conflict_do_nothing(index_elements=["uuid"]), values
            )

    async def read(self, team_id: int, *, limit: int = 100) -> list[dict[str, Any]]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(events_table)
                .where(events_table.c.team_id == team_id)
                .order_by(events_table.c.timestamp.desc(), events_table.c.id.desc())
                .limit(limit)
            )
            return [
                {
                    "uuid": r.uuid,
                    "event": r.event,
                    "distinct_id": r.distinct_id,
                    "team_id": r.team_id,
                    "properties": r.properties,
                    "timestamp": r.timestamp,
                    "person_id": r.person_uuid,
                }
                for r in rows
            ]


class ClickHouseEventStore:
    """Events in ClickHouse's `events` table (ReplacingMergeTree: a re-written uuid collapses).

    The client is blocking (chDB in-process, or clickhouse-driver), so calls run on a thread.
    """

    COLUMNS = (
        "uuid", "event", "properties", "timestamp", "team_id", "distinct_id",
        "elements_chain", "created_at", "person_id", "person_properties",
    )  # fmt: skip

    def __init__(self, client: Any) -> None:
        self._client = client

    async def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        values = [
            (
                r["uuid"],
                r["event"],
                orjson.dumps(r["properties"]).decode(),
                r["timestamp"],
                r["team_id"],
                r["distinct_id"],
                r["elements_chain"],
                r["created_at"],
                r["person_id"],
                r["person_properties"],
            )
            for r in rows
        ]
        await asyncio.to_thread(self._client.insert_rows, "events", self.COLUMNS, values)

    async def read(self, team_id: int, *, limit: int = 100) -> list[dict[str, Any]]:
        sql = (
            "SELECT toString(uuid), event, distinct_id, team_id, properties, timestamp,"
            " toString(person_id) FROM events FINAL WHERE team_id = %(team_id)s"
            " ORDER BY timestamp DESC LIMIT %(limit)s"
        )
        rows = await asyncio.to_thread(
            self._client.execute, sql, {"team_id": team_id, "limit": limit}
        )
        return [
            {
                "uuid": r[0],
                "event": r[1],
                "distinct_id": r[2],
                "team_id": r[3],
                "properties": orjson.loads(r[4]),
                "timestamp": r[5],
                "person_id": r[6],
            }
            for r in rows
        ]

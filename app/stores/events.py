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

from app.stores.group_insert import GroupInsert
from schemas.clickhouse import SESSION_RECORDINGS_TABLE
from schemas.tables import element_groups
from schemas.tables import elements as elements_table
from schemas.tables import events as events_table
from schemas.tables import session_recording_events as recordings_table


class EventStore(Protocol):
    async def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Store rows (see `app.pipeline.write.stored_row`); re-writing a uuid changes nothing."""

    async def read(self, team_id: int, *, limit: int = 100) -> list[dict[str, Any]]:
        """The team's latest events, newest first, deduplicated."""

    async def write_recordings(self, rows: Sequence[dict[str, Any]]) -> None:
        """Store session-recording rows (`app.pipeline.write.recording_row`); re-writing a
        uuid changes nothing."""

    async def read_recordings(self, team_id: int, session_id: str) -> list[dict[str, Any]]:
        """One session's recording rows, oldest first, deduplicated."""

    async def probe(self) -> None:
        """Raise unless the store answers and has its tables (for health)."""


class SqlEventStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def probe(self) -> None:
        async with self._engine.connect() as conn:
            for table in (events_table, recordings_table):
                await conn.execute(select(table.c.uuid).limit(0))

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
                    "elements_hash": r.get("elements_hash"),
                    "timestamp": r["timestamp"],
                    "created_at": r["created_at"],
                }
                for r in rows
            ]
            await conn.execute(
                insert(events_table).on_conflict_do_nothing(index_elements=["uuid"]), values
            )
            await _write_element_groups(conn, insert, rows)

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
                    "elements_chain": r.elements_chain,
                }
                for r in rows
            ]

    async def write_recordings(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        async with self._engine.begin() as conn:
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            values = [
                {k: r[k] for k in _RECORDING_COLUMNS} | {"snapshot_data": r["snapshot_data"]}
                for r in rows
            ]
            await conn.execute(
                insert(recordings_table).on_conflict_do_nothing(index_elements=["uuid"]), values
            )

    async def read_recordings(self, team_id: int, session_id: str) -> list[dict[str, Any]]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(recordings_table)
                .where(
                    recordings_table.c.team_id == team_id,
                    recordings_table.c.session_id == session_id,
                )
                .order_by(recordings_table.c.timestamp, recordings_table.c.id)
            )
            return [
                {**{k: getattr(r, k) for k in _RECORDING_COLUMNS}, "snapshot_data": r.snapshot_data}
                for r in rows
            ]


_RECORDING_COLUMNS = ("uuid", "team_id", "distinct_id", "session_id", "window_id", "timestamp")


async def _write_element_groups(conn: Any, insert: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Each new element group of the batch with its elements (the original's Postgres
    pipeline): a group already stored for the team, by this worker or another, is left."""
    groups = {
        (r["team_id"], r["elements_hash"]): r["elements"] for r in rows if r.get("elements_hash")
    }
    if not groups:
        return
    created = await conn.execute(
        insert(element_groups)
        .on_conflict_do_nothing(index_elements=["team_id", "hash"])
        .returning(element_groups.c.id, element_groups.c.team_id, element_groups.c.hash),
        [{"team_id": team, "hash": digest} for team, digest in groups],
    )
    values = [
        _element_row(group_id, e)
        for group_id, team, digest in created
        for e in groups[(team, digest)]
    ]
    if values:
        await conn.execute(elements_table.insert(), values)


def _element_row(group_id: int, element: dict[str, Any]) -> dict[str, Any]:
    # the columns' types, whatever the browser sent (numbers as text, say)
    def text(key: str) -> str | None:
        value = element.get(key)
        return None if value is None else str(value)

    def number(key: str) -> int | None:
        value = element.get(key)
        try:
            return None if value is None or isinstance(value, bool) else int(value)
        except (TypeError, ValueError):
            return None

    classes = element.get("attr_class")
    return {
        "group_id": group_id,
        "text": text("text"),
        "tag_name": text("tag_name"),
        "href": text("href"),
        "attr_id": text("attr_id"),
        "attr_class": classes if isinstance(classes, list) else None,
        "nth_child": number("nth_child"),
        "nth_of_type": number("nth_of_type"),
        "attributes": element.get("attributes") or {},
        "order": number("order"),
    }


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
        self._insert_events = GroupInsert(
            lambda rows: client.insert_rows("events", self.COLUMNS, rows)
        )
        self._insert_recordings = GroupInsert(
            lambda rows: client.insert_rows(SESSION_RECORDINGS_TABLE, self.RECORDING_COLUMNS, rows)
        )

    async def probe(self) -> None:
        for table in ("events", "session_recording_events"):
            await asyncio.to_thread(self._client.execute, f"SELECT uuid FROM {table} LIMIT 0")

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
        await self._insert_events(values)

    RECORDING_COLUMNS = (
        "uuid", "timestamp", "team_id", "distinct_id", "session_id", "window_id",
        "snapshot_data", "created_at",
    )  # fmt: skip

    async def write_recordings(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        values = [
            (
                r["uuid"],
                r["timestamp"],
                r["team_id"],
                r["distinct_id"],
                r["session_id"],
                r["window_id"] or "",
                orjson.dumps(r["snapshot_data"]).decode(),
                r["created_at"],
            )
            for r in rows
        ]
        await self._insert_recordings(values)

    async def read_recordings(self, team_id: int, session_id: str) -> list[dict[str, Any]]:
        sql = (
            "SELECT toString(uuid), team_id, distinct_id, session_id, window_id, timestamp,"
            f" snapshot_data FROM {SESSION_RECORDINGS_TABLE} FINAL"
            " WHERE team_id = %(team_id)s AND session_id = %(session_id)s ORDER BY timestamp"
        )
        rows = await asyncio.to_thread(
            self._client.execute, sql, {"team_id": team_id, "session_id": session_id}
        )
        return [
            {
                "uuid": r[0],
                "team_id": r[1],
                "distinct_id": r[2],
                "session_id": r[3],
                "window_id": r[4] or None,
                "timestamp": r[5],
                "snapshot_data": orjson.loads(r[6]),
            }
            for r in rows
        ]

    async def read(self, team_id: int, *, limit: int = 100) -> list[dict[str, Any]]:
        sql = (
            "SELECT toString(uuid), event, distinct_id, team_id, properties, timestamp,"
            " toString(person_id), elements_chain FROM events FINAL WHERE team_id = %(team_id)s"
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
                "elements_chain": r[7],
            }
            for r in rows
        ]

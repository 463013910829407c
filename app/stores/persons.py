"""Persons and their distinct ids, in Postgres (cluster) or SQLite (embedded).

A distinct id belongs to at most one person per team. Lookups are batched: one query per
batch of events, plus inserts for ids never seen before.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, any_, bindparam, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.pipeline.timestamps import format_iso
from schemas.tables import person_distinct_ids, persons

Key = tuple[int, str]  # (team_id, distinct_id)

_PERSON_COLUMNS = (
    persons.c.id,
    persons.c.uuid,
    persons.c.team_id,
    persons.c.properties,
    persons.c.is_identified,
    persons.c.created_at,
    persons.c.version,
)


@dataclass(slots=True)
class Person:
    id: int
    uuid: str
    team_id: int
    properties: dict[str, Any]
    is_identified: bool
    created_at: datetime
    version: int = 0
    distinct_ids: list[str] = field(default_factory=list)

    @property
    def created_at_iso(self) -> str:
        return format_iso(self.created_at)  # cached by format_iso


class _Lru(OrderedDict[Key, int]):
    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def remember(self, key: Key, person_id: int) -> None:
        if self.capacity <= 0:
            return
        self[key] = person_id
        self.move_to_end(key)
        while len(self) > self.capacity:
            self.popitem(last=False)


class PersonStore:
    """Async access to persons; one per process, shared by the persons and write stages."""

    def __init__(self, engine: AsyncEngine, *, lru_size: int = 10_000) -> None:
        self._engine = engine
        # (team, distinct id) -> person id: most events come from ids seen moments ago
        self._known = _Lru(lru_size)

    def _insert(self, conn: AsyncConnection, table: Any) -> Any:
        return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)

    async def ensure(
        self, keys: Iterable[Key], *, created_at: datetime | None = None
    ) -> dict[Key, int]:
        """The person id of every (team, distinct id), creating a person for each new one."""
        wanted = set(keys)
        found = {key: self._known[key] for key in wanted if key in self._known}
        missing = wanted - found.keys()
        if not missing:
            return found
        async with self._engine.begin() as conn:
            found.update(await self._lookup(conn, missing))
            new = sorted(missing - found.keys())
            if new:
                await self._create(conn, new, created_at or datetime.now(UTC))
                found.update(await self._lookup(conn, set(new)))
        for key in missing:
            if key in found:
                self._known.remember(key, found[key])
        return found

    async def _lookup(self, conn: AsyncConnection, keys: set[Key]) -> dict[Key, int]:
        result: dict[Key, int] = {}
        by_team: dict[int, list[str]] = {}
        for team_id, distinct_id in keys:
            by_team.setdefault(team_id, []).append(distinct_id)
        for team_id, distinct_ids in by_team.items():
            rows = await conn.execute(
                select(person_distinct_ids.c.distinct_id, person_distinct_ids.c.person_id).where(
                    person_distinct_ids.c.team_id == team_id,
                    person_distinct_ids.c.distinct_id.in_(distinct_ids),
                )
            )
            result.update({(team_id, did): pid for did, pid in rows})
        return result

    async def _create(self, conn: AsyncConnection, keys: list[Key], created_at: datetime) -> None:
        """One person per key, in two statements whatever the number of keys."""
        new_uuids = [str(uuid.uuid4()) for _ in keys]
        created = await conn.execute(
            persons.insert().returning(persons.c.id, persons.c.uuid),
            [
                {
                    "uuid": person_uuid,
                    "team_id": team_id,
                    "properties": {},
                    "properties_last_updated_at": {},
                    "is_identified": False,
                    "created_at": created_at,
                }
                for person_uuid, (team_id, _distinct_id) in zip(new_uuids, keys, strict=True)
            ],
        )
        ids = {row.uuid: row.id for row in created}
        # another worker may have mapped an id meanwhile (a rebalance): theirs is kept, and
        # the person created here for it stays without distinct ids
        await conn.execute(
            self._insert(conn, person_distinct_ids).on_conflict_do_nothing(
                index_elements=["team_id", "distinct_id"]
            ),
            [
                {"team_id": team_id, "distinct_id": distinct_id, "person_id": ids[person_uuid]}
                for person_uuid, (team_id, distinct_id) in zip(new_uuids, keys, strict=True)
            ],
        )

    async def load(self, person_ids: Iterable[int]) -> dict[int, Person]:
        ids = sorted(set(person_ids))
        if not ids:
            return {}
        async with self._engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # one array parameter: an IN list of a thousand binds costs more to render
                # than the query takes to run
                where = persons.c.id == any_(bindparam("ids", ids, type_=ARRAY(BigInteger)))
            else:
                where = persons.c.id.in_(ids)
            rows = await conn.execute(select(*_PERSON_COLUMNS).where(where))
            return {
                pid: Person(
                    pid, uuid, team_id, properties or {}, bool(identified), created, version
                )
                for pid, uuid, team_id, properties, identified, created, version in rows
            }

    async def save_properties(self, changed: Iterable[Person]) -> None:
        """Write back the properties of persons whose properties changed."""
        rows = [
            {"pid": p.id, "properties": p.properties, "version": p.version + 1} for p in changed
        ]
        if not rows:
            return
        statement = (
            update(persons)
            .where(persons.c.id == bindparam("pid"))
            .values(properties=bindparam("properties"), version=bindparam("version"))
        )
        async with self._engine.begin() as conn:
            await conn.execute(statement, rows)

    async def by_distinct_id(self, team_id: int, distinct_id: str) -> Person | None:
        ids = await self._lookup_one(team_id, distinct_id)
        if ids is None:
            return None
        person = (await self.load([ids])).get(ids)
        if person is not None:
            async with self._engine.connect() as conn:
                rows = await conn.execute(
                    select(person_distinct_ids.c.distinct_id)
                    .where(person_distinct_ids.c.person_id == person.id)
                    .order_by(person_distinct_ids.c.id)
                )
                person.distinct_ids = [r[0] for r in rows]
        return person

    async def _lookup_one(self, team_id: int, distinct_id: str) -> int | None:
        async with self._engine.connect() as conn:
            return (await self._lookup(conn, {(team_id, distinct_id)})).get((team_id, distinct_id))

    async def alias(self, team_id: int, previous: str, current: str, *, identify: bool) -> None:
        """Make `previous` and `current` one person (the original's `alias`).

        Only ids not yet mapped are added; merging two existing persons moves the
        distinct ids of `previous`'s person to `current`'s and keeps current's properties
        on key clashes.
        """
        if previous == current:
            return
        async with self._engine.begin() as conn:
            found = await self._lookup(conn, {(team_id, previous), (team_id, current)})
            old, new = found.get((team_id, previous)), found.get((team_id, current))
            if old is None and new is None:
                await self._create(conn, [(team_id, current)], datetime.now(UTC))
                new = (await self._lookup(conn, {(team_id, current)}))[(team_id, current)]
            if new is None:
                new, old = old, None
                await self._map(conn, team_id, current, new)  # type: ignore[arg-type]
            elif old is None:
                await self._map(conn, team_id, previous, new)
            elif old != new:
                await self._merge(conn, source=old, target=new, identify=identify)
            if identify:
                await conn.execute(
                    update(persons).where(persons.c.id == new).values(is_identified=True)
                )
        for key in ((team_id, previous), (team_id, current)):
            self._known.pop(key, None)

    async def _map(
        self, conn: AsyncConnection, team_id: int, distinct_id: str, person_id: int
    ) -> None:
        await conn.execute(
            self._insert(conn, person_distinct_ids)
            .values(team_id=team_id, distinct_id=distinct_id, person_id=person_id)
            .on_conflict_do_nothing(index_elements=["team_id", "distinct_id"])
        )

    async def _merge(
        self, conn: AsyncConnection, *, source: int, target: int, identify: bool
    ) -> None:
        rows = (await conn.execute(select(persons).where(persons.c.id.in_([source, target])))).all()
        by_id = {row.id: row for row in rows}
        src, dst = by_id[source], by_id[target]
        if identify and src.is_identified:
            return  # the original refuses to merge an identified person into another on $identify
        merged = {**(src.properties or {}), **(dst.properties or {})}
        await conn.execute(
            update(persons)
            .where(persons.c.id == target)
            .values(
                properties=merged,
                created_at=min(src.created_at, dst.created_at),
                version=dst.version + 1,
            )
        )
        await conn.execute(
            update(person_distinct_ids)
            .where(person_distinct_ids.c.person_id == source)
            .values(person_id=target)
        )
        await conn.execute(persons.delete().where(persons.c.id == source))
        self._known.clear()  # ids of the source now point elsewhere

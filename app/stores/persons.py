"""Persons and their distinct ids, in Postgres (cluster) or SQLite (embedded).

A distinct id belongs to at most one person per team. The store holds no rules: the
persons stage (`app.pipeline.persons`) decides creations, merges and property changes
for a whole batch in memory and hands the store one `PersonChanges` to write in the
transaction that read the persons. Reading locks the persons read (Postgres), so two
workers deciding about the same persons take turns; a distinct id another worker mapped
meanwhile makes the write fail with `IntegrityError`, and the stage decides again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.tables import person_distinct_ids, persons

Key = tuple[int, str]  # (team_id, distinct_id)


def _aware(value: datetime) -> datetime:
    # SQLite gives back naive datetimes for timezone-aware columns; they were written in UTC
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(slots=True)
class Person:
    """A person as stored, or as the persons stage is about to store it (`id` < 0: new)."""

    id: int
    uuid: str
    team_id: int
    properties: dict[str, Any]
    is_identified: bool
    created_at: datetime
    version: int = 0
    distinct_ids: list[str] = field(default_factory=list)


def _person(row: Any) -> Person:
    return Person(
        row.id,
        row.uuid,
        row.team_id,
        row.properties or {},
        bool(row.is_identified),
        _aware(row.created_at),
        row.version,
    )


@dataclass(slots=True)
class PersonChanges:
    """What one batch changes, in the order it must be written.

    `created` are new persons (negative ids, replaced by the stored ids); `mapped` new
    distinct ids in the order they were first seen (so row order is event order);
    `moved` re-points every distinct id of a stored person to another (stored or new)
    one; `updated` stored persons whose fields changed; `deleted` merged-away persons.
    """

    created: list[Person] = field(default_factory=list)
    mapped: list[tuple[Key, int]] = field(default_factory=list)
    moved: list[tuple[int, int]] = field(default_factory=list)
    updated: list[Person] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.created or self.mapped or self.moved or self.updated or self.deleted)


class PersonTransaction:
    """One transaction's reads and its single write."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def read(
        self, keys: Iterable[Key], *, lock: bool = True
    ) -> tuple[dict[Key, int], dict[int, Person]]:
        """The person of every key that has one (locked until the transaction ends)."""
        by_team: dict[int, set[str]] = {}
        for team_id, distinct_id in keys:
            by_team.setdefault(team_id, set()).add(distinct_id)
        owners: dict[Key, int] = {}
        people: dict[int, Person] = {}
        for team_id in sorted(by_team):  # one lock order for every worker: no deadlocks
            statement = (
                select(person_distinct_ids.c.distinct_id, persons)
                .join(persons, persons.c.id == person_distinct_ids.c.person_id)
                .where(
                    person_distinct_ids.c.team_id == team_id,
                    person_distinct_ids.c.distinct_id.in_(sorted(by_team[team_id])),
                )
                .order_by(persons.c.id)
            )
            if lock:
                statement = statement.with_for_update(of=persons)
            for row in await self._conn.execute(statement):
                owners[(team_id, row.distinct_id)] = row.id
                if row.id not in people:
                    people[row.id] = _person(row)
        return owners, people

    async def write(self, changes: PersonChanges) -> dict[int, Person]:
        """Write `changes`; returns the new persons by the negative ids they had."""
        conn = self._conn
        created: dict[int, Person] = {}
        if changes.created:
            rows = await conn.execute(
                persons.insert().returning(persons.c.id, persons.c.uuid),
                [
                    {
                        "uuid": p.uuid,
                        "team_id": p.team_id,
                        "properties": p.properties,
                        "properties_last_updated_at": {},
                        "is_identified": p.is_identified,
                        "created_at": p.created_at,
                    }
                    for p in changes.created
                ],
            )
            stored_ids = {row.uuid: row.id for row in rows}
            for person in changes.created:
                created[person.id] = person
                person.id = stored_ids[person.uuid]

        def stored(person_id: int) -> int:
            return created[person_id].id if person_id < 0 else person_id

        for source, target in changes.moved:
            await conn.execute(
                update(person_distinct_ids)
                .where(person_distinct_ids.c.person_id == source)
                .values(person_id=stored(target))
            )
        if changes.mapped:
            await conn.execute(
                person_distinct_ids.insert(),
                [
                    {"team_id": team_id, "distinct_id": distinct_id, "person_id": stored(pid)}
                    for (team_id, distinct_id), pid in changes.mapped
                ],
            )
        if changes.updated:
            await conn.execute(
                update(persons)
                .where(persons.c.id == bindparam("pid"))
                .values(
                    properties=bindparam("properties"),
                    is_identified=bindparam("identified"),
                    created_at=bindparam("created"),
                    version=bindparam("next_version"),
                ),
                [
                    {
                        "pid": p.id,
                        "properties": p.properties,
                        "identified": p.is_identified,
                        "created": p.created_at,
                        "next_version": p.version + 1,
                    }
                    for p in changes.updated
                ],
            )
        if changes.deleted:
            await conn.execute(delete(persons).where(persons.c.id.in_(changes.deleted)))
        return created


class PersonStore:
    """Async access to persons; one per process."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PersonTransaction]:
        async with self._engine.begin() as conn:
            yield PersonTransaction(conn)

    async def by_distinct_id(self, team_id: int, distinct_id: str) -> Person | None:
        """The person of a distinct id, with all its distinct ids in the order they were added."""
        async with self._engine.connect() as conn:
            owners, people = await PersonTransaction(conn).read(
                [(team_id, distinct_id)], lock=False
            )
            person_id = owners.get((team_id, distinct_id))
            if person_id is None:
                return None
            person = people[person_id]
            rows = await conn.execute(
                select(person_distinct_ids.c.distinct_id)
                .where(person_distinct_ids.c.person_id == person.id)
                .order_by(person_distinct_ids.c.id)
            )
            person.distinct_ids = [r[0] for r in rows]
            return person

    async def all(self, team_id: int) -> list[Person]:
        """Every person of a team with its distinct ids, oldest person first."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(persons, person_distinct_ids.c.distinct_id)
                .join(person_distinct_ids, person_distinct_ids.c.person_id == persons.c.id)
                .where(persons.c.team_id == team_id)
                .order_by(persons.c.id, person_distinct_ids.c.id)
            )
            people: dict[int, Person] = {}
            for row in rows:
                person = people.get(row.id)
                if person is None:
                    person = people[row.id] = _person(row)
                person.distinct_ids.append(row.distinct_id)
            return list(people.values())

"""Event and property definitions per team (ingestion spec 5.2): which event names and
top-level property keys a team has sent, and whether a property is numerical.

Names already known are kept in memory per team (loaded once from the table, never
expiring, as in the original), so a batch whose names are all known costs nothing; the
new ones of a batch are inserted in two statements, insert-if-absent, so workers racing
on the same name keep one row. `is_numerical` is decided by the first value seen.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.tables import event_definitions, property_definitions

MAX_NAME_LENGTH = 400  # characters of a stored name (the column's width)
# events that define nothing, as in the original
UNDEFINED_EVENTS = frozenset({"$snapshot", "$$plugin_metrics"})


class DefinitionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._events: dict[int, set[str]] = {}
        self._properties: dict[int, set[str]] = {}

    async def record(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Define the names of these events (stored events: `team_id`, `event`,
        `properties`) that their teams have not defined yet."""
        new_events: dict[tuple[int, str], None] = {}
        new_properties: dict[tuple[int, str], bool] = {}
        for event in events:
            name = event["event"]
            if name in UNDEFINED_EVENTS:
                continue
            team = event["team_id"]
            if team not in self._events:
                await self._load(team)
            if name not in self._events[team]:
                new_events[(team, name[:MAX_NAME_LENGTH])] = None
            properties = event.get("properties")
            if not isinstance(properties, dict):
                continue
            # the keys' set difference in C: most events define nothing new
            for key in properties.keys() - self._properties[team]:
                if (team, key) not in new_properties:
                    value = properties[key]
                    numerical = isinstance(value, int | float) and not isinstance(value, bool)
                    new_properties[(team, key[:MAX_NAME_LENGTH])] = numerical
        if new_events or new_properties:
            await self._insert(new_events, new_properties)

    async def _load(self, team: int) -> None:
        async with self._engine.connect() as conn:
            names = await conn.execute(
                select(event_definitions.c.name).where(event_definitions.c.team_id == team)
            )
            keys = await conn.execute(
                select(property_definitions.c.name).where(property_definitions.c.team_id == team)
            )
            self._events[team] = {n for (n,) in names}
            self._properties[team] = {k for (k,) in keys}

    async def _insert(
        self, events: dict[tuple[int, str], None], properties: dict[tuple[int, str], bool]
    ) -> None:
        async with self._engine.begin() as conn:
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            if events:
                await conn.execute(
                    insert(event_definitions).on_conflict_do_nothing(
                        index_elements=["team_id", "name"]
                    ),
                    [{"id": str(uuid.uuid4()), "team_id": t, "name": n} for t, n in events],
                )
            if properties:
                await conn.execute(
                    insert(property_definitions).on_conflict_do_nothing(
                        index_elements=["team_id", "name"]
                    ),
                    [
                        {"id": str(uuid.uuid4()), "team_id": t, "name": n, "is_numerical": num}
                        for (t, n), num in properties.items()
                    ],
                )
        for team, name in events:
            self._events[team].add(name)
        for team, key in properties:
            self._properties[team].add(key)

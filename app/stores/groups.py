"""Groups (ingestion spec 4.8): each team's group types with their index, and the groups
`$groupidentify` names, with their properties.

A type gets the lowest free index when first seen, at most `MAX_GROUP_TYPES_PER_TEAM`
per team; past that it has none, and its groups are not indexed. Two workers seeing a new
type at once end with one index for it: the insert is insert-if-absent on the type and
on the index, and the winner's row is read back. The map is cached `GROUP_TYPES_CACHE_SECONDS`
per team and dropped after an insert, as in the original.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.tables import group_type_mappings, groups

MAX_GROUP_TYPES_PER_TEAM = 5  # group types per team, as the original: $group_0 .. $group_4
GROUP_TYPES_CACHE_SECONDS = 30.0  # the original's cache of the type -> index map


class GroupStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._types: dict[int, tuple[float, dict[str, int]]] = {}

    async def _known(self, team_id: int) -> dict[str, int]:
        hit = self._types.get(team_id)
        if hit is not None and time.monotonic() - hit[0] < GROUP_TYPES_CACHE_SECONDS:
            return hit[1]
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(
                    group_type_mappings.c.group_type, group_type_mappings.c.group_type_index
                ).where(group_type_mappings.c.team_id == team_id)
            )
            known = {t: i for t, i in rows}
        self._types[team_id] = (time.monotonic(), known)
        return known

    async def type_index(self, team_id: int, group_type: str) -> int | None:
        """The index of the team's group type, given one if it is new (None past the limit)."""
        known = await self._known(team_id)
        if group_type in known:
            return known[group_type]
        async with self._engine.begin() as conn:
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            taken = {i for i in known.values()}
            for index in range(MAX_GROUP_TYPES_PER_TEAM):
                if index in taken:
                    continue
                created = await conn.execute(
                    insert(group_type_mappings)
                    .values(team_id=team_id, group_type=group_type, group_type_index=index)
                    .on_conflict_do_nothing()
                    .returning(group_type_mappings.c.group_type_index)
                )
                if created.first() is not None:
                    break
                # the index was taken meanwhile, or the type inserted by another worker
                row = (
                    await conn.execute(
                        select(group_type_mappings.c.group_type_index).where(
                            group_type_mappings.c.team_id == team_id,
                            group_type_mappings.c.group_type == group_type,
                        )
                    )
                ).first()
                if row is not None:
                    break
        self._types.pop(team_id, None)
        return (await self._known(team_id)).get(group_type)

    async def identify(
        self, team_id: int, type_index: int, key: str, properties: Mapping[str, Any]
    ) -> None:
        """Create the group, or replace its properties (the original's full replacement)."""
        async with self._engine.begin() as conn:
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            stmt = insert(groups).values(
                team_id=team_id,
                group_type_index=type_index,
                group_key=key,
                group_properties=dict(properties),
                created_at=datetime.now(UTC),
            )
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["team_id", "group_type_index", "group_key"],
                    set_={"group_properties": stmt.excluded.group_properties},
                )
            )

    async def read(self, team_id: int) -> list[dict[str, Any]]:
        """The team's groups, by type index and key."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(groups)
                .where(groups.c.team_id == team_id)
                .order_by(groups.c.group_type_index, groups.c.group_key)
            )
            return [
                {
                    "group_type_index": r.group_type_index,
                    "group_key": r.group_key,
                    "group_properties": r.group_properties,
                }
                for r in rows
            ]

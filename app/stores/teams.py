"""Teams, cached briefly: every event needs its team, and teams change rarely."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.tables import teams

TEAM_CACHE_SECONDS = 30.0  # as the original: a team change reaches ingestion within 30 s


@dataclass(frozen=True)
class Team:
    id: int
    name: str
    anonymize_ips: bool
    ingested_event: bool = False


class TeamStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._cache: dict[int, tuple[float, Team | None]] = {}
        self._tokens: dict[str, tuple[float, int | None]] = {}

    async def get_many(self, team_ids: set[int]) -> dict[int, Team | None]:
        """Each team by id, `None` for a team that does not exist."""
        now = time.monotonic()
        fresh: dict[int, Team | None] = {
            tid: hit[1]
            for tid in team_ids
            # a missing team is not a hit (as the original): it is asked for again, so a
            # team created after its first events is seen by the next batch
            if (hit := self._cache.get(tid)) is not None
            and hit[1] is not None
            and now - hit[0] < TEAM_CACHE_SECONDS
        }
        missing = team_ids - fresh.keys()
        if missing:
            async with self._engine.connect() as conn:
                rows = await conn.execute(select(teams).where(teams.c.id.in_(sorted(missing))))
                loaded = {
                    r.id: Team(r.id, r.name, bool(r.anonymize_ips), bool(r.ingested_event))
                    for r in rows
                }
            for tid in missing:
                self._cache[tid] = (now, loaded.get(tid))
                fresh[tid] = loaded.get(tid)
        return fresh

    async def mark_ingested(self, team_ids: set[int]) -> None:
        """Set `ingested_event` on these teams (the first event of a team was stored)."""
        if not team_ids:
            return
        async with self._engine.begin() as conn:
            await conn.execute(
                update(teams)
                .where(teams.c.id.in_(sorted(team_ids)), teams.c.ingested_event.is_(False))
                .values(ingested_event=True)
            )
        for tid in team_ids:
            hit = self._cache.get(tid)
            if hit is not None and hit[1] is not None:
                self._cache[tid] = (hit[0], dataclasses.replace(hit[1], ingested_event=True))

    async def id_for_token(self, token: str) -> int | None:
        """The id of the team whose project API key is `token`, or None."""
        now = time.monotonic()
        hit = self._tokens.get(token)
        if hit is not None and now - hit[0] < TEAM_CACHE_SECONDS:
            return hit[1]
        async with self._engine.connect() as conn:
            team_id = (
                await conn.execute(select(teams.c.id).where(teams.c.api_token == token))
            ).scalar_one_or_none()
        self._tokens[token] = (now, team_id)
        return team_id

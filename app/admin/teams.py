"""Team administration: create teams with an API key, list them, change their settings.

The same commands serve Postgres (the cluster) and SQLite (a single-node install), on
whatever `DATABASE_URL` names. Ingestion reads team settings through `TeamStore`'s
cache, so a change reaches running workers within `TEAM_CACHE_SECONDS`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.admin.errors import AdminError
from schemas.tables import teams

TOKEN_PREFIX = "phc_"  # as PostHog's project API keys


@dataclass(frozen=True)
class TeamRow:
    id: int
    name: str
    api_token: str | None
    anonymize_ips: bool
    ingested_event: bool


def _parse_bool(key: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"true", "1", "yes", "on"}:
        return True
    if lowered in {"false", "0", "no", "off"}:
        return False
    raise AdminError(f"{key} must be true or false, got {text!r}")


def _parse_name(key: str, text: str) -> str:
    if not text.strip() or len(text) > 200:
        raise AdminError(f"{key} must be 1 to 200 characters")
    return text


# the settings `team set` may change, each with how its value is read
SETTABLE = {"name": _parse_name, "anonymize_ips": _parse_bool}


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs into typed values; an unknown key or bad value is an AdminError."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise AdminError(f"expected key=value, got {pair!r}")
        if key not in SETTABLE:
            raise AdminError(f"unknown team setting {key!r}; settable: {', '.join(SETTABLE)}")
        values[key] = SETTABLE[key](key, text)
    return values


async def create_team(engine: AsyncEngine, name: str) -> TeamRow:
    """A new team with a fresh API key."""
    _parse_name("name", name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    for _attempt in range(3):
        try:
            async with engine.begin() as conn:
                # the next id by hand: teams made with a chosen id (the embedded mode's
                # team 1) leave Postgres's sequence behind
                last = (await conn.execute(select(func.max(teams.c.id)))).scalar()
                team_id = (last or 0) + 1
                await conn.execute(insert(teams).values(id=team_id, name=name, api_token=token))
            return TeamRow(team_id, name, token, False, False)
        except IntegrityError:
            continue  # another operator took that id meanwhile
    raise AdminError("could not create the team: ids kept being taken, try again")


async def list_teams(engine: AsyncEngine) -> list[TeamRow]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(teams).order_by(teams.c.id))
        return [
            TeamRow(r.id, r.name, r.api_token, bool(r.anonymize_ips), bool(r.ingested_event))
            for r in rows
        ]


async def set_team(engine: AsyncEngine, team_id: int, values: dict[str, Any]) -> TeamRow:
    """Change the team's settings; returns the team as it is now."""
    if not values:
        raise AdminError("nothing to set: give key=value pairs")
    async with engine.begin() as conn:
        changed = await conn.execute(update(teams).where(teams.c.id == team_id).values(**values))
        if changed.rowcount == 0:
            raise AdminError(f"no team with id {team_id}")
    found = [t for t in await list_teams(engine) if t.id == team_id]
    return found[0]

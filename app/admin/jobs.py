"""Listing plugin jobs and export retries: what waits, what runs, what failed and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.admin.errors import AdminError
from plugin_runtime.backends.sql import as_utc
from plugin_runtime.backends.sql_jobs import FAILED, RUNNING, SCHEDULED
from schemas.tables import plugin_jobs

STATES = (SCHEDULED, RUNNING, FAILED)
LIST_LIMIT = 1000


@dataclass(frozen=True)
class JobRow:
    id: int
    team_id: int
    plugin_config_id: int
    name: str
    state: str
    run_at: datetime
    attempts: int
    error: str | None


async def list_jobs(
    engine: AsyncEngine,
    *,
    team_id: int | None = None,
    state: str | None = None,
    limit: int = LIST_LIMIT,
) -> list[JobRow]:
    """Jobs by time, oldest first (a state of `None`: every state)."""
    if state is not None and state not in STATES:
        raise AdminError(f"unknown job state {state!r}; one of {', '.join(STATES)}")
    c = plugin_jobs.c
    query = select(plugin_jobs).order_by(c.run_at, c.id).limit(limit)
    if team_id is not None:
        query = query.where(c.team_id == team_id)
    if state is not None:
        query = query.where(c.state == state)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        JobRow(
            id=r.id,
            team_id=r.team_id,
            plugin_config_id=r.plugin_config_id,
            name=r.name,
            state=r.state,
            run_at=as_utc(r.run_at),
            attempts=r.attempts,
            error=r.error,
        )
        for r in rows
    ]


def job_lines(jobs: list[JobRow]) -> list[str]:
    """A table of `jobs`, the last error cut to one line."""
    lines = [
        f"{'id':>6}  {'team':>5}  {'config':>6}  {'state':<9}  {'attempts':>8}  "
        f"{'run_at (UTC)':<19}  name: last error"
    ]
    for j in jobs:
        error = (j.error or "").splitlines()[0][:120] if j.error else ""
        when = j.run_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(
            f"{j.id:>6}  {j.team_id:>5}  {j.plugin_config_id:>6}  {j.state:<9}  "
            f"{j.attempts:>8}  {when:<19}  {j.name}" + (f": {error}" if error else "")
        )
    return lines

"""Plugin jobs and export retries in the plugin_jobs table (Postgres, or the embedded SQLite).

A job is a row from `enqueue` until it succeeds (the row is deleted) or cannot succeed
(state `failed`, with the error). A worker claims due rows with one conditional UPDATE
that sets a claim token and a lease, renewed as each job starts; on Postgres the
candidate rows are locked with SKIP LOCKED so workers polling at once take different
jobs. The UPDATE re-checks that each row is still claimable, so two workers never hold
one job. A worker that dies holding a job leaves it `running` until its lease ends; then
any worker claims it again: a job runs at least once, and twice only when its worker
died mid-run.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, and_, delete, func, or_, select, update

from plugin_runtime.backends.sql import as_utc
from plugin_runtime.errors import IllegalOperationError
from schemas.tables import plugin_jobs

SCHEDULED, RUNNING, FAILED = "scheduled", "running", "failed"


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    team_id: int
    plugin_config_id: int
    name: str
    payload: Any
    run_at: datetime
    attempts: int  # including the one this claim starts
    claim: str


def encode_payload(payload: Any) -> str:
    """The payload as JSON text; what JSON cannot hold is the plugin's error, at enqueue."""
    try:
        return orjson.dumps(payload).decode()
    except TypeError as exc:
        raise IllegalOperationError(f"a job payload must be JSON data: {exc}") from None


class SqlJobQueue:
    """A JobQueue that persists: jobs survive a restart of every worker."""

    def __init__(self, engine: Engine, *, lease: timedelta) -> None:
        # the lease outlasts the longest call the sandbox allows; `start` renews it as each
        # claimed job begins, so a live worker's job is never taken from it
        self._engine, self._lease = engine, lease

    def enqueue(
        self, *, plugin_config_id: int, team_id: int, name: str, payload: Any, run_at: datetime
    ) -> None:
        row = {
            "plugin_config_id": plugin_config_id,
            "team_id": team_id,
            "name": name,
            "payload": encode_payload(payload),
            "run_at": as_utc(run_at),
        }
        with self._engine.begin() as conn:
            conn.execute(plugin_jobs.insert().values(row))

    def claim_due(self, now: datetime, limit: int) -> list[ClaimedJob]:
        """Take up to `limit` jobs whose time has come (oldest first), for this worker."""
        now = as_utc(now)
        c = plugin_jobs.c
        claimable = or_(
            and_(c.state == SCHEDULED, c.run_at <= now),
            and_(c.state == RUNNING, c.locked_until <= now),
        )
        candidates = (
            select(c.id)
            .where(claimable)
            .order_by(c.run_at, c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        token = str(uuid.uuid4())
        statement = (
            update(plugin_jobs)
            .where(c.id.in_(candidates.scalar_subquery()), claimable)
            .values(
                state=RUNNING,
                claim=token,
                locked_until=now + self._lease,
                attempts=c.attempts + 1,
            )
            .returning(c.id, c.team_id, c.plugin_config_id, c.name, c.payload, c.run_at, c.attempts)
        )
        with self._engine.begin() as conn:
            rows = conn.execute(statement).all()
        jobs = [
            ClaimedJob(
                id=r.id,
                team_id=r.team_id,
                plugin_config_id=r.plugin_config_id,
                name=r.name,
                payload=orjson.loads(r.payload),
                run_at=as_utc(r.run_at),
                attempts=r.attempts,
                claim=token,
            )
            for r in rows
        ]
        return sorted(jobs, key=lambda j: (j.run_at, j.id))

    def start(self, job: ClaimedJob, now: datetime) -> bool:
        """Renew the lease as the job starts; False if it is no longer this worker's (its
        lease ran out while earlier jobs of the claim ran, and another worker took it)."""
        c = plugin_jobs.c
        with self._engine.begin() as conn:
            renewed = conn.execute(
                update(plugin_jobs)
                .where(c.id == job.id, c.claim == job.claim)
                .values(locked_until=as_utc(now) + self._lease)
            )
        return bool(renewed.rowcount)

    def succeeded(self, job: ClaimedJob) -> None:
        self._finish(job, None)

    def retry(self, job: ClaimedJob, *, run_at: datetime, error: str) -> None:
        self._finish(job, {"state": SCHEDULED, "run_at": as_utc(run_at), "error": error})

    def failed(self, job: ClaimedJob, error: str) -> None:
        self._finish(job, {"state": FAILED, "error": error})

    def release(self, job: ClaimedJob, *, run_at: datetime, error: str) -> None:
        """Give a job back without counting the attempt: it did not run for a reason that
        is not the plugin's (a store or the sandbox was unavailable)."""
        self._finish(
            job,
            {
                "state": SCHEDULED,
                "run_at": as_utc(run_at),
                "error": error,
                "attempts": plugin_jobs.c.attempts - 1,
            },
        )

    def _finish(self, job: ClaimedJob, values: dict[str, Any] | None) -> None:
        c = plugin_jobs.c
        # only the holder of the claim may finish the job: a worker whose lease ran out
        # must not undo the claim of the worker that took the job over
        mine = and_(c.id == job.id, c.claim == job.claim)
        with self._engine.begin() as conn:
            if values is None:
                conn.execute(delete(plugin_jobs).where(mine))
            else:
                conn.execute(
                    update(plugin_jobs).where(mine).values(**values, claim=None, locked_until=None)
                )

    def pending(self, plugin_config_ids: Sequence[int] | None = None) -> int:
        """How many jobs wait or run (of some configs): for status lines and tests."""
        c = plugin_jobs.c
        query = select(func.count()).select_from(plugin_jobs).where(c.state != FAILED)
        if plugin_config_ids is not None:
            query = query.where(c.plugin_config_id.in_(list(plugin_config_ids)))
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

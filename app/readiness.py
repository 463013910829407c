"""Whether a worker can do its work: every store it writes to answers and has its tables.

`/_health` answers 503 with the reasons while any is not; the stages meanwhile wait and
retry on their own (`app/pipeline/retries.py`), so the worker recovers without a restart
when the server is back. Results are kept for a moment: probes may come often.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.connections import async_redis
from app.settings import Settings
from app.stores.events import EventStore
from schemas.tables import (
    event_definitions,
    group_type_mappings,
    groups,
    person_distinct_ids,
    persons,
    plugin_configs,
    plugin_jobs,
    plugin_logs,
    plugin_storage,
    property_definitions,
    teams,
)

# the SQL tables the worker reads or writes while it runs
WORKER_TABLES = (
    teams,
    plugin_configs,
    persons,
    person_distinct_ids,
    plugin_jobs,
    plugin_logs,
    plugin_storage,
    event_definitions,
    property_definitions,
    group_type_mappings,
    groups,
)
PROBE_TIMEOUT_SECONDS = 3.0
KEEP_SECONDS = 2.0


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {PROBE_TIMEOUT_SECONDS:.0f} s"
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


class Readiness:
    def __init__(
        self, settings: Settings, engine: AsyncEngine, events: EventStore, *, redis: bool
    ) -> None:
        self._settings, self._engine, self._events, self._redis = settings, engine, events, redis
        self._checked = 0.0
        self._problems: dict[str, str] = {}

    async def problems(self) -> dict[str, str]:
        """Store name -> why it cannot be used now (empty: all usable)."""
        if time.monotonic() - self._checked < KEEP_SECONDS:
            return dict(self._problems)
        checks: dict[str, Callable[[], Awaitable[None]]] = {
            "sql": self._sql,
            "events": self._events.probe,
        }
        if self._redis:
            checks["redis"] = self._ping_redis
        found: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), PROBE_TIMEOUT_SECONDS)
            except Exception as exc:
                found[name] = _reason(exc)
        self._problems, self._checked = found, time.monotonic()
        return dict(found)

    async def _sql(self) -> None:
        async with self._engine.connect() as conn:
            for table in WORKER_TABLES:
                first = next(iter(table.primary_key.columns))
                await conn.execute(select(first).limit(0))

    async def _ping_redis(self) -> None:
        client = async_redis(self._settings)
        try:
            await client.ping()
        finally:
            await client.aclose()

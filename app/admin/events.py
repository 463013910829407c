"""Reading back what was stored: a team's latest events from the events store in use."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from app.settings import Settings
from app.stores.events import ClickHouseEventStore, EventStore, SqlEventStore


async def latest_events(
    settings: Settings, engine: AsyncEngine, team_id: int, limit: int
) -> list[dict[str, Any]]:
    """The team's latest `limit` events, newest first, from `EVENTS_STORE`."""
    store: EventStore
    if settings.EVENTS_STORE == "postgres":
        return await SqlEventStore(engine).read(team_id, limit=limit)
    from app.connections import clickhouse

    client = clickhouse(settings)
    try:
        store = ClickHouseEventStore(client)
        return await store.read(team_id, limit=limit)
    finally:
        client.close()


def event_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for row in rows:
        properties = row["properties"]
        if isinstance(properties, str):
            properties = orjson.loads(properties)
        shown = {k: v for k, v in properties.items() if not k.startswith("$plugins_")}
        lines.append(
            f"{row['timestamp']}  {row['event']:<20} {row['distinct_id']:<20} "
            f"{orjson.dumps(shown).decode()}"
        )
    return lines

"""Event and property definitions per team (ingestion spec 5.2)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.stores.definitions import DefinitionStore
from schemas.tables import event_definitions, property_definitions


async def test_names_are_defined_once_per_team_and_numerical_by_the_first_value(
    sql_engine: AsyncEngine,
) -> None:
    engine = sql_engine
    store = DefinitionStore(engine)
    await store.record(
        [
            {"team_id": 1, "event": "purchase", "properties": {"price": 10, "sku": "a"}},
            {"team_id": 1, "event": "purchase", "properties": {"price": "ten", "flag": True}},
            {"team_id": 2, "event": "$snapshot", "properties": {"$snapshot_data": {}}},
            {"team_id": 2, "event": "$$plugin_metrics", "properties": {"x": 1}},
        ]
    )
    again = DefinitionStore(engine)  # another worker, with its own cache
    await again.record([{"team_id": 1, "event": "purchase", "properties": {"price": 1}}])
    async with engine.connect() as conn:
        events = (
            await conn.execute(select(event_definitions.c.team_id, event_definitions.c.name))
        ).all()
        props = dict(
            (
                await conn.execute(
                    select(property_definitions.c.name, property_definitions.c.is_numerical)
                )
            ).all()
        )
    assert events == [(1, "purchase")]
    assert props == {"price": True, "sku": False, "flag": False}

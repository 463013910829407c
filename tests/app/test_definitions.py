"""Event and property definitions per team (ingestion spec 5.2)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.stores.definitions import DefinitionStore
from schemas.tables import event_definitions, metadata, property_definitions


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/defs.db")
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        yield engine
        await engine.dispose()
        return
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:55432/plugin_server")
    url = "postgresql+asyncpg://" + base.partition("://")[2]
    schema = f"d_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA {schema}"))
    await admin.dispose()
    engine = create_async_engine(url, connect_args={"server_settings": {"search_path": schema}})
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def test_names_are_defined_once_per_team_and_numerical_by_the_first_value(
    engine: AsyncEngine,
) -> None:
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

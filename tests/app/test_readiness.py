"""Readiness: every store the worker writes to must answer and have its tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from app.migrate import migrate_sql
from app.readiness import Readiness
from app.settings import load_settings
from app.stores.events import SqlEventStore


async def _readiness(tmp_path: Path, *, migrated: bool, redis_url: str | None = None):
    url = f"sqlite:///{tmp_path}/r.db"
    if migrated:
        await migrate_sql(url)
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/r.db")
    settings = load_settings(DATABASE_URL=url, REDIS_URL=redis_url or "redis://127.0.0.1:1")
    return engine, Readiness(settings, engine, SqlEventStore(engine), redis=redis_url is not None)


async def test_an_unmigrated_database_is_not_ready_and_says_which_table(tmp_path: Path) -> None:
    engine, readiness = await _readiness(tmp_path, migrated=False)
    problems = await readiness.problems()
    await engine.dispose()
    assert set(problems) == {"sql", "events"}
    assert "no such table: teams" in problems["sql"]
    assert "no such table: events" in problems["events"]


async def test_a_migrated_database_is_ready(tmp_path: Path) -> None:
    engine, readiness = await _readiness(tmp_path, migrated=True)
    assert await readiness.problems() == {}
    await engine.dispose()


async def test_redis_that_does_not_answer_is_named(tmp_path: Path) -> None:
    engine, readiness = await _readiness(tmp_path, migrated=True, redis_url="redis://127.0.0.1:1")
    problems = await readiness.problems()
    await engine.dispose()
    assert list(problems) == ["redis"] and "ConnectionError" in problems["redis"]


@pytest.mark.integration
async def test_the_local_redis_is_ready(tmp_path: Path, redis_url: str) -> None:
    engine, readiness = await _readiness(tmp_path, migrated=True, redis_url=redis_url)
    assert await readiness.problems() == {}
    await engine.dispose()

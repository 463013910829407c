"""`plugin-server --migrate`: from a database any earlier version made, to the newest
schema, twice in a row without a change; each store's failure named."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect

from app.migrate import alembic_config, migrate_all
from app.settings import load_settings
from schemas.tables import metadata
from tests.conftest import DATABASE_URL

REVISIONS = sorted(
    p.name[:4] for p in (Path(__file__).parents[2] / "schemas/migrations/versions").glob("0*.py")
)


SERVER = DATABASE_URL.rsplit("/", 1)[0]


def _admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/m.db"
        return
    name = f"m_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    yield f"{SERVER}/{name}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("earlier", REVISIONS[:-1])
def test_migrate_brings_a_database_of_an_earlier_version_to_the_newest(database, earlier, capsys):
    command.upgrade(alembic_config(database), earlier)
    settings = load_settings(DATABASE_URL=database, EVENTS_STORE="postgres")
    assert asyncio.run(migrate_all(settings)) == 0
    assert asyncio.run(migrate_all(settings)) == 0  # and again: nothing to do
    url = database.replace("postgres://", "postgresql+psycopg://", 1)
    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(metadata.tables) <= tables
    assert capsys.readouterr().out.count("SQL schema is up to date") == 2


def test_a_failure_says_which_store_failed(tmp_path, capsys):
    settings = load_settings(
        DATABASE_URL=f"sqlite:///{tmp_path}/m.db",
        EVENTS_STORE="clickhouse",
        CLICKHOUSE_HOST="127.0.0.1",
        CLICKHOUSE_PORT=1,  # nothing listens there
    )
    assert asyncio.run(migrate_all(settings)) == 1
    captured = capsys.readouterr()
    assert "SQL schema is up to date" in captured.out
    assert "ClickHouse migration failed (127.0.0.1), the SQL schema is migrated" in captured.err
    unreachable = load_settings(DATABASE_URL="postgres://nobody@127.0.0.1:1/none")
    assert asyncio.run(migrate_all(unreachable)) == 1
    assert "SQL migration failed (127.0.0.1:1/none)" in capsys.readouterr().err

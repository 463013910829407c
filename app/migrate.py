"""`plugin-server --migrate`: the SQL migrations (Alembic) and the ClickHouse DDL, idempotent."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from app.connections import database_url
from app.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "schemas" / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url(url))
    return config


async def migrate_sql(url: str) -> None:
    """Bring the database at `url` to the newest schema (a no-op when it is there)."""
    # Alembic's env runs its own event loop, so it gets a thread of its own
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")


async def migrate_all(settings: Settings) -> int:
    """Exit code of `--migrate`: 0 when both stores are migrated, 1 on the first error."""
    where = settings.DATABASE_URL.split("@")[-1]
    try:
        await migrate_sql(settings.DATABASE_URL)
    except Exception as exc:
        # Alembic runs each revision in a transaction: a failed one leaves the last good one
        print(f"SQL migration failed ({where}): {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"SQL schema is up to date ({where})")
    if settings.EVENTS_STORE != "clickhouse":
        return 0
    try:
        from app.connections import clickhouse
        from schemas.clickhouse import migrate as migrate_clickhouse

        if settings.CLICKHOUSE_DATABASE != "default":
            server = clickhouse(settings.model_copy(update={"CLICKHOUSE_DATABASE": "default"}))
            try:
                name = settings.CLICKHOUSE_DATABASE
                await asyncio.to_thread(server.execute, f"CREATE DATABASE IF NOT EXISTS `{name}`")
            finally:
                server.close()
        client = clickhouse(settings)
        try:
            await asyncio.to_thread(migrate_clickhouse, client)
        finally:
            client.close()
    except Exception as exc:
        # each table is one CREATE ... IF NOT EXISTS: running it again finishes the job
        print(
            f"ClickHouse migration failed ({settings.CLICKHOUSE_HOST}), the SQL schema is "
            f"migrated: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 1
    print(f"ClickHouse schema is up to date ({settings.CLICKHOUSE_HOST})")
    return 0

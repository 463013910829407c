"""`plugin-server --migrate`: the SQL migrations (Alembic) and the ClickHouse DDL, idempotent."""

from __future__ import annotations

import asyncio
import logging
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
    try:
        await migrate_sql(settings.DATABASE_URL)
        print(f"SQL schema is up to date ({settings.DATABASE_URL.split('@')[-1]})")
        if settings.EVENTS_STORE == "clickhouse":
            from app.clickhouse import NativeClickHouse
            from schemas.clickhouse import migrate as migrate_clickhouse

            client = NativeClickHouse.from_settings(settings)
            await asyncio.to_thread(migrate_clickhouse, client)
            print(f"ClickHouse schema is up to date ({settings.CLICKHOUSE_HOST})")
    except Exception as exc:
        print(f"migration failed: {type(exc).__name__}: {exc}")
        return 1
    return 0

"""Running one operator command against `DATABASE_URL`, with errors an operator can act on."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.admin.errors import AdminError
from app.clickhouse import ClickHouseError
from app.connections import async_engine
from app.pipeline.failures import is_infrastructure
from app.settings import Settings

EXIT_USAGE = 2  # a wrong argument or value (argparse's code)
EXIT_UNAVAILABLE = 69  # sysexits' EX_UNAVAILABLE: the database cannot be used


def run_admin(settings: Settings, command: Callable[[AsyncEngine], Awaitable[list[str]]]) -> int:
    """Run `command` on a fresh engine; print its lines, or the error and an exit code."""

    async def run() -> list[str]:
        engine = async_engine(settings)
        try:
            return await command(engine)
        finally:
            await engine.dispose()

    try:
        lines = asyncio.run(run())
    except AdminError as exc:
        print(f"plugin-server: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ClickHouseError as exc:
        print(f"plugin-server: the events store cannot be used ({exc})", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except (DBAPIError, OSError) as exc:
        if not (is_infrastructure(exc) or "no such table" in str(exc)):
            raise
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        print(
            f"plugin-server: the database at DATABASE_URL cannot be used ({reason}); "
            "is it running, and was `plugin-server --migrate` run?",
            file=sys.stderr,
        )
        return EXIT_UNAVAILABLE
    for line in lines:
        print(line)
    return 0

"""Whose fault a stage's failure is: a server's (wait for it) or the batch's (find the
event).

`is_infrastructure` answers for the errors a server that is down, overloaded, restarting
or not yet migrated gives: connection and timeout errors of every client we use, the
Postgres classes for connections (08), resources (53), operator intervention (57),
system errors (58), rolled-back transactions (40), missing objects (42, 3D) and
authorisation (28), the ClickHouse codes of the same kinds, Kafka errors marked
retriable, and `Contended` (other writers kept winning a race). Anything else is taken
to be about the data of the batch. The exception chain is searched, since store
wrappers (`ClickHouseError`, SQLAlchemy's) carry the driver's error as their cause.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3

_POSTGRES_CLASSES = frozenset({"08", "53", "57", "58", "40", "42", "3D", "28"})
# ClickHouse: timeouts, network, memory and load, read-only or unknown tables and
# databases, authentication, a server shutting down
_CLICKHOUSE_CODES = frozenset(
    {3, 32, 60, 81, 159, 164, 192, 193, 194, 195, 202, 209, 210, 241, 242, 252, 319, 394, 425, 516}
)
_CLICKHOUSE_CODE = re.compile(r"Code: (\d+)")
_REDIS_UNAVAILABLE = frozenset({"ConnectionError", "TimeoutError", "BusyLoadingError"})
_SQLITE_BUSY = ("database is locked", "database is busy", "unable to open database")


class Contended(Exception):
    """Other writers kept changing what a stage read before it could write: wait, retry."""


def is_infrastructure(exc: BaseException) -> bool:
    """Whether `exc` says a server (or its schema) is not there, rather than the data is bad."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _infrastructure(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _infrastructure(exc: BaseException) -> bool:
    if isinstance(exc, Contended | OSError | EOFError | asyncio.TimeoutError | ConnectionError):
        return True
    sqlstate = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate[:2] in _POSTGRES_CLASSES:
        return True
    module = type(exc).__module__
    name = type(exc).__name__
    if module.startswith("asyncpg") and name in {
        "InterfaceError",
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "CannotConnectNowError",
        "TooManyConnectionsError",
        "InternalClientError",
    }:
        return True
    if module.startswith("sqlalchemy") and name in {
        "OperationalError",
        "InterfaceError",
        "DisconnectionError",
        "TimeoutError",
    }:
        return _not_sqlite_data(exc)
    if module.startswith("clickhouse_driver") and name in {"NetworkError", "SocketTimeoutError"}:
        return True
    code = getattr(exc, "code", None)
    if module.startswith("clickhouse_driver") and isinstance(code, int):
        return code in _CLICKHOUSE_CODES
    if module.startswith("redis") and name in {
        "ConnectionError",
        "TimeoutError",
        "BusyLoadingError",
    }:
        return True
    if module.startswith(("aiokafka", "kafka")) and getattr(exc, "retriable", False):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return any(text in str(exc) for text in _SQLITE_BUSY)
    if name == "ClickHouseError" or module.startswith("chdb"):
        match = _CLICKHOUSE_CODE.search(str(exc))
        return match is not None and int(match.group(1)) in _CLICKHOUSE_CODES
    return False


def _not_sqlite_data(exc: BaseException) -> bool:
    # SQLAlchemy raises OperationalError for some SQLite data problems too
    orig = getattr(exc, "orig", None)
    if isinstance(orig, sqlite3.OperationalError):
        return any(text in str(orig) for text in _SQLITE_BUSY)
    return True

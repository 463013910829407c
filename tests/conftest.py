"""Fixtures every test package shares: the addresses of the local servers.

`scripts/services.sh up` starts them and `scripts/services.sh env` exports these variables;
the defaults are that script's ports. A test marked `integration` fails at once when a
server does not accept connections (in CI), or is skipped (on a developer's machine).

The tests never use the database `DATABASE_URL` names (the one the README's commands
migrate): they run on `<that name>_test` on the same server, made anew for each run.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from urllib.parse import urlsplit

import pytest

OPERATOR_DATABASE_URL = os.environ.get(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:55432/plugin_server"
)
DATABASE_URL = (
    OPERATOR_DATABASE_URL.rsplit("/", 1)[0]
    + "/"
    + (OPERATOR_DATABASE_URL.rsplit("/", 1)[1] + "_test")
)
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:56379")
KAFKA_HOSTS = os.environ.get("KAFKA_HOSTS", "127.0.0.1:19092")
CLICKHOUSE_HOST = os.environ.get("CLICKHOUSE_HOST", "127.0.0.1")
CLICKHOUSE_PORT = int(os.environ.get("CLICKHOUSE_PORT") or 19000)

CONNECT_TIMEOUT = 2.0  # s per server; they are on loopback


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"tcp://{url}")
    return parts.hostname or "127.0.0.1", parts.port or default_port


def _servers() -> dict[str, tuple[str, int]]:
    return {
        "postgres": _host_port(DATABASE_URL, 5432),
        "redis": _host_port(REDIS_URL, 6379),
        "kafka": _host_port(KAFKA_HOSTS.split(",")[0].strip(), 9092),
        "clickhouse": (CLICKHOUSE_HOST, CLICKHOUSE_PORT),
    }


@cache
def _unreachable() -> tuple[str, ...]:
    """The servers that refuse a TCP connection, checked once per test run."""
    down = []
    for name, (host, port) in _servers().items():
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
        except OSError:
            down.append(f"{name} at {host}:{port}")
    return tuple(down)


def pytest_configure(config: pytest.Config) -> None:
    """Point every test (and every process a test starts) at a fresh test database."""
    os.environ["DATABASE_URL"] = DATABASE_URL
    if not DATABASE_URL.startswith("postgres"):
        return
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    server = OPERATOR_DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    try:
        with psycopg.connect(server, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError:
        pass  # Postgres is not running: the integration tests report it


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("integration") is None:
        return
    down = _unreachable()
    if not down:
        return
    message = (
        f"not reachable: {', '.join(down)}; run scripts/services.sh up "
        '(and eval "$(scripts/services.sh env)")'
    )
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def database_url() -> str:
    """Postgres, as DATABASE_URL (postgres://...)."""
    return DATABASE_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Kafka bootstrap servers, comma-separated host:port (KAFKA_HOSTS)."""
    return KAFKA_HOSTS


@pytest.fixture(scope="session")
def clickhouse_native() -> tuple[str, int]:
    """(host, port) of the ClickHouse server's native protocol."""
    return CLICKHOUSE_HOST, CLICKHOUSE_PORT

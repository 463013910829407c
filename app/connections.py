"""The one place that turns settings into connections: SQL engines, Redis, Kafka clients
(with TLS when it is configured), ClickHouse."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import redis
import redis.asyncio as aioredis
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.kafka_tls import ssl_context, uses_tls
from app.settings import Settings

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient

    from app.clickhouse import NativeClickHouse

_ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}
# plugin code is synchronous and runs on plugin threads, so `meta.storage` and the plugin
# log sink use a blocking driver of the same database
_SYNC_DRIVERS = {"postgresql": "postgresql+psycopg", "sqlite": "sqlite"}


def _scheme_and_rest(url: str) -> tuple[str, str]:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"DATABASE_URL {url!r} is not a URL (postgres://... or sqlite:///...)")
    base = scheme.split("+", 1)[0]
    if base in ("postgres", "postgresql"):
        return "postgresql", rest
    if base == "sqlite":
        return "sqlite", rest
    raise ValueError(
        f"DATABASE_URL scheme {scheme!r} is not supported: use postgres:// or sqlite://"
    )


def database_url(url: str, *, sync: bool = False) -> str:
    """The SQLAlchemy URL for DATABASE_URL, with the driver this project uses."""
    kind, rest = _scheme_and_rest(url)
    driver = (_SYNC_DRIVERS if sync else _ASYNC_DRIVERS)[kind]
    return f"{driver}://{rest}"


def _json_text(value: object) -> str:
    return orjson.dumps(value).decode()


# JSON columns (event and person properties) are encoded and decoded on every row the
# pipeline touches; orjson does that several times faster than the json module
_JSON = {"json_serializer": _json_text, "json_deserializer": orjson.loads}


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # WAL lets the plugin threads' blocking connection and the pipeline's async one
    # work on the same file without "database is locked" on every write
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def async_engine(settings: Settings) -> AsyncEngine:
    url = database_url(settings.DATABASE_URL)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, **_JSON)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # no pre-ping: it costs a round trip per checkout (several per batch), and a connection
    # the server dropped fails its statement as a disconnect, which stalls the stage for a
    # retry while the pool throws out every connection made before it
    return create_async_engine(url, pool_size=5, max_overflow=5, **_JSON)


REDIS_TIMEOUT_SECONDS = 3.0  # a Redis that does not answer holds up no stage longer


def plugin_cache_redis(settings: Settings) -> redis.Redis:
    """The blocking client of the plugins' `meta.cache` (plugin threads share its pool of
    `REDIS_POOL_MAX_SIZE` connections; a call waits for a free one)."""
    pool = redis.BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        max_connections=settings.REDIS_POOL_MAX_SIZE,
        timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        decode_responses=True,
    )
    return redis.Redis(connection_pool=pool)


def async_redis(settings: Settings) -> aioredis.Redis:
    """A client of `REDIS_URL` whose connects and calls give up after a few seconds."""
    return aioredis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
    )


def sync_engine(settings: Settings) -> Engine:
    url = database_url(settings.DATABASE_URL, sync=True)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **_JSON)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url, pool_size=settings.worker_concurrency + 1, pool_pre_ping=True, **_JSON
    )


# --- Kafka ---------------------------------------------------------------------------


def kafka_options(settings: Settings) -> dict[str, Any]:
    """Bootstrap servers and, when configured, TLS: the same for every Kafka client
    (aiokafka and kafka-python take the same names)."""
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap}
    if uses_tls(settings):
        options.update(security_protocol="SSL", ssl_context=ssl_context(settings))
    return options


# the Kafka libraries load only where a command uses them


def kafka_admin(settings: Settings, *, client_id: str) -> KafkaAdminClient:
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(client_id=client_id, **kafka_options(settings))


def kafka_producer(settings: Settings, **options: Any) -> KafkaProducer:
    from kafka import KafkaProducer

    return KafkaProducer(**kafka_options(settings), **options)


def kafka_consumer(settings: Settings, **options: Any) -> KafkaConsumer:
    from kafka import KafkaConsumer

    return KafkaConsumer(**kafka_options(settings), **options)


def aiokafka_consumer(settings: Settings, *topics: str, **options: Any) -> AIOKafkaConsumer:
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(*topics, **kafka_options(settings), **options)


def faust_broker_credentials(settings: Settings) -> dict[str, Any]:
    """The Faust app's broker options: its TLS context, when configured."""
    return {"broker_credentials": ssl_context(settings)} if uses_tls(settings) else {}


# --- ClickHouse ------------------------------------------------------------------------


def clickhouse(settings: Settings) -> NativeClickHouse:
    """The ClickHouse server of `CLICKHOUSE_*` (native protocol)."""
    from app.clickhouse import NativeClickHouse

    return NativeClickHouse.from_settings(settings)

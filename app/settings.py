"""The one settings object, read from environment variables.

Names and defaults follow the original plugin server's configuration table where the
setting still means something here; the rest is what the Faust design needs. Every
field's description is what `plugin-server --help` prints.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["debug", "info", "warning", "error", "none"]


class SettingsError(Exception):
    """A setting from the environment has a value we cannot use."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    # --- stores -------------------------------------------------------------------------
    DATABASE_URL: str = Field(
        "postgres://localhost:5432/posthog",
        description="Postgres URL (persons, plugin configs, storage, logs, jobs); "
        "sqlite:///path for a single-node install",
    )
    REDIS_URL: str = Field("redis://127.0.0.1", description="Redis URL (cache, pub/sub, locks)")
    REDIS_POOL_MAX_SIZE: int = Field(
        3,
        ge=1,
        description="Redis connections the plugins' meta.cache may hold per worker; "
        "calls beyond wait for a free one",
    )
    CLICKHOUSE_HOST: str = Field("localhost", description="ClickHouse host (native protocol)")
    CLICKHOUSE_PORT: int = Field(
        0, ge=0, le=65535, description="ClickHouse native port; 0 = 9000, or 9440 when secure"
    )
    CLICKHOUSE_DATABASE: str = Field("default", description="ClickHouse database")
    CLICKHOUSE_USER: str = Field("default", description="ClickHouse username")
    CLICKHOUSE_PASSWORD: str | None = Field(None, description="ClickHouse password")
    CLICKHOUSE_CA: str | None = Field(
        None, description="ClickHouse CA certificate path, relative to BASE_DIR"
    )
    CLICKHOUSE_SECURE: bool = Field(False, description="use TLS for the ClickHouse connection")
    EVENTS_STORE: Literal["clickhouse", "postgres"] = Field(
        "clickhouse",
        description="where the write stage stores events in cluster mode: ClickHouse, or the "
        "Postgres pipeline's events table",
    )

    # --- Kafka ----------------------------------------------------------------------------
    KAFKA_HOSTS: str = Field("127.0.0.1:9092", description="comma-delimited Kafka hosts")
    KAFKA_CONSUMPTION_TOPIC: str = Field(
        "events_plugin_ingestion", description="Kafka incoming events topic"
    )
    KAFKA_TOPIC_PREFIX: str = Field(
        "plugin_server_", description="prefix of the topics between pipeline stages"
    )
    KAFKA_PARTITIONS: int = Field(
        4, ge=1, description="partitions of the topics between stages (keep equal to the input's)"
    )
    KAFKA_CLIENT_CERT_B64: str | None = Field(
        None,
        description="Base64 of the PEM client certificate, for brokers that require one "
        "(turns TLS on; with KAFKA_CLIENT_CERT_KEY_B64)",
    )
    KAFKA_CLIENT_CERT_KEY_B64: str | None = Field(
        None, description="Base64 of the PEM private key of KAFKA_CLIENT_CERT_B64"
    )
    KAFKA_TRUSTED_CERT_B64: str | None = Field(
        None,
        description="Base64 of the PEM CA certificate the brokers' certificates are "
        "checked against (turns TLS on)",
    )
    PIPELINE_BREAKS: str = Field(
        "exports",
        description="comma-separated stages (plugins, persons, write, exports) that read a "
        "topic of their own; the stages between two breaks run in one agent, with no topic "
        "between them (empty: the whole chain in one agent)",
    )
    PIPELINE_IN_FLIGHT: int = Field(
        2,
        ge=1,
        description="batches of one partition an agent works on at once, each stage taking "
        "them in order (1: one batch at a time)",
    )
    KAFKA_PRODUCER_MAX_QUEUE_SIZE: int = Field(
        5000,
        ge=1,
        description="events in one batch message between stages at most (a message is also "
        "at most KAFKA_MAX_MESSAGE_BATCH_SIZE bytes, which is usually reached first)",
    )
    KAFKA_FLUSH_FREQUENCY_MS: int = Field(
        500,
        ge=1,
        description="longest the first stage waits for a batch of input messages to fill "
        "(and a posthog.capture message for others to share its send), in ms",
    )
    KAFKA_MAX_MESSAGE_BATCH_SIZE: int = Field(
        900_000, ge=1024, description="bytes in one batch message between stages before it is sent"
    )

    # --- workers, plugins, scheduling --------------------------------------------------------
    BASE_DIR: str = Field(".", description="base path for resolving local plugins")
    WORKER_CONCURRENCY: int = Field(
        0, ge=0, description="plugin calls running at once per worker process; 0 = all cores"
    )
    TASK_TIMEOUT: float = Field(
        30.0, gt=0, description="seconds a single plugin call (and any loop in it) may run"
    )
    PLUGIN_CALL_MEMORY_MB: int = Field(
        128, ge=8, description="MiB a single plugin call may allocate before it is stopped"
    )
    PLUGIN_BUDGET_SECONDS: float = Field(
        30.0,
        gt=0,
        description="plugin time (s) one plugin config may spend in a burst, per worker; "
        "below half it is degraded, at zero paused",
    )
    PLUGIN_BUDGET_REFILL_PER_SECOND: float = Field(
        0.5, gt=0, description="plugin seconds a config's budget earns back per second"
    )
    PLUGIN_BUDGET_FAILURE_SECONDS: float = Field(
        0.5, ge=0, description="what a failed plugin call costs its budget on top of its time"
    )
    PLUGIN_BUDGET_PAUSE_SECONDS: float = Field(
        300.0,
        gt=0,
        description="how long a config whose budget ran out is paused (its events pass it)",
    )
    PLUGIN_BUDGET_PAUSES_BEFORE_DISABLE: int = Field(
        3,
        ge=1,
        description="pauses within PLUGIN_BUDGET_PAUSE_WINDOW_SECONDS after which the config "
        "is disabled until enabled again with `plugin config --enable`",
    )
    PLUGIN_BUDGET_PAUSE_WINDOW_SECONDS: float = Field(
        86_400.0, gt=0, description="the window in which a config's pauses are counted"
    )
    PLUGIN_BUDGET_DEGRADED_BELOW: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="the part of its budget below which a config is degraded (and on "
        "which a pause ends)",
    )
    PLUGIN_OVERFLOW_SECONDS_PER_EVENT: float = Field(
        0.05,
        ge=0,
        description="a team whose plugins take longer than this per event (twice in a row) "
        "has its events run by the overflow plugins stage, so it holds up no other team "
        "(0: never)",
    )
    PLUGIN_OVERFLOW_HOLD_SECONDS: float = Field(
        300.0, gt=0, description="how long a slow team's events stay on the overflow stage"
    )
    SANDBOX_MAX_PROCESSES: int = Field(
        32,
        ge=1,
        description="live plugin sandbox processes per worker (one per team in use, about "
        "22 MiB each); the least recently used one makes room for another",
    )
    PLUGIN_CACHE_VALUE_MAX_KB: int = Field(
        1024, ge=1, description="KiB one meta.cache value may hold"
    )
    PLUGIN_CACHE_MAX_MB: int = Field(
        16, ge=1, description="MiB all meta.cache keys of one plugin config may hold"
    )
    PLUGIN_STORAGE_VALUE_MAX_KB: int = Field(
        1024, ge=1, description="KiB one meta.storage value may hold"
    )
    PLUGIN_STORAGE_MAX_MB: int = Field(
        64, ge=1, description="MiB all meta.storage keys of one plugin config may hold"
    )
    SCHEDULE_LOCK_TTL: int = Field(
        60,
        ge=1,
        description="seconds the schedule lock lasts unrenewed: a dead dispatcher's "
        "successor takes over within this",
    )
    SCHEDULE_TEST_PERIOD_SECONDS: float = Field(
        0,
        ge=0,
        description="for tests: periods of N, 2N, 4N seconds instead of a minute, an hour, "
        "a day (0: the real periods)",
    )
    PLUGINS_RELOAD_PUBSUB_CHANNEL: str = Field(
        "reload-plugins", description="Redis channel for reload events"
    )

    # --- GeoIP, logging, modes -------------------------------------------------------------
    FETCH_ALLOWED_HOSTS: str = Field(
        "",
        description="comma-separated hosts, addresses or networks (10.0.0.0/8) that plugin "
        "fetch may reach although they are not public; by default only public addresses",
    )
    DISABLE_MMDB: bool = Field(False, description="whether to disable MMDB IP location")
    MMDB_PATH: str | None = Field(
        None,
        description="GeoLite2/GeoIP2 City .mmdb file; unset = the bundled GeoLite2 test database",
    )
    LOG_LEVEL: LogLevel = Field("info", description="minimum log level")
    LOG_FORMAT: Literal["text", "json"] = Field(
        "text",
        description="log lines as text, or as JSON objects with the team, plugin config and "
        "event uuid where they apply",
    )
    PLUGIN_SERVER_IDLE: bool = Field(
        False, description="whether to disengage the plugin server, e.g. for development"
    )
    WORKER_HTTP_PORT: int = Field(
        6066, ge=0, le=65535, description="port of the worker's health and capture endpoints"
    )
    WORKER_HTTP_HOST: str = Field("127.0.0.1", description="address the worker's web server binds")
    DATA_DIR: str = Field(
        ".plugin-server",
        description="local state of the embedded mode and the worker (table stores)",
    )

    @field_validator("PIPELINE_BREAKS")
    @classmethod
    def _known_stages(cls, value: str) -> str:
        from app.pipeline.stages import STAGE_NAMES

        unknown = [n for n in _names(value) if n not in STAGE_NAMES]
        if unknown:
            raise ValueError(f"not stages: {', '.join(unknown)} (one of {', '.join(STAGE_NAMES)})")
        return value

    @field_validator("LOG_LEVEL", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        # the original accepted `warn`; keep that spelling working
        if isinstance(value, str):
            value = value.lower()
            return "warning" if value == "warn" else value
        return value

    @property
    def pipeline_breaks(self) -> frozenset[str]:
        return frozenset(_names(self.PIPELINE_BREAKS))

    @property
    def kafka_bootstrap(self) -> list[str]:
        return [host.strip() for host in self.KAFKA_HOSTS.split(",") if host.strip()]

    @property
    def worker_concurrency(self) -> int:
        return self.WORKER_CONCURRENCY or (os.cpu_count() or 1)


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment (and `overrides`).

    Raises SettingsError naming each bad variable and the form it expects.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(part) for part in err["loc"])
            problems.append(f"{name}={err.get('input')!r}: {err['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()

"""ClickHouse tables: `events`, `plugin_log_entries` and `session_recording_events`, kept
close to PostHog's.

Both are ReplacingMergeTree tables versioned by `_timestamp` (the write time), so writing
an event again with the same uuid (a redelivered Kafka batch) adds nothing to what
`SELECT ... FINAL` returns, and the later write wins once parts merge. The sorting key
is the dedup key: `(team_id, toDate(timestamp), event, cityHash64(distinct_id),
cityHash64(uuid))`, as in PostHog, so a re-write collapses only when those fields match,
which they do for a redelivered event.

`MIGRATIONS` is the schema for ClickHouse 20.1 and later (and chDB). `PRE_20_MIGRATIONS`
holds the same `events` and `session_recording_events` columns the write stage fills, in
what older servers accept (Debian's 18.16: no DateTime64, CODEC, TTL, JSON functions or
cityHash64 of a UUID); `migrate` picks by the server's version. It must not shape the
current schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

EVENTS_TABLE = "events"
SESSION_RECORDINGS_TABLE = "session_recording_events"
PLUGIN_LOG_ENTRIES_TABLE = "plugin_log_entries"
PLUGIN_LOG_ENTRIES_TTL_WEEKS = 1  # how long plugin log lines are kept

GROUP_TYPES = 5  # PostHog's group types per team: group0 ... group4

_GROUP_COLUMNS = "".join(
    f"    group{i}_properties String CODEC(ZSTD(3)),\n"
    f"    group{i}_created_at DateTime64(3, 'UTC'),\n"
    for i in range(GROUP_TYPES)
)

EVENTS_TABLE_SQL = f"""
CREATE TABLE IF NOT EXISTS {EVENTS_TABLE}
(
    uuid UUID,
    event String,
    properties String CODEC(ZSTD(3)),
    timestamp DateTime64(6, 'UTC'),
    team_id Int64,
    distinct_id String,
    elements_chain String,
    created_at DateTime64(6, 'UTC'),
    person_id UUID,
    person_created_at DateTime64(3, 'UTC'),
    person_properties String CODEC(ZSTD(3)),
{_GROUP_COLUMNS}    `$session_id` String MATERIALIZED JSONExtractString(properties, '$session_id'),
    `$window_id` String MATERIALIZED JSONExtractString(properties, '$window_id'),
    _timestamp DateTime DEFAULT now(),
    _offset UInt64 DEFAULT 0,
    inserted_at Nullable(DateTime64(6, 'UTC')) DEFAULT now64(6, 'UTC'),
    INDEX kafka_timestamp_minmax_events _timestamp TYPE minmax GRANULARITY 3
)
ENGINE = ReplacingMergeTree(_timestamp)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (team_id, toDate(timestamp), event, cityHash64(distinct_id), cityHash64(uuid))
SAMPLE BY cityHash64(distinct_id)
"""

# PostHog's key leaves out `id`; it is added so two lines logged in the same microsecond
# by one plugin config do not collapse into one
PLUGIN_LOG_ENTRIES_TABLE_SQL = f"""
CREATE TABLE IF NOT EXISTS {PLUGIN_LOG_ENTRIES_TABLE}
(
    id UUID,
    team_id Int64,
    plugin_id Int64,
    plugin_config_id Int64,
    timestamp DateTime64(6, 'UTC'),
    source String,
    type String,
    message String,
    instance_id UUID,
    _timestamp DateTime DEFAULT now(),
    _offset UInt64 DEFAULT 0
)
ENGINE = ReplacingMergeTree(_timestamp)
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (team_id, plugin_id, plugin_config_id, timestamp, id)
TTL toDateTime(timestamp) + INTERVAL {PLUGIN_LOG_ENTRIES_TTL_WEEKS} WEEK
SETTINGS index_granularity = 512
"""

# `$snapshot` events: session recordings, apart from the events (PostHog's table)
SESSION_RECORDINGS_TABLE_SQL = f"""
CREATE TABLE IF NOT EXISTS {SESSION_RECORDINGS_TABLE}
(
    uuid UUID,
    timestamp DateTime64(6, 'UTC'),
    team_id Int64,
    distinct_id String,
    session_id String,
    window_id String,
    snapshot_data String CODEC(ZSTD(3)),
    created_at DateTime64(6, 'UTC'),
    _timestamp DateTime DEFAULT now(),
    _offset UInt64 DEFAULT 0
)
ENGINE = ReplacingMergeTree(_timestamp)
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (team_id, toHour(timestamp), session_id, timestamp, uuid)
"""

SESSION_RECORDINGS_TABLE_PRE_20_SQL = f"""
CREATE TABLE IF NOT EXISTS {SESSION_RECORDINGS_TABLE}
(
    uuid UUID,
    timestamp DateTime('UTC'),
    team_id Int64,
    distinct_id String,
    session_id String,
    window_id String,
    snapshot_data String,
    created_at DateTime('UTC'),
    _timestamp DateTime DEFAULT now(),
    _offset UInt64 DEFAULT 0
)
ENGINE = ReplacingMergeTree(_timestamp)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (team_id, session_id, timestamp, uuid)
"""

# the same events columns the write stage fills, in types ClickHouse 18.16 knows;
# its cityHash64 does not take a UUID, hence toString
EVENTS_TABLE_PRE_20_SQL = f"""
CREATE TABLE IF NOT EXISTS {EVENTS_TABLE}
(
    uuid UUID,
    event String,
    properties String,
    timestamp DateTime('UTC'),
    team_id Int64,
    distinct_id String,
    elements_chain String,
    created_at DateTime('UTC'),
    person_id UUID,
    person_properties String,
    _timestamp DateTime DEFAULT now(),
    _offset UInt64 DEFAULT 0
)
ENGINE = ReplacingMergeTree(_timestamp)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (team_id, toDate(timestamp), event, cityHash64(distinct_id), cityHash64(toString(uuid)))
SAMPLE BY cityHash64(distinct_id)
"""

MIGRATIONS: tuple[str, ...] = (
    EVENTS_TABLE_SQL,
    PLUGIN_LOG_ENTRIES_TABLE_SQL,
    SESSION_RECORDINGS_TABLE_SQL,
)
PRE_20_MIGRATIONS: tuple[str, ...] = (EVENTS_TABLE_PRE_20_SQL, SESSION_RECORDINGS_TABLE_PRE_20_SQL)


class _Executes(Protocol):
    def execute(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]: ...


CURRENT_SCHEMA_SINCE = 20  # DateTime64 and column codecs: ClickHouse 20.1


def migrations_for(version: str) -> tuple[str, ...]:
    """The DDL a server of `version` (e.g. "18.16.1", "24.8.4.13") accepts."""
    try:
        major = int(version.split(".")[0])
    except ValueError:
        return MIGRATIONS
    return MIGRATIONS if major >= CURRENT_SCHEMA_SINCE else PRE_20_MIGRATIONS


def migrate(client: _Executes, statements: Sequence[str] | None = None) -> None:
    """Create the tables that are missing; running it again changes nothing. Without
    `statements`, the variant for the server's version.

    Raises what the client raises (app.clickhouse.ClickHouseError).
    """
    if statements is None:
        statements = migrations_for(str(client.execute("SELECT version()")[0][0]))
    for sql in statements:
        client.execute(sql.strip())

"""SQL backends on a synchronous SQLAlchemy engine (Postgres via psycopg, or SQLite):
plugin storage, plugin logs and plugin config errors, on the tables of schemas/tables.py.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, Select, delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from plugin_runtime.backends import LogEntry
from schemas.tables import plugin_configs, plugin_logs, plugin_storage

log = logging.getLogger(__name__)

LOG_FLUSH_SECONDS = 1.0  # a log line reaches the table within about this long (as the original)
LOG_FLUSH_ENTRIES = 500  # ... or as soon as this many are waiting, whichever comes first


_sequence = itertools.count()


def _ordered_id() -> str:
    """A UUID-shaped id that sorts in write order, so entries with the same timestamp
    read back in the order they were logged."""
    value = (time.time_ns() << 64 | (next(_sequence) & 0xFFFFFFFF) << 32) & (1 << 128) - 1
    return str(uuid.UUID(int=value))


_DELETED = None  # a pending delete in a storage batch

# Postgres takes a whole batch as one JSON document in one statement: the server unpacks
# the rows, instead of Python binding (or array-encoding) them one by one
_JSON_UPSERT = text(
    "INSERT INTO plugin_storage (plugin_config_id, key, value) "
    "SELECT (r->>0)::bigint, r->>1, r->>2 FROM jsonb_array_elements(CAST(:rows AS jsonb)) r "
    "ON CONFLICT (plugin_config_id, key) DO UPDATE SET value = EXCLUDED.value"
)


def _as_json(rows: list[dict[str, Any]]) -> dict[str, str]:
    table = [[r["plugin_config_id"], r["key"], r["value"]] for r in rows]
    return {"rows": orjson.dumps(table).decode()}


class SqlStorage:
    """A StorageBackend on plugin_storage: one row per (plugin config, key).

    Inside `batch()` writes wait in a per-thread buffer and go to the database in one
    transaction when the scope ends: one statement per batch of events instead of one
    commit per `meta.storage.set` (the difference between about 3,000 and tens of
    thousands of `on_event` writes per second).

    A scope that ends with `hold=True` is kept as it is for `write_held`, which the
    runtime calls once the team's next request may run: a team's sandbox answers one
    request at a time, and writing a batch's storage took it as long as the batch's
    `on_event` calls did. Reads see held writes until they are stored; every write to
    the database first stores what is held, so writes land in the order they were made.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._held: list[dict[tuple[int, str], str | None]] = []  # oldest first
        self._held_lock = threading.Lock()  # guards `_held`, never held across I/O
        self._writing = threading.Lock()  # one writer at a time: writes land in order

    def _pending(self) -> dict[tuple[int, str], str | None] | None:
        pending: dict[tuple[int, str], str | None] | None = getattr(self._local, "pending", None)
        return pending

    @contextmanager
    def batch(self, *, hold: bool = False) -> Iterator[None]:
        if self._pending() is not None:
            yield  # already inside a batch on this thread
            return
        self._local.pending = {}
        try:
            yield
        finally:
            pending, self._local.pending = self._local.pending, None
            if hold:
                if pending:
                    with self._held_lock:
                        self._held.append(pending)
            else:
                self._write_in_order(pending)

    def write_held(self) -> None:
        """Store the writes of every scope that ended with `hold`, oldest first."""
        self._write_in_order({})

    def holding(self) -> bool:
        # a scope leaves `_held` only once it is stored
        with self._held_lock:
            return bool(self._held)

    def _write_in_order(self, pending: dict[tuple[int, str], str | None]) -> None:
        """`pending` stored after every held scope, in one transaction."""
        with self._writing:
            with self._held_lock:
                held: dict[tuple[int, str], str | None] = {}
                count = len(self._held)
                for scope in self._held:
                    held.update(scope)  # a later write of a key wins
            try:
                self._write({**held, **pending})
            except BaseException:
                # kept for the next writer, as one scope: each held scope's request
                # waits for its own write, and a batch retried while the database is
                # away holds its keys once, however many times it ran
                with self._held_lock:
                    self._held[:count] = [held] if held else []
                raise
            if count:
                with self._held_lock:
                    del self._held[:count]

    def _held_value(self, plugin_config_id: int, key: str) -> tuple[bool, str | None]:
        with self._held_lock:
            for scope in reversed(self._held):
                if (plugin_config_id, key) in scope:
                    return True, scope[(plugin_config_id, key)]
        return False, None

    def _write(self, pending: dict[tuple[int, str], str | None]) -> None:
        upserts = [
            {"plugin_config_id": cid, "key": key, "value": value}
            for (cid, key), value in pending.items()
            if value is not _DELETED
        ]
        deletes = [(cid, key) for (cid, key), value in pending.items() if value is _DELETED]
        if not upserts and not deletes:
            return
        with self._engine.begin() as conn:
            if len(upserts) > 1 and conn.dialect.name == "postgresql":
                conn.execute(_JSON_UPSERT, _as_json(upserts))
            elif upserts:
                conn.execute(self._upsert(), upserts)
            for cid, key in deletes:
                conn.execute(self._delete(cid, key))

    def _upsert(self) -> Any:
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(plugin_storage)
        return stmt.on_conflict_do_update(
            index_elements=[plugin_storage.c.plugin_config_id, plugin_storage.c.key],
            set_={"value": stmt.excluded.value},
        )

    @staticmethod
    def _delete(plugin_config_id: int, key: str) -> Any:
        return delete(plugin_storage).where(
            plugin_storage.c.plugin_config_id == plugin_config_id,
            plugin_storage.c.key == key,
        )

    def get(self, plugin_config_id: int, key: str) -> str | None:
        pending = self._pending()
        if pending is not None and (plugin_config_id, key) in pending:
            return pending[(plugin_config_id, key)]
        held, value = self._held_value(plugin_config_id, key)
        if held:
            return value
        with self._engine.connect() as conn:
            row = conn.execute(
                select(plugin_storage.c.value).where(
                    plugin_storage.c.plugin_config_id == plugin_config_id,
                    plugin_storage.c.key == key,
                )
            ).first()
        return None if row is None else str(row.value)

    def set(self, plugin_config_id: int, key: str, value: str) -> None:
        pending = self._pending()
        if pending is not None:
            pending[(plugin_config_id, key)] = value
            return
        self._write_in_order({(plugin_config_id, key): value})

    def delete(self, plugin_config_id: int, key: str) -> None:
        pending = self._pending()
        if pending is not None:
            pending[(plugin_config_id, key)] = _DELETED
            return
        self._write_in_order({(plugin_config_id, key): _DELETED})

    def usage(self, plugin_config_id: int) -> int:
        self.write_held()  # measured in the table: asked only near a bound, so seldom
        with self._engine.connect() as conn:
            stored = conn.execute(
                select(
                    func.coalesce(
                        func.sum(
                            func.length(plugin_storage.c.key) + func.length(plugin_storage.c.value)
                        ),
                        0,
                    )
                ).where(plugin_storage.c.plugin_config_id == plugin_config_id)
            ).scalar_one()
        pending = self._pending() or {}
        waiting = sum(
            len(key) + len(value)
            for (cid, key), value in pending.items()
            if cid == plugin_config_id and isinstance(value, str)
        )
        return int(stored) + waiting


class SqlLogSink:
    """A LogSink on plugin_logs that writes in batches.

    Entries wait in memory at most LOG_FLUSH_SECONDS (or until LOG_FLUSH_ENTRIES are
    waiting) and are then written with one multi-row INSERT; `flush()` writes now and
    `close()` flushes and stops the timer. A failed write is logged, not raised: a plugin
    call must never fail because its log line could not be stored.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        instance_id: str = "",
        flush_seconds: float = LOG_FLUSH_SECONDS,
        max_entries: int = LOG_FLUSH_ENTRIES,
    ) -> None:
        self._engine = engine
        self._instance_id = instance_id
        self._flush_seconds = flush_seconds
        self._max_entries = max_entries
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def write(self, entry: LogEntry) -> None:
        row = {
            "id": _ordered_id(),
            "team_id": entry.team_id,
            "plugin_id": entry.plugin_id,
            "plugin_config_id": entry.plugin_config_id,
            "timestamp": entry.timestamp,
            "source": entry.source,
            "level": entry.level,
            "message": entry.message,
            "instance_id": self._instance_id,
        }
        with self._lock:
            self._pending.append(row)
            full = len(self._pending) >= self._max_entries
            if not full and self._timer is None:
                self._timer = threading.Timer(self._flush_seconds, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if full:
            self.flush()

    def flush(self) -> None:
        """Write every waiting entry now."""
        with self._lock:
            rows, self._pending = self._pending, []
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if not rows:
            return
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(plugin_logs), rows)
        except Exception:
            log.exception("could not write %d plugin log entries", len(rows))

    def close(self) -> None:
        self.flush()

    def read_logs(
        self,
        plugin_config_id: int,
        *,
        level: str | None = None,
        source: str | None = None,
        since: datetime | None = None,
        limit: int = 500,
    ) -> list[LogEntry]:
        """This config's entries, oldest first, after writing any that are waiting."""
        self.flush()
        return read_logs(
            self._engine, plugin_config_id, level=level, source=source, since=since, limit=limit
        )


def as_utc(value: datetime) -> datetime:
    """A stored time as UTC: SQLite gives back naive datetimes, and everything this
    project writes is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def logs_query(
    plugin_config_id: int,
    *,
    levels: Sequence[str] | None = None,
    source: str | None = None,
    since: datetime | None = None,
    after_id: str | None = None,
    limit: int = 500,
) -> Select[Any]:
    """The newest `limit` log entries of one config (of `levels`, from `source`, from
    `since`, after the entry `after_id`: ids sort in write order), newest first."""
    c = plugin_logs.c
    query = select(plugin_logs).where(c.plugin_config_id == plugin_config_id)
    if levels is not None:
        query = query.where(c.level.in_(list(levels)))
    if source is not None:
        query = query.where(c.source == source)
    if since is not None:
        query = query.where(c.timestamp >= since)
    if after_id is not None:
        query = query.where(c.id > after_id)
    return query.order_by(c.timestamp.desc(), c.id.desc()).limit(limit)


def log_entries(rows: Sequence[Any]) -> list[LogEntry]:
    """Rows of `logs_query`, oldest first."""
    return [
        LogEntry(
            team_id=r.team_id,
            plugin_id=r.plugin_id,
            plugin_config_id=r.plugin_config_id,
            timestamp=as_utc(r.timestamp),
            source=r.source,
            level=r.level,
            message=r.message,
            id=r.id,
        )
        for r in reversed(rows)
    ]


def read_logs(
    engine: Engine,
    plugin_config_id: int,
    *,
    level: str | None = None,
    source: str | None = None,
    since: datetime | None = None,
    limit: int = 500,
) -> list[LogEntry]:
    """The stored log entries of one plugin config, oldest first (at most `limit`)."""
    query = logs_query(
        plugin_config_id,
        levels=[level] if level is not None else None,
        source=source,
        since=since,
        limit=limit,
    )
    with engine.connect() as conn:
        return log_entries(conn.execute(query).all())


class SqlErrorSink:
    """An ErrorSink on plugin_configs: `error` holds the latest error, `enabled` goes false
    when setup keeps failing."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _update(self, plugin_config_id: int, **values: Any) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(plugin_configs)
                .where(plugin_configs.c.id == plugin_config_id)
                .values(**values)
            )

    def record(self, plugin_config_id: int, error: Mapping[str, Any]) -> None:
        self._update(plugin_config_id, error=dict(error))

    def clear(self, plugin_config_id: int) -> None:
        self._update(plugin_config_id, error=None)

    def disable(self, plugin_config_id: int) -> None:
        # a newer updated_at: every worker's reload check sees the change
        self._update(plugin_config_id, enabled=False, updated_at=func.now())

    def budget(self, plugin_config_id: int, state: Mapping[str, Any] | None) -> None:
        self._update(plugin_config_id, budget=dict(state) if state is not None else None)

"""SQL storage, logs and errors on SQLite and on the real Postgres."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, insert, select

from plugin_runtime.backends import LogEntry
from plugin_runtime.backends.sql import SqlErrorSink, SqlLogSink, SqlStorage, read_logs
from schemas.tables import metadata, plugin_configs, plugins, teams

DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:55432/plugin_server")


def _postgres_url() -> str:
    _, _, rest = DATABASE_URL.partition("://")
    return f"postgresql+psycopg://{rest}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def engine(request, tmp_path):
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path}/plugins.db")
    else:
        engine = create_engine(_postgres_url())
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def _config_id() -> int:
    # ids unique per run, so tests on a shared Postgres never see each other's rows
    return uuid.uuid4().int % 10**9


def test_storage_round_trips_and_is_per_config(engine):
    storage, config = SqlStorage(engine), _config_id()
    assert storage.get(config, "k") is None
    storage.set(config, "k", '"v"')
    storage.set(config, "k", '{"a": 1}')
    assert storage.get(config, "k") == '{"a": 1}'
    assert storage.get(config + 1, "k") is None
    storage.delete(config, "k")
    storage.delete(config, "k")
    assert storage.get(config, "k") is None


def test_storage_batch_writes_at_the_end_and_reads_its_own_writes(engine):
    storage, config = SqlStorage(engine), _config_id()
    storage.set(config, "gone", '"old"')
    outside = SqlStorage(engine)  # another process's view of the same table
    with storage.batch():
        storage.set(config, "a", "1")
        storage.set(config, "a", "2")
        storage.delete(config, "gone")
        assert storage.get(config, "a") == "2"
        assert storage.get(config, "gone") is None
        assert outside.get(config, "a") is None
        assert outside.get(config, "gone") == '"old"'
    assert outside.get(config, "a") == "2"
    assert outside.get(config, "gone") is None


def test_storage_batch_is_written_even_when_the_scope_raises(engine):
    storage, config = SqlStorage(engine), _config_id()
    with pytest.raises(RuntimeError), storage.batch():
        storage.set(config, "kept", "1")
        raise RuntimeError("a plugin call failed after a write")
    assert storage.get(config, "kept") == "1"


def test_a_held_batch_is_read_at_once_and_stored_by_write_held(engine):
    storage, config = SqlStorage(engine), _config_id()
    storage.set(config, "gone", '"old"')
    outside = SqlStorage(engine)  # what the table holds
    with storage.batch(hold=True):
        storage.set(config, "a", "1")
        storage.delete(config, "gone")
    # held: this storage's readers (the team's next request) see the writes ...
    assert storage.get(config, "a") == "1" and storage.get(config, "gone") is None
    # ... the table not yet
    assert outside.get(config, "a") is None and outside.get(config, "gone") == '"old"'
    assert storage.holding()
    storage.write_held()
    assert outside.get(config, "a") == "1" and outside.get(config, "gone") is None
    assert not storage.holding()
    with storage.batch(hold=True):
        storage.get(config, "a")  # a scope that wrote nothing holds nothing
    assert not storage.holding()


def test_held_batches_land_in_the_order_they_were_written(engine):
    storage, config = SqlStorage(engine), _config_id()
    outside = SqlStorage(engine)
    with storage.batch(hold=True):
        storage.set(config, "k", "1")
        storage.set(config, "only-first", "1")
    with storage.batch(hold=True):
        storage.set(config, "k", "2")
    assert storage.get(config, "k") == "2"  # the newest held write
    # a write that does not hold goes after what is held, never under it
    with storage.batch():
        storage.set(config, "k", "3")
    assert outside.get(config, "k") == "3" and outside.get(config, "only-first") == "1"
    with storage.batch(hold=True):
        storage.set(config, "k", "4")
    storage.set(config, "k", "5")  # a single write outside a batch, too
    storage.write_held()
    assert outside.get(config, "k") == "5"


def test_a_held_batch_that_fails_to_store_stays_held(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/held.db")
    metadata.create_all(engine)
    storage, config = SqlStorage(engine), _config_id()
    with storage.batch(hold=True):
        storage.set(config, "k", "1")
    with engine.begin() as conn:  # the table goes away for a while
        conn.exec_driver_sql("ALTER TABLE plugin_storage RENAME TO away")
    with pytest.raises(Exception, match="plugin_storage"):
        storage.write_held()
    assert storage.holding()  # not stored: still held
    for attempt in range(3):  # the batch is retried while the table is away
        with storage.batch(hold=True):
            storage.set(config, "k", str(attempt + 1))
        with pytest.raises(Exception, match="plugin_storage"):
            storage.write_held()
    assert storage.get(config, "k") == "3"  # still read, still to be stored ...
    assert len(storage._held) == 1  # ... once, however often it was written
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE away RENAME TO plugin_storage")
    storage.write_held()
    assert SqlStorage(engine).get(config, "k") == "3"
    engine.dispose()


def test_usage_counts_held_writes(engine):
    storage, config = SqlStorage(engine), _config_id()
    with storage.batch(hold=True):
        storage.set(config, "abc", "12345")
    assert storage.usage(config) == len("abc") + len("12345")


def _entry(config: int, message: str, level: str = "info") -> LogEntry:
    return LogEntry(
        team_id=2,
        plugin_id=60,
        plugin_config_id=config,
        timestamp=datetime.now(UTC),
        source="PLUGIN",
        level=level,
        message=message,
    )


def test_logs_are_written_in_one_batch_and_read_in_order(engine):
    sink, config = SqlLogSink(engine, flush_seconds=60), _config_id()
    for n in range(5):
        sink.write(_entry(config, f"line {n}", "error" if n == 3 else "info"))
    assert read_logs(engine, config) == []  # still buffered
    sink.flush()
    assert [e.message for e in read_logs(engine, config)] == [f"line {n}" for n in range(5)]
    assert [e.message for e in sink.read_logs(config, level="error")] == ["line 3"]
    assert read_logs(engine, config + 1) == []


def test_logs_are_flushed_by_time_and_by_count(engine):
    config = _config_id()
    timed = SqlLogSink(engine, flush_seconds=0.1)
    timed.write(_entry(config, "soon"))
    import time

    time.sleep(0.4)
    assert [e.message for e in read_logs(engine, config)] == ["soon"]
    counted = SqlLogSink(engine, flush_seconds=60, max_entries=3)
    for n in range(3):
        counted.write(_entry(config + 1, str(n)))
    assert len(read_logs(engine, config + 1)) == 3


def test_errors_are_written_to_plugin_configs(engine):
    with engine.begin() as conn:
        team = conn.execute(insert(teams).values(name="t").returning(teams.c.id)).scalar_one()
        plugin = conn.execute(
            insert(plugins)
            .values(name="p", plugin_json={"name": "p"}, source={})
            .returning(plugins.c.id)
        ).scalar_one()
        config = conn.execute(
            insert(plugin_configs)
            .values(team_id=team, plugin_id=plugin)
            .returning(plugin_configs.c.id)
        ).scalar_one()
    sink = SqlErrorSink(engine)
    sink.record(config, {"message": "boom", "name": "ValueError", "event": {"event": "$x"}})

    def row():
        with engine.connect() as conn:
            query = select(plugin_configs.c.error, plugin_configs.c.enabled)
            return conn.execute(query.where(plugin_configs.c.id == config)).one()

    assert row().error["message"] == "boom"
    assert row().error["event"] == {"event": "$x"}
    sink.disable(config)
    sink.clear(config)
    assert (row().error, row().enabled) == (None, False)


def test_storage_usage_counts_stored_and_pending_writes_of_one_config(engine):
    storage, config, other = SqlStorage(engine), _config_id(), _config_id()
    assert storage.usage(config) == 0
    storage.set(config, "a", "x" * 1000)
    storage.set(other, "a", "x" * 9000)
    assert storage.usage(config) == 1001
    with storage.batch():
        storage.set(config, "b", "y" * 500)
        assert storage.usage(config) == 1502
    assert storage.usage(config) == 1502

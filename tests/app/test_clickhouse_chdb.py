"""The events schema and the ClickHouse adapter on chDB (the ClickHouse 26.x engine in-process)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from app.clickhouse import ChdbClickHouse, ClickHouseError, render
from schemas.clickhouse import MIGRATIONS, migrate

EVENT_COLUMNS = (
    "uuid", "event", "properties", "timestamp", "team_id", "distinct_id",
    "elements_chain", "created_at", "person_id", "person_properties",
)  # fmt: skip

T0 = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)


@pytest.fixture()
def chdb(tmp_path: Path) -> Iterator[ChdbClickHouse]:
    client = ChdbClickHouse(str(tmp_path / "chdb"))
    try:
        migrate(client)
        yield client
    finally:
        client.close()


def event_row(
    *,
    event_uuid: uuid.UUID | None = None,
    event: str = "$pageview",
    properties: dict[str, Any] | None = None,
    timestamp: dt.datetime = T0,
    team_id: int = 2,
    distinct_id: str = "user-1",
) -> tuple[Any, ...]:
    return (
        event_uuid or uuid.uuid4(),
        event,
        orjson.dumps(properties or {}).decode(),
        timestamp,
        team_id,
        distinct_id,
        "",
        timestamp,
        uuid.UUID(int=7),
        "{}",
    )


def test_migrate_creates_the_tables_and_is_idempotent(chdb: ChdbClickHouse) -> None:
    migrate(chdb)
    migrate(chdb)

    tables = chdb.execute(
        "SELECT name, engine, sorting_key FROM system.tables"
        " WHERE database = currentDatabase() ORDER BY name"
    )

    assert [(name, engine) for name, engine, _ in tables] == [
        ("events", "ReplacingMergeTree"),
        ("plugin_log_entries", "ReplacingMergeTree"),
        ("session_recording_events", "ReplacingMergeTree"),
    ]
    assert tables[0][2] == (
        "team_id, toDate(timestamp), event, cityHash64(distinct_id), cityHash64(uuid)"
    )
    assert tables[2][2] == "team_id, toHour(timestamp), session_id, timestamp, uuid"
    assert len(MIGRATIONS) == 3


def test_event_row_round_trips_its_types(chdb: ChdbClickHouse) -> None:
    event_uuid = uuid.uuid4()
    chdb.insert_rows(
        "events", EVENT_COLUMNS, [event_row(event_uuid=event_uuid, properties={"a": "é'\\"})]
    )

    [(got_uuid, timestamp, team_id, properties, person_id, inserted_at)] = chdb.execute(
        "SELECT uuid, timestamp, team_id, properties, person_id, inserted_at FROM events"
    )

    assert got_uuid == event_uuid
    assert timestamp == T0  # microseconds kept, UTC
    assert team_id == 2
    assert orjson.loads(properties) == {"a": "é'\\"}
    assert person_id == uuid.UUID(int=7)
    assert inserted_at is not None


def test_rewritten_event_is_deduplicated_by_final(chdb: ChdbClickHouse) -> None:
    rows = [event_row(distinct_id=f"user-{i}") for i in range(50)]
    chdb.insert_rows("events", EVENT_COLUMNS, rows)
    chdb.insert_rows("events", EVENT_COLUMNS, rows)  # a redelivered batch

    assert chdb.execute("SELECT count() FROM events FINAL") == [(50,)]
    assert chdb.execute("SELECT uniqExact(uuid) FROM events") == [(50,)]


def test_later_write_of_an_event_wins(chdb: ChdbClickHouse) -> None:
    event_uuid = uuid.uuid4()
    columns = (*EVENT_COLUMNS, "_timestamp")
    first = (*event_row(event_uuid=event_uuid, properties={"v": 1}), dt.datetime(2024, 5, 6))
    second = (*event_row(event_uuid=event_uuid, properties={"v": 2}), dt.datetime(2024, 5, 7))
    chdb.insert_rows("events", columns, [second])
    chdb.insert_rows("events", columns, [first])

    assert chdb.execute("SELECT properties FROM events FINAL") == [('{"v":2}',)]


def test_plugin_log_entries_past_their_ttl_are_dropped(chdb: ChdbClickHouse) -> None:
    columns = ("id", "team_id", "plugin_id", "plugin_config_id", "timestamp", "message")
    old = dt.datetime.now(dt.UTC) - dt.timedelta(weeks=2)
    chdb.insert_rows("plugin_log_entries", columns, [(uuid.uuid4(), 2, 10, 20, old, "stale")])
    chdb.execute("OPTIMIZE TABLE plugin_log_entries FINAL")

    assert chdb.execute("SELECT count() FROM plugin_log_entries") == [(0,)]


def test_json_properties_are_queryable(chdb: ChdbClickHouse) -> None:
    chdb.insert_rows(
        "events",
        EVENT_COLUMNS,
        [
            event_row(properties={"$browser": "Firefox", "$session_id": "s1", "n": 3}),
            event_row(properties={"$browser": "Firefox", "$session_id": "s1", "n": 4}),
            event_row(properties={"$browser": "Chrome", "$session_id": "s2"}),
            event_row(properties={"$browser": "Firefox"}, team_id=3),
        ],
    )

    by_browser = chdb.execute(
        "SELECT JSONExtractString(properties, '$browser') AS browser, count(),"
        " sum(JSONExtractInt(properties, 'n'))"
        " FROM events FINAL WHERE team_id = %(team)s GROUP BY browser ORDER BY browser",
        {"team": 2},
    )
    sessions = chdb.execute(
        "SELECT `$session_id`, count() FROM events WHERE team_id = 2"
        " GROUP BY `$session_id` ORDER BY `$session_id`"
    )

    assert by_browser == [("Chrome", 1, 0), ("Firefox", 2, 7)]
    assert sessions == [("s1", 2), ("s2", 1)]


def test_parameters_are_rendered_as_literals(chdb: ChdbClickHouse) -> None:
    hostile = "x' OR 1=1 -- \\ \n"
    chdb.insert_rows("events", EVENT_COLUMNS, [event_row(distinct_id=hostile), event_row()])

    rows = chdb.execute(
        "SELECT distinct_id FROM events WHERE distinct_id = %(id)s AND timestamp >= %(since)s"
        " AND team_id IN %(teams)s",
        {"id": hostile, "since": T0 - dt.timedelta(microseconds=1), "teams": (1, 2)},
    )

    assert rows == [(hostile,)]
    assert render("SELECT %(d)s", {"d": dt.date(2024, 1, 2)}) == "SELECT toDate('2024-01-02')"
    assert render("SELECT %(n)s, %(l)s", {"n": None, "l": ["a", 1]}) == "SELECT NULL, ['a', 1]"


def test_plugin_log_entries_in_the_same_microsecond_are_all_kept(chdb: ChdbClickHouse) -> None:
    columns = (
        "id", "team_id", "plugin_id", "plugin_config_id", "timestamp",
        "source", "type", "message", "instance_id",
    )  # fmt: skip
    now = dt.datetime.now(dt.UTC)  # older lines fall to the table's TTL
    rows = [
        (uuid.uuid4(), 2, 10, 20, now, "PLUGIN", "INFO", f"line {i}", uuid.UUID(int=1))
        for i in range(3)
    ]
    chdb.insert_rows("plugin_log_entries", columns, rows)
    chdb.insert_rows("plugin_log_entries", columns, rows[:1])

    messages = chdb.execute("SELECT message FROM plugin_log_entries FINAL ORDER BY message")

    assert messages == [("line 0",), ("line 1",), ("line 2",)]


def test_inserts_from_several_threads_all_land(chdb: ChdbClickHouse) -> None:
    def insert(worker: int) -> None:
        for batch in range(5):
            rows = [event_row(distinct_id=f"w{worker}-b{batch}-{i}") for i in range(20)]
            chdb.insert_rows("events", EVENT_COLUMNS, rows)

    threads = [threading.Thread(target=insert, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert chdb.execute("SELECT count() FROM events FINAL") == [(4 * 5 * 20,)]


def test_data_survives_reopening_the_path(tmp_path: Path) -> None:
    path = str(tmp_path / "chdb")
    first = ChdbClickHouse(path)
    migrate(first)
    first.insert_rows("events", EVENT_COLUMNS, [event_row()])
    first.close()

    again = ChdbClickHouse(path)
    try:
        assert again.execute("SELECT count() FROM events") == [(1,)]
    finally:
        again.close()


def test_a_second_data_path_in_one_process_is_refused(chdb: ChdbClickHouse, tmp_path: Path) -> None:
    with pytest.raises(ClickHouseError, match="one data path per process"):
        ChdbClickHouse(str(tmp_path / "other"))


def test_errors_are_clickhouse_errors_and_closed_sessions_refuse_calls(tmp_path: Path) -> None:
    client = ChdbClickHouse(str(tmp_path / "chdb"))
    with pytest.raises(ClickHouseError, match="UNKNOWN_TABLE"):
        client.execute("SELECT * FROM no_such_table")
    client.close()
    client.close()

    with pytest.raises(ClickHouseError, match="closed"):
        client.execute("SELECT 1")


def test_empty_insert_and_empty_result(chdb: ChdbClickHouse) -> None:
    assert chdb.insert_rows("events", EVENT_COLUMNS, []) == 0
    assert chdb.execute("SELECT uuid FROM events WHERE team_id = -1") == []


def test_table_and_column_names_must_be_plain(chdb: ChdbClickHouse) -> None:
    with pytest.raises(ValueError, match="plain ClickHouse"):
        chdb.insert_rows("events; DROP TABLE events", ("uuid",), [(uuid.uuid4(),)])

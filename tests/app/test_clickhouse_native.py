"""NativeClickHouse over the native protocol, against the ClickHouse server that
scripts/services.sh runs (Debian's 18.16, so only the reduced smoke schema)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator

import pytest

from app.clickhouse import ClickHouseError, NativeClickHouse
from app.settings import load_settings
from schemas.clickhouse import PRE_20_MIGRATIONS, migrate

EVENT_COLUMNS = (
    "uuid", "event", "properties", "timestamp", "team_id", "distinct_id",
    "elements_chain", "created_at", "person_id", "person_properties",
)  # fmt: skip


@pytest.fixture()
def native(clickhouse_native: tuple[str, int]) -> Iterator[NativeClickHouse]:
    """A client on a database of its own, dropped afterwards."""
    host, port = clickhouse_native
    database = f"test_{uuid.uuid4().hex[:12]}"
    admin = NativeClickHouse(host=host, port=port)
    admin.execute(f"CREATE DATABASE {database}")
    client = NativeClickHouse(host=host, port=port, database=database)
    try:
        yield client
    finally:
        client.close()
        admin.execute(f"DROP DATABASE IF EXISTS {database}")
        admin.close()


def event_row(i: int, timestamp: dt.datetime) -> tuple[object, ...]:
    return (
        uuid.uuid4(), "$pageview", f'{{"$browser":"b{i % 3}"}}', timestamp, 2,
        f"user-{i}", "", timestamp, uuid.UUID(int=i), "{}",
    )  # fmt: skip


@pytest.mark.integration
def test_smoke_schema_migrates_idempotently(native: NativeClickHouse) -> None:
    migrate(native, PRE_20_MIGRATIONS)
    migrate(native, PRE_20_MIGRATIONS)

    assert native.execute(
        "SELECT name, engine FROM system.tables WHERE database = currentDatabase() ORDER BY name"
    ) == [("events", "ReplacingMergeTree"), ("session_recording_events", "ReplacingMergeTree")]


@pytest.mark.integration
def test_batch_insert_and_final_dedup(native: NativeClickHouse) -> None:
    migrate(native, PRE_20_MIGRATIONS)
    now = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    rows = [event_row(i, now) for i in range(1000)]

    assert native.insert_rows("events", EVENT_COLUMNS, rows) == 1000
    native.insert_rows("events", EVENT_COLUMNS, rows)  # a redelivered batch

    assert native.execute("SELECT count() FROM events") == [(2000,)]
    assert native.execute("SELECT count() FROM events FINAL") == [(1000,)]
    # 18.16 has no JSONExtract*; visitParam* reads the compact JSON the write stage stores
    by_browser = native.execute(
        "SELECT visitParamExtractString(properties, '$browser') AS b, count()"
        " FROM events FINAL WHERE team_id = %(team)s GROUP BY b ORDER BY b",
        {"team": 2},
    )
    assert by_browser == [("b0", 334), ("b1", 333), ("b2", 333)]


@pytest.mark.integration
def test_types_round_trip(native: NativeClickHouse) -> None:
    native.execute(
        "CREATE TABLE types (s String, d DateTime('UTC'), u8 UInt8, u16 UInt16, u32 UInt32,"
        " u64 UInt64, ns Nullable(String), nu Nullable(UInt32), a Array(String),"
        " au Array(UInt32), id UUID) ENGINE = MergeTree ORDER BY s"
    )
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    ident = uuid.uuid4()
    rows = [
        ("é'\\", when, 255, 65535, 2**32 - 1, 2**64 - 1, None, 7, ["x", "y"], [], ident),
        ("b", when, 0, 0, 0, 0, "set", None, [], [1, 2], uuid.UUID(int=0)),
    ]
    columns = ("s", "d", "u8", "u16", "u32", "u64", "ns", "nu", "a", "au", "id")
    native.insert_rows("types", columns, rows)

    assert native.execute("SELECT * FROM types ORDER BY s") == sorted(rows, key=lambda r: r[0])


@pytest.mark.integration
def test_server_errors_are_clickhouse_errors(native: NativeClickHouse) -> None:
    with pytest.raises(ClickHouseError, match="no_such_table"):
        native.execute("SELECT * FROM no_such_table")
    # the connection stays usable after an error
    assert native.execute("SELECT 1") == [(1,)]


@pytest.mark.integration
def test_from_settings_connects(clickhouse_native: tuple[str, int]) -> None:
    host, port = clickhouse_native
    client = NativeClickHouse.from_settings(
        load_settings(CLICKHOUSE_HOST=host, CLICKHOUSE_PORT=port)
    )
    try:
        assert client.execute("SELECT %(x)s + 1", {"x": 41}) == [(42,)]
    finally:
        client.close()


def test_unreachable_server_is_a_clickhouse_error() -> None:
    client = NativeClickHouse(host="127.0.0.1", port=1)
    with pytest.raises(ClickHouseError, match=re.escape("127.0.0.1:1")):
        client.execute("SELECT 1")


def test_port_zero_means_the_default_for_the_protocol() -> None:
    assert NativeClickHouse(host="h", port=0).port == 9000
    assert NativeClickHouse(host="h", port=0, secure=True).port == 9440


@pytest.mark.integration
async def test_session_recordings_are_written_apart_from_events(native: NativeClickHouse) -> None:
    from app.stores.events import ClickHouseEventStore

    migrate(native, PRE_20_MIGRATIONS)
    store = ClickHouseEventStore(native)
    now = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    row = {
        "uuid": str(uuid.uuid4()),
        "team_id": 2,
        "distinct_id": "viewer",
        "session_id": "s-1",
        "window_id": None,
        "snapshot_data": {"type": 2},
        "timestamp": now,
        "created_at": now,
    }
    await store.write_recordings([row, row])
    (stored,) = await store.read_recordings(2, "s-1")
    assert stored["uuid"] == row["uuid"] and stored["snapshot_data"] == {"type": 2}
    assert native.execute("SELECT count() FROM events") == [(0,)]


def test_date_times_go_as_the_integers_of_their_column() -> None:
    from app.clickhouse import _to_ticks

    when = dt.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    seconds = int(when.timestamp())
    # DateTime: seconds; DateTime64(3): ms; DateTime64(6): µs; naive is UTC; None stays
    assert _to_ticks([when, when.replace(tzinfo=None), None], 10**6) == [seconds, seconds, None]
    assert _to_ticks([when], 1000) == [seconds * 1000 + 678]
    assert _to_ticks([when], 1) == [seconds * 10**6 + 678901]
    paris = when.astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert _to_ticks([paris], 1) == [seconds * 10**6 + 678901]


@pytest.mark.integration
def test_uuid_texts_are_stored_as_their_uuids(native: NativeClickHouse) -> None:
    native.execute(
        "CREATE TABLE ids (n UInt32, id UUID, maybe Nullable(UUID)) ENGINE = MergeTree ORDER BY n"
    )
    person = uuid.uuid4()
    rows = [(0, str(person), None), (1, str(person).upper(), str(person)), (2, person, None)]
    native.insert_rows("ids", ("n", "id", "maybe"), rows)

    assert native.execute("SELECT n, id, maybe FROM ids ORDER BY n") == [
        (0, person, None), (1, person, person), (2, person, None),
    ]  # fmt: skip


@pytest.mark.integration
def test_a_text_that_is_no_uuid_is_refused_as_a_clickhouse_error(native: NativeClickHouse) -> None:
    native.execute("CREATE TABLE ids (n UInt32, id UUID) ENGINE = MergeTree ORDER BY n")

    with pytest.raises(ClickHouseError, match="uuid"):
        native.insert_rows("ids", ("n", "id"), [(0, str(uuid.uuid4())), (1, "not-a-uuid")])
    assert native.execute("SELECT count() FROM ids") == [(0,)]


def test_uuid_texts_are_read_as_uuid_reads_them() -> None:
    from app.clickhouse import _to_uuids

    ident = uuid.uuid4()
    text = str(ident)
    converted = _to_uuids([text, text.upper(), "{" + text + "}", ident, None])
    assert converted[:4] == [ident] * 4 and converted[4] is None
    assert str(converted[0]) == text and hash(converted[0]) == hash(ident)
    again = _to_uuids([text, text])
    assert again[0] is again[1]  # one text, one parse
    # what is no UUID stays text, for the driver to refuse: hex that `int()` or
    # `bytes.fromhex` would bend (a sign, an underscore, a space) is not read as one
    for bad in ("not-a-uuid", "+" + text[1:], text[:-1] + "_", text[:-3] + " 3a", text + "0"):
        assert _to_uuids([bad]) == [bad]

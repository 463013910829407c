from datetime import datetime

import pytest

from app.pipeline.timestamps import (
    InvalidTimestamp,
    format_iso,
    parse_iso,
    resolve_timestamp,
    resolve_timestamp_iso,
)

NOW = parse_iso("2020-01-01T12:00:05.200Z")


def resolved(data: dict[str, object], sent_at: str | None = None) -> str:
    sent = parse_iso(sent_at) if sent_at else None
    return format_iso(resolve_timestamp(data, NOW, sent))


@pytest.mark.parametrize(
    ("timestamp", "sent_at", "expected"),
    [
        ("2020-01-02T14:00:00.000Z", "2020-01-02T14:10:00.000Z", "2020-01-01T11:50:05.200Z"),
        ("2020-01-02T18:00:00.000+04:00", "2020-01-02T14:10:00.000Z", "2020-01-01T11:50:05.200Z"),
        ("2020-01-02T14:00:00", "2020-01-02T14:10:00", "2020-01-01T11:50:05.200Z"),
        ("2020-01-02 14:00:00", "2020-01-02T14:10:00.000Z", "2020-01-01T11:50:05.200Z"),
        (1577880000000, "2020-01-01T12:10:00.000Z", "2020-01-01T11:50:05.200Z"),
    ],
)
def test_sent_at_removes_client_clock_skew(timestamp: object, sent_at: str, expected: str) -> None:
    assert resolved({"timestamp": timestamp}, sent_at) == expected


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2020-01-02T14:00:00.000Z", "2020-01-02T14:00:00.000Z"),
        ("2020-01-02T14:00:00+02:00", "2020-01-02T12:00:00.000Z"),
        ("2020-01-02T14:00:00.123456Z", "2020-01-02T14:00:00.123Z"),
    ],
)
def test_timestamp_without_sent_at_is_kept_even_in_the_future(
    timestamp: str, expected: str
) -> None:
    assert resolved({"timestamp": timestamp}) == expected


@pytest.mark.parametrize("timestamp", ["garbage", "2020-01-02 14:00:00", 1577880000000])
def test_unreadable_timestamp_without_sent_at_is_invalid(timestamp: object) -> None:
    with pytest.raises(InvalidTimestamp):
        resolve_timestamp({"timestamp": timestamp}, NOW, None)


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (150, "2020-01-01T12:00:05.050Z"),
        ("150", "2020-01-01T12:00:05.050Z"),
        (-1000, "2020-01-01T12:00:06.200Z"),
        (0, "2020-01-01T12:00:05.200Z"),
    ],
)
def test_offset_counts_back_from_now(offset: object, expected: str) -> None:
    assert resolved({"offset": offset}) == expected


def test_timestamp_wins_over_offset() -> None:
    assert resolved({"timestamp": "2020-01-02T14:00:00.000Z", "offset": 150}) == (
        "2020-01-02T14:00:00.000Z"
    )


def test_no_timestamp_or_offset_is_now_even_with_sent_at() -> None:
    assert resolved({}, "2020-01-02T14:10:00.000Z") == "2020-01-01T12:00:05.200Z"


def test_unreadable_sent_at_falls_back_to_the_timestamp() -> None:
    stamp = "2020-01-02T14:00:00.000Z"
    assert format_iso(resolve_timestamp({"timestamp": stamp}, NOW, None)) == stamp
    assert isinstance(parse_iso("2020-01-01T00:00:00"), datetime)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2020-01-02T14:00:00.000Z", "2020-01-02T14:00:00.000Z"),
        ("2020-01-02T14:00:00Z", "2020-01-02T14:00:00.000Z"),
        ("2020-01-02T16:00:00.123+02:00", "2020-01-02T14:00:00.123Z"),
    ],
)
def test_iso_result_is_canonical_whatever_the_input_form(timestamp: str, expected: str) -> None:
    assert resolve_timestamp_iso({"timestamp": timestamp}, NOW, None) == expected

"""When an event happened: the client timestamp corrected for clock skew, or an offset from now."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any


class InvalidTimestamp(ValueError):
    """The event's timestamp cannot be read."""


@lru_cache(maxsize=4096)
def parse_iso(value: str) -> datetime:
    """Strict ISO-8601; a value without a zone is read as UTC (the server's zone).

    Cached: the events of one capture request share `now` and `sent_at`.
    """
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if "T" not in text and "t" not in text:
        raise InvalidTimestamp(f"not an ISO-8601 timestamp: {value!r}")
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_lenient(value: Any) -> datetime:
    """What a JavaScript Date accepts here: ISO with or without a zone or `T`, or epoch ms."""
    if isinstance(value, bool):
        raise InvalidTimestamp(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if not isinstance(value, str):
        raise InvalidTimestamp(f"not a timestamp: {value!r}")
    text = value.strip().replace(" ", "T", 1)
    return parse_iso(text)


def _ms(value: datetime) -> datetime:
    # stored precision is milliseconds, as in the original
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


# the form events carry between stages; a client timestamp already in it needs no work
_CANONICAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def resolve_timestamp_iso(data: dict[str, Any], now: datetime, sent_at: datetime | None) -> str:
    """`resolve_timestamp` as the canonical ISO text (`format_iso`)."""
    timestamp = data.get("timestamp")
    if sent_at is None and isinstance(timestamp, str) and _CANONICAL.fullmatch(timestamp):
        return timestamp
    return format_iso(resolve_timestamp(data, now, sent_at))


def resolve_timestamp(data: dict[str, Any], now: datetime, sent_at: datetime | None) -> datetime:
    """The event's time, by the original's rules in priority order.

    1. `timestamp` with `sent_at`: now + (timestamp - sent_at), removing the client's skew;
       an unreadable pair falls back to the timestamp alone.
    2. `timestamp` alone: the timestamp (strict ISO-8601).
    3. a non-zero `offset` (ms): now - offset.
    4. otherwise now.

    Raises InvalidTimestamp when the timestamp cannot be read at all.
    """
    timestamp = data.get("timestamp")
    if timestamp:
        if sent_at is not None:
            try:
                return _ms(now + (_parse_lenient(timestamp) - sent_at))
            except (InvalidTimestamp, ValueError, OverflowError, OSError):
                pass
        if not isinstance(timestamp, str):
            raise InvalidTimestamp(f"timestamp {timestamp!r} is not an ISO-8601 string")
        try:
            return _ms(parse_iso(timestamp))
        except ValueError as exc:
            raise InvalidTimestamp(f"timestamp {timestamp!r} is not ISO-8601") from exc
    offset = data.get("offset")
    if offset:
        try:
            millis = float(offset)
        except (TypeError, ValueError) as exc:
            raise InvalidTimestamp(f"offset {offset!r} is not a number of milliseconds") from exc
        return _ms(now - timedelta(milliseconds=millis))
    return _ms(now)


@lru_cache(maxsize=1024)
def format_iso(value: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a Z, as events carry it between stages."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"

"""What the event stores can hold, applied to one event in parse, so that one event's odd
field costs that event alone and never fails the batch it is written with.

- `distinct_id`: cut to 200 characters. PostHog's capture cuts it so (the HTTP capture
  here too); the Kafka path used to carry longer ones into a 400-character column.
- Any text (names, ids, property keys and values, at any depth): NUL (U+0000) becomes
  U+FFFD. Postgres text and JSONB refuse NUL; PostHog's later ingestion replaces it so.
- `timestamp`: from 1970-01-01 to 2105-12-31 UTC, else the event is a dead letter: the
  range every event store takes (ClickHouse `DateTime` is the narrowest).
- Numbers: as JSON gives them. Integers past 64 bits become floats and infinities refuse
  the message (orjson's reading); every store takes what is left.
"""

from __future__ import annotations

from typing import Any

MAX_DISTINCT_ID_LENGTH = 200  # characters, as PostHog's capture cuts distinct ids
NUL = "\x00"
REPLACEMENT = "\ufffd"
MIN_YEAR, MAX_YEAR = 1970, 2105  # of a stored timestamp, UTC


class OutOfRange(ValueError):
    """A value no event store can hold; the message says which and the range."""


def storable_distinct_id(value: str) -> str:
    return value[:MAX_DISTINCT_ID_LENGTH]


def may_hold_nul(raw: bytes | str) -> bool:
    """Whether a JSON message can contain a NUL: JSON writes it escaped, so a message
    without the escape has none (a cheap test that keeps the walk off the common path)."""
    return (b"\\u0000" in raw) if isinstance(raw, bytes) else ("\\u0000" in raw)


def without_nul(value: Any) -> Any:
    """`value` with every NUL in its text (keys included, at any depth) replaced."""
    if isinstance(value, str):
        return value.replace(NUL, REPLACEMENT) if NUL in value else value
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


def check_timestamp(iso: str) -> None:
    """Raise OutOfRange for a canonical ISO timestamp (`YYYY-MM-DDT...Z`) outside the range."""
    year = int(iso[:4]) if iso[:4].isdigit() and iso[4:5] == "-" else None
    if year is None or not MIN_YEAR <= year <= MAX_YEAR:
        raise OutOfRange(
            f"timestamp {iso} is outside the range the event stores hold "
            f"({MIN_YEAR}-01-01 to {MAX_YEAR}-12-31 UTC)"
        )

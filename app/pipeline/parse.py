"""The parse stage: capture messages to plugin events, or dead letters with the reason."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from app.pipeline.dead_letters import dead_letter
from app.pipeline.output import StageOutput
from app.pipeline.positions import POSITION_KEY
from app.pipeline.storable import (
    OutOfRange,
    check_timestamp,
    may_hold_nul,
    storable_distinct_id,
    without_nul,
)
from app.pipeline.timestamps import (
    InvalidTimestamp,
    format_iso,
    parse_iso,
    resolve_timestamp_iso,
)

STAGE = "parse"
MAX_EVENT_NAME_LENGTH = 200  # characters, as the original cut event names
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


class InvalidEvent(ValueError):
    """The capture message cannot become an event; the message says why."""


def _event_name(value: Any) -> str:
    if value is None:
        raise InvalidEvent("event name is missing")
    name = value if isinstance(value, str) else orjson.dumps(value).decode()
    return name[:MAX_EVENT_NAME_LENGTH]


def _merge_person_updates(event: dict[str, Any], properties: dict[str, Any]) -> None:
    # a top-level $set/$set_once is merged into the properties' one, top-level keys winning
    for key in ("$set", "$set_once"):
        top = event.pop(key, None)
        if isinstance(top, dict):
            merged = properties.get(key)
            properties[key] = {**merged, **top} if isinstance(merged, dict) else dict(top)


def to_plugin_event(message: dict[str, Any], *, received: datetime | None = None) -> dict[str, Any]:
    """One capture message as the plugin event every later stage works on.

    The outer fields are spread first and the decoded `data` second, so a key in `data`
    wins, as in the original. Raises InvalidEvent naming the field that is wrong.
    """
    data = message.get("data")
    if isinstance(data, str | bytes):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidEvent(f"data is not valid JSON: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidEvent("data must be a JSON object")
    event: dict[str, Any] = dict(message)
    event.pop("data", None)
    event.update(data)

    team_id = event.get("team_id")
    if not isinstance(team_id, int) or isinstance(team_id, bool):
        raise InvalidEvent(f"team_id must be an integer, got {team_id!r}")
    event_uuid = event.get("uuid")
    if not isinstance(event_uuid, str) or not _UUID.match(event_uuid):
        raise InvalidEvent(f'Not a valid UUID: "{event_uuid}"')
    distinct_id = event.get("distinct_id")
    if distinct_id is None or distinct_id == "":
        raise InvalidEvent("distinct_id is missing")
    event["distinct_id"] = storable_distinct_id(
        distinct_id if isinstance(distinct_id, str) else str(distinct_id)
    )
    event["event"] = _event_name(event.get("event"))
    event["ip"] = event.get("ip") or None
    event["site_url"] = event.get("site_url") or None

    properties = event.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise InvalidEvent("properties must be a JSON object")
    event["properties"] = properties
    _merge_person_updates(event, properties)

    now = _read_time(event, "now", default=None) or received or datetime.now(UTC)
    sent_at = _read_time(event, "sent_at", default=None)
    try:
        event["timestamp"] = resolve_timestamp_iso(event, now, sent_at)
        check_timestamp(event["timestamp"])
    except (InvalidTimestamp, OutOfRange) as exc:
        raise InvalidEvent(str(exc)) from None
    event["now"] = format_iso(now)
    event.pop("offset", None)
    return event


def _read_time(event: dict[str, Any], key: str, *, default: datetime | None) -> datetime | None:
    value = event.get(key)
    if not value:
        return default
    if not isinstance(value, str):
        raise InvalidEvent(f"{key} must be an ISO-8601 string, got {value!r}")
    try:
        return parse_iso(value)
    except ValueError:
        if key == "sent_at":
            return None  # an unreadable sent_at is ignored, as in the original
        raise InvalidEvent(f"{key} is not ISO-8601: {value!r}") from None


def parse_messages(
    raw_messages: Sequence[bytes | str], positions: Sequence[list[int]] | None = None
) -> StageOutput:
    """Decode and validate capture messages; each bad one becomes a dead letter.

    `positions` are the messages' [input partition, offset], which their events keep.
    """
    out = StageOutput()
    for index, raw in enumerate(raw_messages):
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            out.dead_letters.append(
                dead_letter(STAGE, f"message is not valid JSON: {exc}", raw=raw)
            )
            continue
        if not isinstance(message, dict):
            out.dead_letters.append(dead_letter(STAGE, "message must be a JSON object", raw=raw))
            continue
        try:
            event = to_plugin_event(message)
        except InvalidEvent as exc:
            out.dead_letters.append(dead_letter(STAGE, str(exc), event=message, raw=raw))
            continue
        if may_hold_nul(raw):
            event = without_nul(event)
        if positions is not None:
            event[POSITION_KEY] = positions[index]
        else:
            event.pop(POSITION_KEY, None)  # only the input topic says where an event was
        out.events.append(event)
    return out

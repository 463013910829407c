"""The capture message: one record on `KAFKA_CONSUMPTION_TOPIC` per event, keyed
`team_id:distinct_id` (UTF-8), value JSON. PostHog's capture service writes it; so do
this server's HTTP endpoint and `posthog.capture`, and any producer may.

`JSON_SCHEMA` is the published contract (`docs/capture-message.schema.json` is written
from it, and a test keeps the two equal). The parse stage applies the rules a schema
cannot say: a key inside `data` wins over the same key outside, timestamps are resolved
with `now`/`sent_at` skew correction, names and ids are cut to what the stores hold.
"""

from __future__ import annotations

from typing import Any, TypedDict

_HEX = "[0-9a-fA-F]"
_UUID_PATTERN = f"^{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}$"
_ISO_TIME = {"type": "string", "description": "ISO-8601, e.g. 2026-11-23T10:00:05.000Z"}


class CaptureMessage(TypedDict, total=False):
    distinct_id: str
    ip: str
    site_url: str
    team_id: int
    now: str
    sent_at: str
    uuid: str
    data: str


DATA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event"],
    "properties": {
        "event": {"type": "string", "minLength": 1},
        "properties": {"type": ["object", "null"]},
        "timestamp": {"type": ["string", "null"]},
        "offset": {"type": ["integer", "null"]},
    },
}

JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "capture-message.schema.json",
    "title": "Capture message",
    "description": "One event on KAFKA_CONSUMPTION_TOPIC, keyed team_id:distinct_id.",
    "type": "object",
    "required": ["team_id", "uuid", "distinct_id", "data"],
    "properties": {
        "team_id": {"type": "integer", "description": "the team (project) the event is for"},
        "uuid": {
            "type": "string",
            "pattern": _UUID_PATTERN,
            "description": "the event's id: a second message with the same uuid is the "
            "same event (stored once)",
        },
        "distinct_id": {
            "type": ["string", "number"],
            "minLength": 1,
            "description": "the user's id; more than 200 characters are cut",
        },
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": DATA_SCHEMA,
            "description": "the event as the client sent it, JSON text: an object with "
            "`event` (the name, required), `properties`, `timestamp` or `offset`, and "
            "`$set`/`$set_once` for the person",
        },
        "ip": {"type": "string", "description": "the client's address ('' for none)"},
        "site_url": {"type": "string", "description": "where the event was captured"},
        "now": {**_ISO_TIME, "description": "when the capture service received the event"},
        "sent_at": {**_ISO_TIME, "description": "the client's clock when it sent the event"},
    },
    "additionalProperties": True,
}

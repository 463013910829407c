"""The capture message contract: the published JSON Schema is the one in `schemas/`, what
our own producers write follows it, and what it refuses the parse stage refuses too."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson
import pytest

from app.capture import capture_messages
from app.pipeline.parse import InvalidEvent, to_plugin_event
from schemas.capture_message import DATA_SCHEMA, JSON_SCHEMA

ROOT = Path(__file__).resolve().parents[2]


def valid(message: dict) -> bool:
    try:
        jsonschema.validate(message, JSON_SCHEMA)
        jsonschema.validate(orjson.loads(message["data"]), DATA_SCHEMA)
    except jsonschema.ValidationError:
        return False
    return True


def test_the_published_schema_is_the_contract_in_schemas() -> None:
    published = json.loads((ROOT / "docs" / "capture-message.schema.json").read_text())
    assert published == JSON_SCHEMA
    jsonschema.Draft202012Validator.check_schema(JSON_SCHEMA)


def test_the_example_messages_and_the_capture_endpoints_messages_follow_it() -> None:
    lines = (ROOT / "app" / "example" / "events.jsonl").read_text().splitlines()
    assert all(valid(orjson.loads(line)) for line in lines if line.strip())
    body = {"api_key": "k", "batch": [{"event": "a", "distinct_id": 5}, {"event": "b",
            "properties": {"distinct_id": "x"}}]}  # fmt: skip
    assert all(valid(m) for m in capture_messages(body, team_id=1, ip=None, site_url="s"))


@pytest.mark.parametrize(
    "change",
    [
        {"team_id": "1"},
        {"uuid": "not-a-uuid"},
        {"distinct_id": ""},
        {"data": orjson.dumps({"properties": {}}).decode()},
    ],
)
def test_what_the_schema_refuses_the_parse_stage_refuses(change: dict) -> None:
    line = (ROOT / "app" / "example" / "events.jsonl").read_text().splitlines()[0]
    message = {**orjson.loads(line), **change}
    assert not valid(message)
    with pytest.raises(InvalidEvent):
        to_plugin_event(message)

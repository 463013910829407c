import orjson
import pytest

from app.pipeline.parse import MAX_EVENT_NAME_LENGTH, parse_messages

UUID = "017cc6d8-0001-0001-8000-000000000001"


def message(**overrides: object) -> bytes:
    data = overrides.pop("data", {"event": "$pageview", "properties": {"a": 1}})
    body = {
        "distinct_id": "user-1",
        "ip": "11.12.13.14",
        "site_url": "https://app.example.com",
        "team_id": 2,
        "now": "2021-10-28T12:00:00.000Z",
        "sent_at": "2021-10-28T11:59:59.500Z",
        "uuid": UUID,
        "data": data if isinstance(data, str) else orjson.dumps(data).decode(),
    }
    body.update(overrides)
    return orjson.dumps(body)


def test_capture_message_becomes_a_plugin_event_with_data_winning() -> None:
    raw = message(data={"event": "$pageview", "distinct_id": "from-data", "properties": {"a": 1},
                        "timestamp": "2021-10-28T11:59:58.000Z"})  # fmt: skip
    out = parse_messages([raw])
    assert out.dead_letters == []
    (event,) = out.events
    assert event["distinct_id"] == "from-data"
    assert event["event"] == "$pageview"
    assert event["properties"] == {"a": 1}
    assert event["team_id"] == 2
    # the client's half-second skew is removed
    assert event["timestamp"] == "2021-10-28T11:59:58.500Z"


def test_top_level_set_merges_into_properties_set_with_top_level_winning() -> None:
    data = {"event": "e", "properties": {"$set": {"a": 1, "b": 1}}, "$set": {"b": 2}}
    (event,) = parse_messages([message(data=data)]).events
    assert event["properties"]["$set"] == {"a": 1, "b": 2}


def test_empty_ip_and_site_url_become_none_and_numeric_distinct_id_a_string() -> None:
    (event,) = parse_messages([message(ip="", site_url="", distinct_id=42)]).events
    assert event["ip"] is None and event["site_url"] is None
    assert event["distinct_id"] == "42"


def test_long_and_non_string_event_names() -> None:
    long_name = "x" * 500
    events = parse_messages(
        [message(data={"event": long_name}), message(data={"event": {"event name": "as object"}})]
    ).events
    assert len(events[0]["event"]) == MAX_EVENT_NAME_LENGTH
    assert events[1]["event"] == '{"event name":"as object"}'


def test_bad_messages_become_dead_letters_with_the_reason() -> None:
    out = parse_messages(
        [
            b"{not json",
            b"[1, 2]",
            message(uuid="not-a-uuid"),
            message(data="{broken"),
            message(team_id="two"),
            message(data={"properties": {}}),
            message(),
        ]
    )
    assert len(out.events) == 1
    reasons = [d.error for d in out.dead_letters]
    assert reasons[0].startswith("message is not valid JSON")
    assert reasons[1] == "message must be a JSON object"
    assert reasons[2] == 'Not a valid UUID: "not-a-uuid"'
    assert reasons[3].startswith("data is not valid JSON")
    assert reasons[4] == "team_id must be an integer, got 'two'"
    assert reasons[5] == "event name is missing"
    assert all(d.stage == "parse" for d in out.dead_letters)
    assert out.dead_letters[0].raw_payload == "{not json"


def test_distinct_id_is_cut_to_200_characters_as_capture_cuts_it() -> None:
    raw = message(data={"event": "e", "distinct_id": "d" * 450})
    (event,) = parse_messages([raw]).events
    assert event["distinct_id"] == "d" * 200


def test_nul_characters_become_replacement_characters_everywhere() -> None:
    data = {
        "event": "e\x00v",
        "distinct_id": "u\x00",
        "properties": {"k\x00": "v\x00", "$set": {"name": "a\x00b"}, "list": ["\x00"]},
    }
    (event,) = parse_messages([message(data=data)]).events
    assert event["event"] == "e\ufffdv" and event["distinct_id"] == "u\ufffd"
    assert event["properties"]["k\ufffd"] == "v\ufffd"
    assert event["properties"]["$set"] == {"name": "a\ufffdb"}
    assert event["properties"]["list"] == ["\ufffd"]


OUT_OF_RANGE = [
    "0001-01-01T00:00:00.000Z",
    "9999-12-31T23:59:59.000Z",
    "1969-12-31T23:59:59.000Z",
    "2106-01-01T00:00:00.000Z",
]


@pytest.mark.parametrize("timestamp", OUT_OF_RANGE)
def test_timestamp_outside_the_stores_range_is_a_dead_letter_alone(timestamp: str) -> None:
    bad = message(uuid="017cc6d8-0001-0001-8000-000000000002",
                  data={"event": "e", "timestamp": timestamp})  # fmt: skip
    good = message(data={"event": "e", "timestamp": "2021-10-28T11:59:58.000Z"})
    out = parse_messages([good, bad, good])
    assert len(out.events) == 2
    (letter,) = out.dead_letters
    assert "outside the range the event stores hold" in letter.error
    assert letter.event_uuid == "017cc6d8-0001-0001-8000-000000000002"

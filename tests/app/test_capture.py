import orjson
import pytest

from app.capture import CaptureError, api_token, capture_messages, parse_body
from app.pipeline.parse import parse_messages


def messages(body: object) -> list[dict[str, object]]:
    return capture_messages(body, team_id=7, ip="1.2.3.4", site_url="http://x")


def test_single_event_becomes_a_capture_message_the_parse_stage_accepts() -> None:
    body = {"api_key": "k", "event": "clicked", "distinct_id": 42, "properties": {"a": 1}}
    (message,) = messages(body)
    assert message["team_id"] == 7 and message["distinct_id"] == "42" and message["ip"] == "1.2.3.4"
    (event,) = parse_messages([orjson.dumps(message)]).events
    assert event["event"] == "clicked" and event["properties"]["a"] == 1


def test_batch_takes_distinct_id_from_properties_too() -> None:
    batch = [
        {"event": "a", "properties": {"distinct_id": "p"}},
        {"event": "b", "properties": {"$distinct_id": "q"}},
    ]
    body = {"api_key": "k", "batch": batch}
    assert [m["distinct_id"] for m in messages(body)] == ["p", "q"]
    assert api_token(body) == "k"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"event": "e"}, "event has no distinct_id (top level or in properties)"),
        ({"distinct_id": "d"}, "event 0 has no event name"),
        ({"batch": "nope"}, "batch must be an array of events"),
        ({"batch": []}, "no events in the request"),
        (
            {"event": "e", "distinct_id": "d", "properties": [1]},
            "event 0: properties must be a JSON object",
        ),
        ("text", "body must be a JSON object or array"),
    ],
)
def test_bad_requests_are_refused_with_the_reason(body: object, reason: str) -> None:
    with pytest.raises(CaptureError) as error:
        messages(body)
    assert str(error.value) == reason


def test_invalid_json_is_refused() -> None:
    with pytest.raises(CaptureError, match="body is not valid JSON"):
        parse_body(b"{oops")

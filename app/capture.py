"""HTTP capture requests (PostHog's /capture, /e, /batch bodies) to capture messages.

`handle_capture` is the one capture handler: the worker's endpoint (onto the input
topic) and the embedded server (through the chain in process) are thin adapters around
it, so a request is accepted or refused on the same paths with the same reason in
either mode. The message format is `schemas/capture_message.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from app.pipeline.timestamps import format_iso
from app.stores.teams import TeamStore

MAX_BATCH_EVENTS = 10_000  # events in one request; larger batches are refused, not cut
MAX_BODY_BYTES = 20 * 1024 * 1024  # a request body; the servers refuse larger ones (413)
CAPTURE_PATHS = ("/capture", "/capture/", "/e", "/e/", "/batch", "/batch/", "/track", "/track/")


class CaptureError(ValueError):
    """The request cannot be ingested; the message is the HTTP 400 reason."""


class UnknownToken(CaptureError):
    """The request's project API key belongs to no team (HTTP 401)."""


def parse_body(raw_body: bytes) -> Any:
    """The request's JSON; raises CaptureError when it is not JSON."""
    try:
        return orjson.loads(raw_body)
    except orjson.JSONDecodeError as exc:
        raise CaptureError(f"body is not valid JSON: {exc}") from None


async def team_for_request(body: Any, teams: TeamStore) -> int:
    """The team a capture request is for, from its API key; raises CaptureError."""
    token = api_token(body)
    if token is None:
        raise UnknownToken("no api_key or token in the request")
    team_id = await teams.id_for_token(token)
    if team_id is None:
        raise UnknownToken(f"no project has the API key {token[:12]!r}")
    return team_id


def _events_of(body: Any) -> tuple[list[Any], str | None]:
    if isinstance(body, list):
        return body, None
    if not isinstance(body, dict):
        raise CaptureError("body must be a JSON object or array")
    token = body.get("api_key") or body.get("token")
    if "batch" in body:
        batch = body["batch"]
        if not isinstance(batch, list):
            raise CaptureError("batch must be an array of events")
        return batch, token
    return [body], token


def _distinct_id(event: dict[str, Any]) -> str:
    properties = event.get("properties") or {}
    for value in (
        event.get("distinct_id"),
        properties.get("distinct_id"),
        properties.get("$distinct_id"),
    ):
        if value not in (None, ""):
            return str(value)[:200]  # as PostHog's capture cuts it
    raise CaptureError("event has no distinct_id (top level or in properties)")


def capture_messages(
    body: Any, *, team_id: int, ip: str | None, site_url: str
) -> list[dict[str, Any]]:
    """The capture messages of one parsed request body; raises CaptureError with the reason."""
    events, _token = _events_of(body)
    if not events:
        raise CaptureError("no events in the request")
    if len(events) > MAX_BATCH_EVENTS:
        raise CaptureError(f"{len(events)} events in one request; at most {MAX_BATCH_EVENTS}")
    now = format_iso(datetime.now(UTC))
    sent_at = body.get("sent_at") if isinstance(body, dict) else None
    messages = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise CaptureError(f"event {index} is not a JSON object")
        if not isinstance(event.get("event"), str) or not event["event"]:
            raise CaptureError(f"event {index} has no event name")
        if event.get("properties") is not None and not isinstance(event["properties"], dict):
            raise CaptureError(f"event {index}: properties must be a JSON object")
        distinct_id = _distinct_id(event)
        messages.append(
            {
                "distinct_id": distinct_id,
                "ip": ip or "",
                "site_url": site_url,
                "team_id": team_id,
                "now": now,
                "sent_at": sent_at if isinstance(sent_at, str) else "",
                "uuid": str(event.get("uuid") or uuid.uuid4()),
                "data": orjson.dumps(event).decode(),
            }
        )
    return messages


def api_token(body: Any) -> str | None:
    """The project API key of a request, if it carries one."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if isinstance(body, dict):
        token = body.get("api_key") or body.get("token")
        if token is None and isinstance(body.get("properties"), dict):
            token = body["properties"].get("token")
        return token if isinstance(token, str) else None
    return None


@dataclass(frozen=True)
class CaptureAnswer:
    status: int
    body: dict[str, Any]


Deliver = Callable[[list[dict[str, Any]]], Awaitable[dict[str, Any]]]


async def handle_capture(
    raw_body: bytes, *, ip: str | None, host: str, teams: TeamStore, deliver: Deliver
) -> CaptureAnswer:
    """Answer one capture request: 400 or 401 with the reason, or 200 once `deliver` took
    its messages (what `deliver` returns is added to the answer)."""
    try:
        body = parse_body(raw_body)
        team_id = await team_for_request(body, teams)
        messages = capture_messages(body, team_id=team_id, ip=ip, site_url=f"http://{host}")
    except CaptureError as exc:
        status = 401 if isinstance(exc, UnknownToken) else 400
        return CaptureAnswer(status, {"status": 0, "error": str(exc)})
    extra = await deliver(messages)
    return CaptureAnswer(200, {"status": 1, **extra})

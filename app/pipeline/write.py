"""The write stage: the event rows (with each event's person as the persons stage left
it), session recordings, groups and definitions, then the stored events for the exports
stage."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from app.pipeline.context import PipelineContext
from app.pipeline.elements import elements_hash, take_elements
from app.pipeline.groups import apply_groups
from app.pipeline.known_teams import split_by_team
from app.pipeline.output import StageOutput
from app.pipeline.persons import attach_persons
from app.pipeline.positions import carried
from app.pipeline.telemetry import record_stored, store_write
from app.pipeline.timestamps import parse_iso
from plugin_runtime.delivery import SNAPSHOT_EVENT  # a session recording, stored apart

STAGE = "write"


class PersonJson:
    """A person's properties as JSON text, encoded once for all the events sharing them."""

    def __init__(self) -> None:
        self._texts: dict[int, tuple[dict[str, Any], str]] = {}

    def __call__(self, person: dict[str, Any]) -> str:
        properties = person["properties"]
        known = self._texts.get(id(properties))
        if known is None or known[0] is not properties:
            known = self._texts[id(properties)] = (properties, orjson.dumps(properties).decode())
        return known[1]


def stored_row(
    event: dict[str, Any],
    properties: dict[str, Any],
    person_json: str,
    created_at: datetime,
    elements: list[dict[str, Any]],
) -> dict[str, Any]:
    """The event as every event store writes it (`person_properties` as JSON text;
    `elements` with their hash for the stores that keep them apart)."""
    return {
        "elements": elements,
        "elements_hash": elements_hash(elements) if elements else None,
        "uuid": event["uuid"],
        "event": event["event"],
        "properties": properties,
        "timestamp": parse_iso(event["timestamp"]),
        "team_id": event["team_id"],
        "distinct_id": event["distinct_id"],
        "elements_chain": event.get("elements_chain") or "",
        "created_at": created_at,
        "person_id": event["person"]["uuid"],
        "person_properties": person_json,
        "person_created_at": parse_iso(event["person"]["created_at"]),
    }


def stored_event(
    event: dict[str, Any], row: dict[str, Any], elements: list[dict[str, Any]]
) -> dict[str, Any]:
    """The event as `on_event` and `export_events` see it: stored form, with its person."""
    return {
        "uuid": row["uuid"],
        "event": row["event"],
        "distinct_id": row["distinct_id"],
        "team_id": row["team_id"],
        "properties": row["properties"],
        "timestamp": event["timestamp"],
        "ip": event.get("ip"),
        "site_url": event.get("site_url"),
        "now": event.get("now"),
        "sent_at": event.get("sent_at"),
        "elements": elements,
        "person": event["person"],
        **carried(event),
    }


def recording_row(event: dict[str, Any], created_at: datetime) -> dict[str, Any]:
    """A `$snapshot` event as the session-recordings table holds it (spec 3.5)."""
    properties = event["properties"]
    window_id = properties.get("$window_id")
    return {
        "uuid": event["uuid"],
        "team_id": event["team_id"],
        "distinct_id": event["distinct_id"],
        "session_id": str(properties.get("$session_id") or ""),
        "window_id": None if window_id is None else str(window_id),
        "snapshot_data": properties.get("$snapshot_data"),
        "timestamp": parse_iso(event["timestamp"]),
        "created_at": created_at,
    }


def snapshot_event(event: dict[str, Any]) -> dict[str, Any]:
    """A stored `$snapshot` as `on_snapshot` sees it."""
    return {
        **{k: event.get(k) for k in ("uuid", "event", "distinct_id", "team_id", "properties")},
        **{k: event.get(k) for k in ("timestamp", "ip", "site_url", "now", "sent_at")},
        "elements": [],
        "person": event["person"],
        **carried(event),
    }


async def write_events(ctx: PipelineContext, events: list[dict[str, Any]]) -> StageOutput:
    """Store the batch; returns the stored events, and dead letters for unknown teams.

    A store that fails raises: the batch is retried, never half-acknowledged.
    """
    teams, out = await split_by_team(ctx, STAGE, events)
    known, out.events = out.events, []
    # events from before the persons stage came first (a replayed dead letter) get theirs
    await attach_persons(ctx, [e for e in known if "person" not in e])
    person_json = PersonJson()
    created_at = datetime.now(UTC)
    rows = []
    recordings: list[dict[str, Any]] = []
    for event in known:
        if event["event"] == SNAPSHOT_EVENT:
            # a session recording: no event row, no $ip
            recordings.append(recording_row(event, created_at))
            out.events.append(snapshot_event(event))
            continue
        properties = event["properties"]
        if event.get("ip") and not teams[event["team_id"]].anonymize_ips:
            properties.setdefault("$ip", event["ip"])
        await apply_groups(ctx, event)
        elements, event["elements_chain"] = take_elements(properties)
        row = stored_row(event, properties, person_json(event["person"]), created_at, elements)
        rows.append(row)
        out.events.append(stored_event(event, row, elements))
    with store_write("events"):
        await ctx.events.write(rows)
    if recordings:
        with store_write("session_recordings"):
            await ctx.events.write_recordings(recordings)
    await ctx.definitions.record(rows)
    # the team's first stored event (the original's `ingested_event`, which the app reads)
    await ctx.teams.mark_ingested(
        {tid for tid in {r["team_id"] for r in rows} if not teams[tid].ingested_event}
    )
    record_stored(known)
    return out

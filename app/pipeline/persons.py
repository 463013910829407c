"""The persons stage, after the plugins as in the original: every event's distinct id gets
a person, `$identify` and `$create_alias` join distinct ids, and `$set`/`$set_once`
(with the derived campaign and initial values) and `$unset` change the person, all in
event order, so a `$set` a plugin added (GeoIP's, say) reaches the person. Each event
leaves with its person as of that event (`event["person"]`) for the write stage.

One transaction per batch reads the batch's persons (locked), decides in memory
(`PersonLedger`) and writes the outcome. A distinct id another worker mapped in the
meantime fails the write; the batch is then decided again from what is stored.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError

from app.pipeline.context import PipelineContext
from app.pipeline.failures import Contended
from app.pipeline.known_teams import split_by_team
from app.pipeline.output import StageOutput
from app.pipeline.person_ledger import PersonLedger
from app.pipeline.person_properties import with_derived_updates
from app.pipeline.timestamps import parse_iso
from app.stores.persons import Key
from plugin_runtime.delivery import SNAPSHOT_EVENT

STAGE = "persons"
log = logging.getLogger(__name__)

# a batch that loses the race to another worker this many times in a row stalls the stage
# (an infrastructure failure) rather than dead-lettering anything
_DECIDE_ATTEMPTS = 8
# events that never change their person's properties (spec 1.5 step 7.9)
_NO_PROPERTY_UPDATES = frozenset({SNAPSHOT_EVENT, "$groupidentify"})

# ids too generic to merge persons on (the original's deny list); their events still get a person
_GENERIC_IDS = {
    "anonymous", "guest", "distinctid", "distinct_id", "id", "not_authenticated", "email",
    "undefined", "true", "false",
}  # fmt: skip
_GENERIC_IDS_EXACT = {"[object Object]", "NaN", "None", "none", "null", "0"}


def is_generic_id(distinct_id: str) -> bool:
    return (
        not distinct_id.strip()
        or distinct_id.lower() in _GENERIC_IDS
        or distinct_id in _GENERIC_IDS_EXACT
    )


def alias_request(event: dict[str, Any]) -> tuple[str, bool] | None:
    """(previous distinct id, identify) when the event joins two ids, else None."""
    if is_generic_id(event["distinct_id"]):
        return None  # only the event's own id is checked, as in the original
    properties = event["properties"]
    if event["event"] == "$create_alias" and properties.get("alias"):
        return str(properties["alias"]), False
    if event["event"] == "$identify" and properties.get("$anon_distinct_id"):
        return str(properties["$anon_distinct_id"]), True
    return None


async def resolve_persons(ctx: PipelineContext, events: list[dict[str, Any]]) -> StageOutput:
    """Events of known teams, each with its person; events of unknown teams as dead letters."""
    _teams, out = await split_by_team(ctx, STAGE, events)
    await attach_persons(ctx, out.events)
    return out


async def attach_persons(ctx: PipelineContext, events: list[dict[str, Any]]) -> None:
    """Apply `events` to their persons in order and give each its person (`"person"`)."""
    if not events:
        return
    for event in events:
        if event["event"] != SNAPSHOT_EVENT:
            event["properties"] = with_derived_updates(event["properties"])
    requests = [alias_request(e) for e in events]
    for attempt in range(1, _DECIDE_ATTEMPTS + 1):
        try:
            views = await _decide(ctx, events, requests)
        except (IntegrityError, DBAPIError) as exc:
            if not _lost_race(exc):
                raise
            log.info("persons changed by another worker meanwhile (attempt %d)", attempt)
            await asyncio.sleep(random.uniform(0.0, 0.05 * attempt))
            continue
        for event, view in zip(events, views, strict=True):
            event["person"] = view
        return
    raise Contended(f"persons of a batch kept changing under it ({_DECIDE_ATTEMPTS} tries)")


async def _decide(
    ctx: PipelineContext,
    events: list[dict[str, Any]],
    requests: list[tuple[str, bool] | None],
) -> list[dict[str, Any]]:
    keys: set[Key] = set()
    for event, request in zip(events, requests, strict=True):
        keys.add((event["team_id"], event["distinct_id"]))
        if request is not None:
            keys.add((event["team_id"], request[0]))
    async with ctx.persons.transaction() as tx:
        ledger = PersonLedger(*await tx.read(keys))
        views = []
        for event, request in zip(events, requests, strict=True):
            team_id, at = event["team_id"], parse_iso(event["timestamp"])
            if request is not None:
                previous, identify = request
                ledger.alias(team_id, previous, event["distinct_id"], identify=identify, at=at)
            person = ledger.ensure((team_id, event["distinct_id"]), at)
            if event["event"] not in _NO_PROPERTY_UPDATES:
                ledger.update_properties(person, event["properties"])
            views.append(ledger.view(person))
        changes = ledger.changes()
        if changes:
            await tx.write(changes)
    return views


def _lost_race(exc: BaseException) -> bool:
    """A distinct id another worker mapped first, a deadlock or a serialisation failure:
    decide again. Other integrity errors are about the data and go on up."""
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(sqlstate, str):
        return sqlstate == "23505" or sqlstate.startswith("40")
    return isinstance(exc, IntegrityError) and "UNIQUE constraint failed" in str(orig)

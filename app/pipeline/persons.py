"""The persons stage: every event's distinct id gets a person; $identify and $create_alias
join distinct ids into one person before plugins see the event."""

from __future__ import annotations

import logging
from typing import Any

from app.pipeline.context import PipelineContext
from app.pipeline.known_teams import split_by_team
from app.pipeline.output import StageOutput

STAGE = "persons"
log = logging.getLogger(__name__)

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


def _alias_request(event: dict[str, Any]) -> tuple[str, bool] | None:
    """(previous distinct id, identify) when the event joins two ids, else None."""
    properties = event["properties"]
    if event["event"] == "$create_alias" and properties.get("alias"):
        return str(properties["alias"]), False
    if event["event"] == "$identify" and properties.get("$anon_distinct_id"):
        return str(properties["$anon_distinct_id"]), True
    return None


async def resolve_persons(ctx: PipelineContext, events: list[dict[str, Any]]) -> StageOutput:
    """Events of known teams, each with a person; events of unknown teams as dead letters."""
    _teams, out = await split_by_team(ctx, STAGE, events)
    await ctx.persons.ensure({(e["team_id"], e["distinct_id"]) for e in out.events})
    for event in out.events:
        request = _alias_request(event)
        if request is None or is_generic_id(event["distinct_id"]):
            continue
        previous, identify = request
        try:
            await ctx.persons.alias(
                event["team_id"], previous, event["distinct_id"], identify=identify
            )
        except Exception:
            # as in the original, a failed merge never stops the event
            log.exception("alias of %r to %r failed", previous, event["distinct_id"])
    return out

"""The rule both the persons and the write stage apply first: events of a team that does
not exist become dead letters."""

from __future__ import annotations

from typing import Any

from app.pipeline.context import PipelineContext
from app.pipeline.dead_letters import dead_letter
from app.pipeline.output import StageOutput
from app.stores.teams import Team


async def split_by_team(
    ctx: PipelineContext, stage: str, events: list[dict[str, Any]]
) -> tuple[dict[int, Team], StageOutput]:
    """The known teams, and an output holding the events of known teams (in order) and a
    dead letter for each event of an unknown one."""
    teams = await ctx.teams.get_many({e["team_id"] for e in events})
    out = StageOutput()
    for event in events:
        if teams.get(event["team_id"]) is None:
            error = f"No team found with ID {event['team_id']}. Can't ingest event."
            out.dead_letters.append(dead_letter(stage, error, event=event))
        else:
            out.events.append(event)
    return {tid: team for tid, team in teams.items() if team is not None}, out

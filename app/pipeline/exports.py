"""The exports stage: stored events to each team's `on_event` and export buffers.

A sink flushes before its offset moves: the team's export buffers are flushed at the end
of every batch, so when the stage's input is acknowledged each of its events has been
handed to `export_events` (or to its retry path). A worker that dies re-delivers only
what it had not acknowledged yet.
"""

from __future__ import annotations

from typing import Any

from app.pipeline.context import PipelineContext
from app.pipeline.output import StageOutput
from plugin_runtime.delivery import SNAPSHOT_EVENT


async def export_events(ctx: PipelineContext, events: list[dict[str, Any]]) -> StageOutput:
    """Hand stored events to the plugins; plugin errors are recorded by the runtime."""
    by_team: dict[int, list[dict[str, Any]]] = {}
    for event in events:
        by_team.setdefault(event["team_id"], []).append(event)
    for team_id, team_events in by_team.items():
        await ctx.plugins.on_events(team_id, team_events)  # on_snapshot for recordings
        exported = [e for e in team_events if e["event"] != SNAPSHOT_EVENT]
        if exported:
            await ctx.plugins.export_events(team_id, exported)
            await ctx.plugins.flush_exports(team_id)
    return StageOutput(events=events)

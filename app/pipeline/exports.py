"""The exports stage: stored events to each team's `on_event` and export buffers.

A sink flushes before its offset moves: the team's export buffers are flushed at the end
of every batch, so when the stage's input is acknowledged each of its events has been
handed to `export_events` (or to its retry path). Events the stage delivered before
(an earlier stage died and sent its last batches again) are recognised by their input
position and not delivered again (`app.pipeline.positions`), so a worker that dies costs
at most the batch it was delivering.
"""

from __future__ import annotations

from typing import Any

from app.pipeline.context import PipelineContext
from app.pipeline.output import StageOutput
from app.pipeline.positions import detach, position_of
from plugin_runtime.delivery import SNAPSHOT_EVENT


async def export_events(ctx: PipelineContext, events: list[dict[str, Any]]) -> StageOutput:
    """Hand stored events to the plugins; plugin errors are recorded by the runtime."""
    fresh, delivered = await _not_delivered(ctx, events)
    detach(fresh)  # plugins never see positions
    by_team: dict[int, list[dict[str, Any]]] = {}
    for event in fresh:
        by_team.setdefault(event["team_id"], []).append(event)
    for team_id, team_events in by_team.items():
        await ctx.plugins.on_events(team_id, team_events)  # on_snapshot for recordings
        exported = [e for e in team_events if e["event"] != SNAPSHOT_EVENT]
        if exported:
            await ctx.plugins.export_events(team_id, exported)
            await ctx.plugins.flush_exports(team_id)
    await ctx.delivered.advance(delivered)
    return StageOutput(events=events)


async def _not_delivered(
    ctx: PipelineContext, events: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """The events not delivered before, and the highest offset of each input partition
    among them (each event's position read once)."""
    positions = [position_of(e) for e in events]
    partitions = {p.partition for p in positions if p is not None}
    marks = await ctx.delivered.get(partitions) if partitions else {}
    fresh: list[dict[str, Any]] = []
    delivered: dict[int, int] = {}
    for event, position in zip(events, positions, strict=True):
        if position is None:
            fresh.append(event)
            continue
        mark = marks.get(position.partition)
        if mark is not None and mark.covers(position):
            continue
        fresh.append(event)
        if position.offset > delivered.get(position.partition, -1):
            delivered[position.partition] = position.offset
    return fresh, delivered

"""The plugins stage: each team's enabled plugin configs run `process_event` in order."""

from __future__ import annotations

import logging
from typing import Any

from app.pipeline.context import PipelineContext
from app.pipeline.dead_letters import dead_letter
from app.pipeline.output import StageOutput
from app.pipeline.positions import detach, reattach
from plugin_runtime.delivery import SNAPSHOT_EVENT

STAGE = "plugins"
log = logging.getLogger(__name__)

# session recordings never go through process_event (as in the original)
_SKIPPED = frozenset({SNAPSHOT_EVENT})


async def run_plugins(ctx: PipelineContext, events: list[dict[str, Any]]) -> StageOutput:
    """The events the teams' plugins kept (changed as the plugins changed them).

    A plugin's own error is recorded against its config by the runtime and the event goes
    on; only a failure of the runtime itself turns the team's events into dead letters.
    """
    out = StageOutput()
    by_team: dict[int, list[dict[str, Any]]] = {}
    for event in events:
        if event["event"] in _SKIPPED:
            out.events.append(event)
        else:
            by_team.setdefault(event["team_id"], []).append(event)
    for team_id, team_events in by_team.items():
        positions = detach(team_events)  # plugins never see them
        try:
            kept = await ctx.plugins.process_events(team_id, team_events)
        except Exception as exc:
            log.exception("plugin chain of team %s failed", team_id)
            reason = f"plugin chain failed: {type(exc).__name__}: {exc}"
            reattach(team_events, positions)
            out.dead_letters.extend(dead_letter(STAGE, reason, event=e) for e in team_events)
            continue
        reattach(kept, positions)
        out.events.extend(kept)
    return out

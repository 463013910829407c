"""The plugins stage: each team's enabled plugin configs run `process_event` in order."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from app.pipeline.context import PipelineContext
from app.pipeline.dead_letters import dead_letter
from app.pipeline.output import StageOutput
from app.pipeline.positions import detach, reattach
from app.pipeline.slow_teams import SlowTeams
from plugin_runtime.delivery import SNAPSHOT_EVENT

STAGE = "plugins"
# how many times the slow threshold a probe may take before the stage stops waiting
PROBE_PATIENCE = 10
log = logging.getLogger(__name__)

# session recordings never go through process_event (as in the original)
_SKIPPED = frozenset({SNAPSHOT_EVENT})


async def run_plugins(ctx: PipelineContext, events: list[dict[str, Any]]) -> StageOutput:
    """The events the teams' plugins kept (changed as the plugins changed them), teams side
    by side; a team too slow for this stage (`ctx.slow_teams`) is handed to the overflow.

    A plugin's own error is recorded against its config by the runtime and the event goes
    on; only a failure of the runtime itself turns the team's events into dead letters.
    """
    return await _run(ctx, events, ctx.slow_teams)


async def run_overflow_plugins(ctx: PipelineContext, events: list[dict[str, Any]]) -> StageOutput:
    """The overflow stage: the same, for slow teams' events, at their plugins' pace."""
    return await _run(ctx, events, None)


async def _run(
    ctx: PipelineContext, events: list[dict[str, Any]], slow: SlowTeams | None
) -> StageOutput:
    out = StageOutput()
    by_team: dict[int, list[dict[str, Any]]] = {}
    for event in events:
        if event["event"] in _SKIPPED:
            out.events.append(event)
        else:
            by_team.setdefault(event["team_id"], []).append(event)
    done = await asyncio.gather(*(_team(ctx, t, e, slow) for t, e in by_team.items()))
    for team_out in done:
        out.events.extend(team_out.events)
        out.overflow.extend(team_out.overflow)
        out.dead_letters.extend(team_out.dead_letters)
    return out


async def _team(
    ctx: PipelineContext, team_id: int, events: list[dict[str, Any]], slow: SlowTeams | None
) -> StageOutput:
    if slow is not None and slow.is_slow(team_id):
        return StageOutput(overflow=_overflowing(events))
    positions = detach(events)  # plugins never see them
    try:
        kept, rest = await _process(ctx, team_id, events, slow)
    except Exception as exc:
        log.exception("plugin chain of team %s failed", team_id, extra={"team_id": team_id})
        reason = f"plugin chain failed: {type(exc).__name__}: {exc}"
        reattach(events, positions)
        return StageOutput(dead_letters=[dead_letter(STAGE, reason, event=e) for e in events])
    reattach(kept, positions)
    return StageOutput(events=kept, overflow=rest)


async def _process(
    ctx: PipelineContext, team_id: int, events: list[dict[str, Any]], slow: SlowTeams | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(what the plugins kept, what goes to the overflow). Without `slow`: all at once.
    With it, a team not known to be fast goes one event at a time until it proves fast
    (the rest then in one go) or slow (the rest leave for the overflow); a probe that
    takes ten times the threshold is not waited for: its event leaves too, and runs
    again on the overflow (its plugins see it twice, it is stored once)."""
    if slow is None:
        return await ctx.plugins.process_events(team_id, events), []
    kept: list[dict[str, Any]] = []
    done = 0
    while done < len(events):
        probing = slow.needs_probe(team_id)
        chunk = events[done : done + 1] if probing else events[done:]
        started = time.monotonic()
        if not probing:
            kept += await ctx.plugins.process_events(team_id, chunk)
        else:
            call = asyncio.ensure_future(ctx.plugins.process_events(team_id, chunk))
            try:
                # a probe that does not answer soon is a slow team: the stage stops waiting
                patience = slow.seconds_per_event * PROBE_PATIENCE
                kept += await asyncio.wait_for(asyncio.shield(call), patience)
            except TimeoutError:
                call.add_done_callback(_discard)
                slow.mark(team_id)
                _moved(team_id, slow)
                # the probed event too: the overflow runs it again, and keeps that result
                return kept, _overflowing(events[done:])
        done += len(chunk)
        if slow.measured(team_id, time.monotonic() - started, len(chunk)):
            _moved(team_id, slow)
            return kept, _overflowing(events[done:])
    return kept, []


def _discard(call: asyncio.Future[Any]) -> None:
    # the answer of a probe the stage stopped waiting for (its event went to the overflow)
    if not call.cancelled() and call.exception() is not None:
        log.warning("a probed event's plugins failed after the probe: %s", call.exception())


def _moved(team_id: int, slow: SlowTeams) -> None:
    log.warning(
        "team %s's plugins take over %g s per event: its events go to the overflow "
        "plugins stage for %g s",
        team_id,
        slow.seconds_per_event,
        slow.hold_seconds,
    )


def _overflowing(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # the exports' repeat check assumes a partition's events arrive in offset order; these
    # arrive later than their neighbours, so they go without their input position (they
    # are exported even if a restart makes them repeat)
    detach(events)
    return events

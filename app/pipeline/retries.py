"""Running a stage over a batch so that a server that is down stalls it and a bad event
costs only itself.

* A failure `failures.is_infrastructure` blames on a server: the batch is retried in place
  (the consumer does not move on) with backoff doubling from 0.5 s to 30 s, for as long as
  it takes; no event is dead-lettered for it, and `/_health` says which stage waits and why.
* Any other failure is taken to be about the data: the batch is split in halves and each
  half run again, down to single events; an event that still fails alone (after a second
  try) becomes one dead letter with the reason, and its neighbours go on. Re-running a
  half is safe: every write is idempotent by event uuid.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from app.pipeline import stalls
from app.pipeline.dead_letters import dead_letter
from app.pipeline.failures import is_infrastructure
from app.pipeline.output import StageOutput

log = logging.getLogger(__name__)

STALL_MIN_BACKOFF = 0.5  # seconds before the first retry of a stalled stage
STALL_MAX_BACKOFF = 30.0  # seconds; retries go on at this pace while the server is down
SINGLE_EVENT_ATTEMPTS = 2  # an event failing alone is tried this often before it is dead
SINGLE_EVENT_BACKOFF = 0.2  # seconds between those tries

Stage = Callable[[list[dict[str, Any]]], Awaitable[StageOutput]]


async def run_with_retries(
    stage_name: str,
    stage: Stage,
    events: list[dict[str, Any]],
    *,
    min_backoff: float = STALL_MIN_BACKOFF,
    max_backoff: float = STALL_MAX_BACKOFF,
) -> StageOutput:
    """The stage's output for `events` (in order), with a dead letter for each event that
    fails on its own data. Returns only once every event is processed or dead-lettered."""
    out = StageOutput()
    await _run(stage_name, stage, events, out, min_backoff, max_backoff)
    return out


async def _run(
    name: str,
    stage: Stage,
    events: list[dict[str, Any]],
    out: StageOutput,
    min_backoff: float,
    max_backoff: float,
) -> None:
    backoff = min_backoff
    alone_failures = 0
    while True:
        try:
            result = await stage(events)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if is_infrastructure(exc):
                stalls.stalled(name, reason)
                log.warning(
                    "%s waits for a server (retry in %g s): %s",
                    name, backoff, reason, extra={"stage": name},
                )  # fmt: skip
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, max_backoff)
                continue
            stalls.resumed(name)
            if len(events) > 1:
                middle = len(events) // 2
                log.warning(
                    "%s failed on a batch of %d; splitting it: %s", name, len(events), reason
                )
                await _run(name, stage, events[:middle], out, min_backoff, max_backoff)
                await _run(name, stage, events[middle:], out, min_backoff, max_backoff)
                return
            alone_failures += 1
            if alone_failures < SINGLE_EVENT_ATTEMPTS:
                await asyncio.sleep(SINGLE_EVENT_BACKOFF)
                continue
            log.error(
                "%s failed on one event; it goes to the dead-letter topic: %s",
                name, reason, extra=_context(name, events[0]),
            )  # fmt: skip
            out.dead_letters.extend(
                dead_letter(name, f"{name} failed: {reason}", event=e) for e in events
            )
            return
        stalls.resumed(name)
        out.events.extend(result.events)
        out.dead_letters.extend(result.dead_letters)
        out.overflow.extend(result.overflow)
        return


def _context(stage: str, event: dict[str, Any]) -> dict[str, Any]:
    """What a log line about one event says of it (`LOG_FORMAT=json` shows the fields)."""
    return {"stage": stage, "team_id": event.get("team_id"), "event_uuid": event.get("uuid")}

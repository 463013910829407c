"""Retrying a stage whose store or runtime failed, and dead-lettering the batch if it keeps failing.

A batch is retried in place (the consumer does not move on), so ordering and
at-least-once hold; after the last attempt its events become dead letters with the error,
so a poisoned batch can neither block its partition forever nor vanish.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from app.pipeline.dead_letters import dead_letter
from app.pipeline.output import StageOutput

log = logging.getLogger(__name__)

STAGE_MAX_ATTEMPTS = 5
STAGE_MIN_BACKOFF = 0.5  # seconds; doubled after each failed attempt
STAGE_MAX_BACKOFF = 8.0  # seconds

Stage = Callable[[list[dict[str, Any]]], Awaitable[StageOutput]]


async def run_with_retries(
    stage_name: str,
    stage: Stage,
    events: list[dict[str, Any]],
    *,
    attempts: int = STAGE_MAX_ATTEMPTS,
    min_backoff: float = STAGE_MIN_BACKOFF,
) -> StageOutput:
    """The stage's output, or every event as a dead letter after `attempts` failures."""
    backoff = min_backoff
    for attempt in range(1, attempts + 1):
        try:
            return await stage(events)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if attempt == attempts:
                reason = f"{stage_name} failed {attempts} times: {type(exc).__name__}: {exc}"
                log.error("%s; %d events go to the dead-letter topic", reason, len(events))
                return StageOutput(
                    dead_letters=[dead_letter(stage_name, reason, event=e) for e in events]
                )
            log.warning("%s failed (attempt %d of %d): %s", stage_name, attempt, attempts, exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, STAGE_MAX_BACKOFF)
    raise AssertionError("unreachable")

"""The schedule's timer: every worker ticks; the schedule lock's holder dispatches
`run_every_minute/hour/day` (`app/schedule.py`)."""

from __future__ import annotations

from app.schedule import tick_seconds
from topologies.resources import context_resources
from topologies.topics import app, settings


@app.timer(tick_seconds(settings.SCHEDULE_TEST_PERIOD_SECONDS))
async def dispatch_schedule() -> None:
    resources = context_resources()
    if resources is not None:
        await resources.scheduler.tick()

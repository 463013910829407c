"""The schedule's timer: every worker ticks; the schedule lock's holder dispatches
`run_every_minute/hour/day` (`app/schedule.py`).

It ticks from the worker's start, not from its first partition assignment (when Faust
starts `app.timer`s): a rebalance after a crash waits out the dead member's session, and
a worker still joining the group must take the schedule over within the lock's TTL all the
same."""

from __future__ import annotations

from mode import Service

from app.schedule import tick_seconds
from topologies.resources import resources_ready
from topologies.topics import app, settings


@app.boot_service
class ScheduleTimer(Service):
    @Service.task
    async def _tick(self) -> None:
        resources = await resources_ready()
        tick = tick_seconds(settings.SCHEDULE_TEST_PERIOD_SECONDS)
        async for _ in self.itertimer(tick, name="dispatch_schedule"):
            await resources.scheduler.tick()

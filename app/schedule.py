"""`run_every_minute`, `run_every_hour`, `run_every_day`: once per period across the cluster.

Every worker ticks (`topologies/timers.py`; the embedded mode's own loop); only the
holder of the schedule lock dispatches. On each tick the holder looks at the periods of
each loaded config's tasks that began within the last `SCHEDULE_LOCK_TTL` seconds, and
starts the oldest one not started yet, unless a run of that task is still going. So:

- one run per period, whichever worker dispatches (the period key is set as it starts);
- a worker that takes the lock over from a dead one runs the periods that began while
  nobody dispatched (the lock expires within its TTL, and the window is as long);
- a run that overruns its period is never joined by a second; the period it overran is
  run after it, if that is still within the window, else skipped (the original skipped);
- a run's key lasts as long as the lock, renewed by its worker on every tick, so the run
  of a worker that died blocks its task no longer than the dead worker's lock does.

Periods are the original's cron times in UTC (`* * * * *`, `0 * * * *`, `0 0 * * *`).
`SCHEDULE_TEST_PERIOD_SECONDS` replaces them by periods of N, 2N and 4N seconds, so tests
see many periods without waiting for minutes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Protocol

from croniter import croniter
from redis.exceptions import RedisError

from app.stores.schedule_book import ScheduleBook

log = logging.getLogger(__name__)

CRON = {"runEveryMinute": "* * * * *", "runEveryHour": "0 * * * *", "runEveryDay": "0 0 * * *"}
TEST_PERIOD_FACTOR = {"runEveryMinute": 1, "runEveryHour": 2, "runEveryDay": 4}
RUN_MARGIN_SECONDS = 15.0  # beyond TASK_TIMEOUT, what a run may take to record its outcome


class ScheduledTasks(Protocol):
    """What the scheduler needs of the plugin runtime."""

    def scheduled_tasks(self) -> list[tuple[int, str]]: ...

    async def run_scheduled(
        self, plugin_config_id: int, task: str, period: datetime | None = None
    ) -> bool: ...


def period_starts(
    task: str, since: datetime, until: datetime, *, test_period: float = 0
) -> list[datetime]:
    """The starts of `task`'s periods in (since, until], oldest first, in UTC."""
    if test_period > 0:
        length = test_period * TEST_PERIOD_FACTOR[task]
        first = math.floor(since.timestamp() / length) + 1
        last = math.floor(until.timestamp() / length)
        return [datetime.fromtimestamp(n * length, UTC) for n in range(first, last + 1)]
    starts: list[datetime] = []
    times = croniter(CRON[task], since.astimezone(UTC))
    while (start := times.get_next(datetime)) <= until:
        starts.append(start.astimezone(UTC))
    return starts


def _run_key(config_id: int, task: str) -> str:
    """What the book calls a task's runs: one going at a time per config and task."""
    return f"{config_id}:{task}"


def tick_seconds(test_period: float) -> float:
    """How often workers tick: each second, or often enough for a test's short periods."""
    return min(1.0, test_period / 4) if test_period > 0 else 1.0


class Scheduler:
    def __init__(
        self,
        runtime: ScheduledTasks,
        book: ScheduleBook,
        *,
        lock_ttl: float,
        task_timeout: float,
        test_period: float = 0,
    ) -> None:
        self._runtime, self._book = runtime, book
        self._lock_ttl, self._test_period = lock_ttl, test_period
        self._longest_run = task_timeout + RUN_MARGIN_SECONDS
        # the catch-up window: a takeover happens within the lock's TTL of the last renewal
        self._window = timedelta(seconds=lock_ttl + 2 * tick_seconds(test_period))
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.holding = False
        self._running: dict[tuple[int, str], asyncio.Task[None]] = {}
        self._settled: set[tuple[int, str, datetime]] = set()  # started or seen started

    async def tick(self, now: datetime | None = None) -> int:
        """Dispatch what is due if this worker holds the lock; returns runs started."""
        now = now or datetime.now(UTC)
        try:
            await self._keep_runs()
            held = await self._book.hold(self.holder, self._lock_ttl)
            if held != self.holding:
                # who dispatches is what an operator looks for when a period did not run
                log.info("schedule: %s dispatches", "this worker" if held else "another worker")
            self.holding = held
            if not held:
                return 0
            return await self._dispatch(now)
        except (RedisError, OSError) as exc:
            # Redis is away: nobody can know what ran, so nothing runs until it is back
            log.warning("schedule: bookkeeping unavailable, nothing dispatched: %s", exc)
            self.holding = False
            return 0

    async def _dispatch(self, now: datetime) -> int:
        started = 0
        since = now - self._window
        self._settled = {s for s in self._settled if s[2] > since}
        for config_id, task in self._runtime.scheduled_tasks():
            going = self._running.get((config_id, task))
            if going is not None and not going.done():
                continue
            starts = period_starts(task, since, now, test_period=self._test_period)
            for start in starts:
                if (config_id, task, start) in self._settled:
                    continue
                period = f"{config_id}:{task}:{start.isoformat()}"
                begun = await self._book.begin(
                    _run_key(config_id, task),
                    period,
                    self.holder,
                    self._lock_ttl,
                    self._window.total_seconds() + self._longest_run,
                )
                if begun == "running":
                    log.debug("schedule: %s still going, %s waits", task, start)
                    break  # another worker's run of this task is still going
                self._settled.add((config_id, task, start))
                if begun == "started":
                    log.debug("schedule: %s of plugin config %s for %s", task, config_id, start)
                    self._running[(config_id, task)] = asyncio.create_task(
                        self._run(config_id, task, start)
                    )
                    started += 1
                    break
        return started

    async def _run(self, config_id: int, task: str, period: datetime) -> None:
        try:
            await self._runtime.run_scheduled(config_id, task, period)
        except Exception:
            log.exception("schedule: %s of plugin config %s could not run", task, config_id)
        finally:
            try:
                await self._book.end(_run_key(config_id, task), self.holder)
            except Exception as exc:
                # the run key expires on its own
                log.warning("schedule: could not mark %s of %s ended: %s", task, config_id, exc)

    def _going(self) -> dict[str, asyncio.Task[None]]:
        return {_run_key(*key): run for key, run in self._running.items() if not run.done()}

    async def _keep_runs(self) -> None:
        if going := self._going():
            await self._book.keep(list(going), self.holder, self._lock_ttl)

    async def close(self) -> None:
        """Give up the lock, so another worker dispatches at once, and let the runs going
        finish (each is bounded by the sandbox), keeping their keys meanwhile."""
        try:
            await self._book.release(self.holder)
        except Exception as exc:
            log.warning("schedule: could not release the lock: %s", exc)
        deadline = asyncio.get_running_loop().time() + self._longest_run
        tick = tick_seconds(self._test_period)
        while (going := self._going()) and asyncio.get_running_loop().time() < deadline:
            try:
                await self._keep_runs()
            except Exception as exc:
                log.warning("schedule: could not keep the runs going: %s", exc)
            await asyncio.wait(going.values(), timeout=tick)
        await self._book.close()

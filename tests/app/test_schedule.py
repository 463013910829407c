"""The schedule: the original's cron periods, one dispatcher at a time, each period run
once across schedulers sharing the real Redis, a dead dispatcher's periods taken over,
and no second run of a task beside one that overran."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from app.schedule import Scheduler, period_starts
from app.stores.schedule_book import MemoryScheduleBook, RedisScheduleBook

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:56379")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_periods_are_the_originals_cron_times_in_utc():
    since, until = at("2026-03-01 23:58:30"), at("2026-03-02 01:00:00")
    minutes = period_starts("runEveryMinute", since, until)
    assert minutes[:3] == [at("2026-03-01 23:59"), at("2026-03-02 00:00"), at("2026-03-02 00:01")]
    assert len(minutes) == 62  # 23:59 ... 01:00, the end included
    assert period_starts("runEveryHour", since, until) == [at("2026-03-02"), at("2026-03-02 01:00")]
    assert period_starts("runEveryDay", since, until) == [at("2026-03-02")]
    assert period_starts("runEveryDay", at("2026-03-02"), at("2026-03-02 23:59")) == []


def test_a_test_period_makes_periods_of_n_2n_and_4n_seconds():
    since, until = at("2026-03-01 00:00:00"), at("2026-03-01 00:00:08")
    assert len(period_starts("runEveryMinute", since, until, test_period=1)) == 8
    assert period_starts("runEveryHour", since, until, test_period=1)[0] == at(
        "2026-03-01 00:00:02"
    )
    assert len(period_starts("runEveryDay", since, until, test_period=1)) == 2


class Tasks:
    """The runtime side: what ran, for which period, by which scheduler."""

    def __init__(self, runs: list[tuple[int, str, datetime, str]], seconds: float = 0) -> None:
        self.runs, self.seconds, self.name = runs, seconds, ""
        self.going: Counter[tuple[int, str]] = Counter()
        self.most_at_once = 0  # runs of one task going at the same time
        self.spans: list[tuple[int, str, float, float]] = []  # monotonic start and end

    def scheduled_tasks(self) -> list[tuple[int, str]]:
        return [(7, "runEveryMinute"), (7, "runEveryHour"), (8, "runEveryMinute")]

    async def run_scheduled(self, config: int, task: str, period: datetime | None = None) -> bool:
        assert period is not None
        self.going[config, task] += 1
        self.most_at_once = max(self.most_at_once, self.going[config, task])
        self.runs.append((config, task, period, self.name))
        began = time.monotonic()
        try:
            await asyncio.sleep(self.seconds)
        finally:
            self.going[config, task] -= 1
            self.spans.append((config, task, began, time.monotonic()))
        return True


async def _redis_book(namespace: str) -> RedisScheduleBook:
    client = aioredis.from_url(REDIS_URL)
    return RedisScheduleBook(client, namespace=namespace)


@pytest.mark.integration
async def test_three_schedulers_run_each_period_once_and_one_takes_over_from_a_dead_one():
    namespace, runs = f"t{uuid.uuid4().hex[:8]}:", []
    schedulers = []
    for n in range(3):
        tasks = Tasks(runs)
        tasks.name = f"s{n}"
        schedulers.append(
            Scheduler(
                tasks, await _redis_book(namespace), lock_ttl=1, task_timeout=1, test_period=0.2
            )
        )
    started = datetime.now(UTC)
    dead: Scheduler | None = None
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        for s in schedulers:
            if s is not dead:
                await s.tick()
        if dead is None and time.monotonic() > deadline - 2.5:
            dead = next(s for s in schedulers if s.holding)  # dies without a word
        await asyncio.sleep(0.05)
    stopped = datetime.now(UTC)
    for s in schedulers:
        if s is not dead:
            await s.close()
    assert dead is not None
    counts = Counter((c, t, p) for c, t, p, _ in runs)
    assert max(counts.values()) == 1  # never twice
    # every period that began after the first dispatch and a while before the end ran
    first = min(p for _, _, p, _ in runs)
    for config, task in [(7, "runEveryMinute"), (7, "runEveryHour"), (8, "runEveryMinute")]:
        expected = period_starts(task, first, stopped, test_period=0.2)
        ran = sorted(p for c, t, p, _ in runs if (c, t) == (config, task))
        settled = [p for p in expected if (stopped - p).total_seconds() > 0.5]
        assert set(settled) <= set(ran), (config, task, started)
    holders = {name for _, _, _, name in runs}
    assert len(holders) >= 2  # the dispatcher changed when it died


async def test_a_run_that_overruns_is_not_joined_and_its_period_runs_after_it():
    runs: list[tuple[int, str, datetime, str]] = []
    tasks = Tasks(runs, seconds=0.5)
    scheduler = Scheduler(tasks, MemoryScheduleBook(), lock_ttl=2, task_timeout=1, test_period=0.2)
    deadline = time.monotonic() + 1.6
    while time.monotonic() < deadline:
        await scheduler.tick()
        await asyncio.sleep(0.05)
    await scheduler.close()
    minute = sorted(p for c, t, p, _ in runs if (c, t) == (7, "runEveryMinute"))
    # a 0.5 s run every 0.2 s period: about three runs, one after another, none beside
    assert 2 <= len(minute) <= 4
    assert tasks.most_at_once == 1
    assert minute == sorted(set(minute))


Pair = tuple[list[tuple[int, str, datetime, str]], Tasks, Tasks, Scheduler, Scheduler]


async def _first_runs_going(seconds: float, names: tuple[str, str], **options: float) -> Pair:
    """Two schedulers sharing a fresh namespace of the real Redis, the first one's runs
    taking `seconds`, ticked until the first (which takes the lock) has its runs going."""
    runs: list[tuple[int, str, datetime, str]] = []
    first, second = Tasks(runs, seconds=seconds), Tasks(runs)
    first.name, second.name = names
    namespace = f"t{uuid.uuid4().hex[:8]}:"
    one = Scheduler(first, await _redis_book(namespace), **options)
    two = Scheduler(second, await _redis_book(namespace), **options)
    while not first.going:
        await one.tick()
        await two.tick()
        await asyncio.sleep(0.05)
    return runs, first, second, one, two


@pytest.mark.integration
async def test_a_dead_dispatchers_unfinished_run_holds_its_task_only_as_long_as_its_lock() -> None:
    # the run key outlived the lock by far when it lasted TASK_TIMEOUT + 15 s unrenewed;
    # the first dispatcher starts its runs, then dies amid them
    runs, _, _, dead, alive = await _first_runs_going(
        60, ("dead", "alive"), lock_ttl=1, task_timeout=10, test_period=0.2
    )
    died = datetime.now(UTC)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        await alive.tick()
        await asyncio.sleep(0.05)
    stopped = datetime.now(UTC)
    await alive.close()
    for run in dead._running.values():
        run.cancel()
    for config, task in [(7, "runEveryMinute"), (8, "runEveryMinute")]:
        ran = {p for c, t, p, name in runs if (c, t) == (config, task) and name == "alive"}
        # the lock and the dead run's key lapse within 1 s; a tick later the task runs
        after = period_starts(task, died, stopped, test_period=0.2)
        due = [p for p in after if 1.5 < (p - died).total_seconds() < 2.7]
        assert due and set(due) <= ran, (config, task, sorted(ran), due)


@pytest.mark.integration
async def test_a_closing_worker_hands_the_lock_on_at_once_and_its_runs_are_not_joined() -> None:
    # the runs outlast the lock: only their renewed keys keep a second run off
    _, slow, other, closing, taking = await _first_runs_going(
        2, ("closing", "next"), lock_ttl=1.5, task_timeout=10, test_period=0.2
    )
    closed = asyncio.create_task(closing.close())  # waits for its 2 s runs
    began = time.monotonic()
    took_over = None
    while not closed.done():
        await taking.tick()
        if taking.holding and took_over is None:
            took_over = time.monotonic() - began
        await asyncio.sleep(0.05)
    waited = time.monotonic() - began
    for _ in range(10):  # the periods that waited for the closing worker's runs
        await taking.tick()
        await asyncio.sleep(0.05)
    await taking.close()
    assert waited >= 1.5  # close waited for the runs going
    assert took_over is not None and took_over < 0.5  # not when the runs ended
    closing_ends = {(c, t): end for c, t, _, end in slow.spans}
    assert len(closing_ends) == 3
    assert {(c, t) for c, t, *_ in other.spans} == set(closing_ends)
    for config, task, start, _ in other.spans:
        assert start >= closing_ends[config, task], (config, task)


async def test_with_redis_away_nothing_is_dispatched_and_the_tick_does_not_raise():
    client = aioredis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.2)
    scheduler = Scheduler(
        Tasks([]), RedisScheduleBook(client), lock_ttl=1, task_timeout=1, test_period=0.2
    )
    assert await scheduler.tick() == 0
    assert not scheduler.holding

"""The schedule on real workers sharing the broker, Postgres and Redis: each period of
`run_every_minute/hour/day` runs once across them, and when the dispatching worker is
killed another takes over within `SCHEDULE_LOCK_TTL`, running the periods that began
meanwhile, even one still joining the consumer group. Periods are shortened by
`SCHEDULE_TEST_PERIOD_SECONDS`."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from app.local_cluster import LocalCluster
from app.schedule import period_starts
from schemas.tables import plugin_logs
from tests.topologies.helpers import write_plugin

pytestmark = pytest.mark.integration

PERIOD = 1.0  # minute: 1 s, hour: 2 s, day: 4 s
LOCK_TTL = 3
PLUGIN = """
def run_every_minute(meta):
    pass

def run_every_hour(meta):
    pass

def run_every_day(meta):
    pass
"""
RAN = re.compile(r"^(run_every_\w+) for the period from (.+) UTC ran in")
TASKS = {
    "run_every_minute": "runEveryMinute",
    "run_every_hour": "runEveryHour",
    "run_every_day": "runEveryDay",
}


def _plugin(folder: Path) -> Path:
    return write_plugin(folder, PLUGIN, name="ticking")


async def _holder_pid(cluster: LocalCluster) -> int:
    client = aioredis.from_url(cluster.env.get("REDIS_URL", "redis://127.0.0.1:56379"))
    try:
        key = f"{cluster.env['KAFKA_TOPIC_PREFIX']}plugin-server:locks:schedule"
        for _ in range(100):
            value = await client.get(key)
            if value:
                return int(value.decode().split(":")[1])
            await asyncio.sleep(0.1)
    finally:
        await client.aclose()
    raise AssertionError("no worker holds the schedule lock")


async def _runs(cluster: LocalCluster) -> list[tuple[str, datetime]]:
    async with cluster._engine.connect() as conn:
        messages = (await conn.execute(select(plugin_logs.c.message))).scalars().all()
    found = []
    for message in messages:
        if match := RAN.match(message):
            when = datetime.fromisoformat(match[2]).replace(tzinfo=UTC)
            found.append((TASKS[match[1]], when))
    return found


def _cluster(tmp_path: Path) -> LocalCluster:
    run = uuid.uuid4().hex[:8]
    return LocalCluster(
        run_id=run,
        input_topic=f"timers_{run}_input",
        events_store="postgres",
        plugin=_plugin(tmp_path / "plugin"),
        env={
            **os.environ,
            "SCHEDULE_TEST_PERIOD_SECONDS": str(PERIOD),
            "SCHEDULE_LOCK_TTL": str(LOCK_TTL),
        },
    )


def _missing_after(
    runs: list[tuple[str, datetime]], since: datetime, until: datetime
) -> dict[str, list[datetime]]:
    """Per task, the periods in (since, until] that did not run."""
    missing = {}
    for task in TASKS.values():
        ran = {when for t, when in runs if t == task}
        expected = period_starts(task, since, until, test_period=PERIOD)
        missing[task] = [p for p in expected if p not in ran]
    return {task: periods for task, periods in missing.items() if periods}


async def test_three_workers_run_each_period_once_and_survive_the_dispatcher(
    tmp_path: Path,
) -> None:
    async with _cluster(tmp_path) as cluster:
        await cluster.start_worker()
        await cluster.start_worker()
        await asyncio.sleep(6)
        pid = await _holder_pid(cluster)
        which = next(i for i, p in enumerate(cluster.processes) if p.pid == pid)
        killed_at = datetime.now(UTC)
        cluster.kill_worker(which)
        await asyncio.sleep(LOCK_TTL + 6)
        assert await _holder_pid(cluster) != pid
        stopped = datetime.now(UTC)
        await asyncio.sleep(2)  # the last runs' log lines reach the table
        runs = await _runs(cluster)
    counts = Counter(runs)
    assert counts and max(counts.values()) == 1, counts.most_common(3)  # never twice
    first = min(when for _, when in runs)
    # the killed worker's last second of log lines may be lost with it; every other
    # period ran, those that began while nobody dispatched included
    lost = (killed_at - timedelta(seconds=1.5), killed_at)
    missing = _missing_after(runs, first - timedelta(seconds=0.1), stopped)
    assert missing == {
        task: [p for p in periods if lost[0] <= p <= lost[1]] for task, periods in missing.items()
    }, killed_at
    print(f"{len(runs)} runs, none twice; dispatcher killed at {killed_at:%H:%M:%S.%f}")


async def test_a_worker_still_joining_the_group_takes_the_schedule_over(tmp_path: Path) -> None:
    """A worker that asked to join gets no partitions until the dead member's session
    ends (10 s): the group's rebalance waits for it. It takes the schedule over within
    the lock's TTL all the same."""
    async with _cluster(tmp_path) as cluster:
        pid = await _holder_pid(cluster)
        joining = cluster.spawn_worker()
        for _ in range(600):
            if (await cluster.group_state())[0] != "Stable":
                break
            await asyncio.sleep(0.1)
        killed_at = datetime.now(UTC)
        cluster.kill_worker(0)
        await asyncio.sleep(LOCK_TTL + 2)
        state = await cluster.group_state()
        holder = await _holder_pid(cluster)
        stopped = datetime.now(UTC)
        await asyncio.sleep(2)  # the last runs' log lines reach the table
        runs = await _runs(cluster)
    assert holder == joining.pid != pid
    assert state[0] != "Stable"  # it took over before it had partitions
    counts = Counter(runs)
    assert max(counts.values()) == 1, counts.most_common(3)
    # the periods that began while nobody dispatched ran when it took over
    assert _missing_after(runs, killed_at, stopped - timedelta(seconds=0.5)) == {}

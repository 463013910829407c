"""A team whose plugins are slow is handed to the overflow plugins stage, so it holds up
no other team of its partitions; none of its events are lost on the way."""

from __future__ import annotations

import time
from typing import Any

from app.pipeline.context import PipelineContext
from app.pipeline.plugins import run_overflow_plugins, run_plugins
from app.pipeline.positions import POSITION_KEY
from app.pipeline.slow_teams import SlowTeams
from tests.plugin_runtime.runtime_fixtures import event, make_runtime, record

SLOW_TEAM, FAST_TEAM = 2, 3
PLUGIN = """
import time

def process_event(event, meta):
    if event["team_id"] == 2:
        time.sleep(0.1)
    event["properties"]["seen"] = True
    return event
"""


def _events(team_id: int, count: int) -> list[dict[str, Any]]:
    out = []
    for n in range(count):
        e = event(str(n))
        e.update(team_id=team_id, uuid=f"00000000-0000-4000-8000-{team_id:06d}{n:06d}")
        e[POSITION_KEY] = [0, team_id * 1000 + n, 0]
        out.append(e)
    return out


def _context(runtime: Any, slow: SlowTeams | None) -> PipelineContext:
    return PipelineContext(  # the plugins stage needs only the runtime
        teams=None, persons=None, events=None, plugins=runtime, definitions=None,  # type: ignore[arg-type]
        groups=None, delivered=None, slow_teams=slow,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_a_slow_team_goes_to_the_overflow_and_the_fast_one_is_not_held_up() -> None:
    h = make_runtime()
    await h.runtime.load(
        [record(PLUGIN, id=1, team_id=SLOW_TEAM), record(PLUGIN, id=2, team_id=FAST_TEAM)]
    )
    slow = SlowTeams(seconds_per_event=0.05, hold_seconds=60)
    ctx = _context(h.runtime, slow)
    batch = _events(SLOW_TEAM, 20) + _events(FAST_TEAM, 50)
    started = time.monotonic()
    out = await run_plugins(ctx, batch)
    took = time.monotonic() - started
    assert took < 1.0  # 20 slow events would take 2 s here
    fast = [e for e in out.events if e["team_id"] == FAST_TEAM]
    assert len(fast) == 50 and all(e["properties"]["seen"] for e in fast)
    assert all(POSITION_KEY in e for e in out.events)
    probed = [e for e in out.events if e["team_id"] == SLOW_TEAM]
    assert len(probed) == 2  # the two tries that found it slow
    assert len(out.overflow) == 18 and all(POSITION_KEY not in e for e in out.overflow)
    assert slow.slow_teams() == [SLOW_TEAM]

    # the next batch of the slow team goes straight to the overflow, untouched
    again = await run_plugins(ctx, _events(SLOW_TEAM, 5))
    assert again.events == [] and len(again.overflow) == 5
    assert all("seen" not in e["properties"] for e in again.overflow)

    # where every overflowed event is run, at the plugin's pace
    done = await run_overflow_plugins(ctx, out.overflow + again.overflow)
    assert len(done.events) == 23 and done.overflow == []
    assert all(e["properties"]["seen"] for e in done.events)


async def test_one_slow_event_per_batch_is_enough_to_find_the_team_slow() -> None:
    h = make_runtime()
    await h.runtime.load([record(PLUGIN, id=1, team_id=SLOW_TEAM)])
    slow = SlowTeams(seconds_per_event=0.05, hold_seconds=60)
    ctx = _context(h.runtime, slow)
    first = await run_plugins(ctx, _events(SLOW_TEAM, 1))
    assert len(first.events) == 1 and not slow.is_slow(SLOW_TEAM)
    second = await run_plugins(ctx, _events(SLOW_TEAM, 1))
    assert len(second.events) == 1 and slow.is_slow(SLOW_TEAM)
    third = await run_plugins(ctx, _events(SLOW_TEAM, 1))
    assert third.events == [] and len(third.overflow) == 1


async def test_without_slow_teams_everything_runs_in_place() -> None:
    h = make_runtime()
    await h.runtime.load([record(PLUGIN, id=1, team_id=SLOW_TEAM)])
    out = await run_plugins(_context(h.runtime, None), _events(SLOW_TEAM, 3))
    assert len(out.events) == 3 and out.overflow == []


async def test_a_team_that_is_fast_again_returns_after_the_hold() -> None:
    now = [0.0]
    slow = SlowTeams(seconds_per_event=0.05, hold_seconds=10, clock=lambda: now[0])
    slow.mark(SLOW_TEAM)
    assert slow.is_slow(SLOW_TEAM)
    now[0] = 10.0
    assert not slow.is_slow(SLOW_TEAM) and slow.slow_teams() == []


async def test_a_probe_that_takes_too_long_is_not_waited_for() -> None:
    h = make_runtime()
    await h.runtime.load([record(PLUGIN.replace("0.1", "1.0"), id=1, team_id=SLOW_TEAM)])
    slow = SlowTeams(seconds_per_event=0.01, hold_seconds=60)  # patience: 0.1 s
    ctx = _context(h.runtime, slow)
    started = time.monotonic()
    out = await run_plugins(ctx, _events(SLOW_TEAM, 3) + _events(FAST_TEAM, 2))
    assert time.monotonic() - started < 0.6  # not the 1 s the probe takes
    assert out.events == [] or all(e["team_id"] == FAST_TEAM for e in out.events)
    assert len(out.overflow) == 3 and slow.is_slow(SLOW_TEAM)  # the probed one included
    done = await run_overflow_plugins(ctx, out.overflow)
    assert len(done.events) == 3 and all(e["properties"]["seen"] for e in done.events)

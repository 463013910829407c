"""A key's works on the plugin threads one at a time, in the order handed over
(`PluginExecutor.run_in_turn`), while other keys' works run beside them."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from plugin_runtime.isolation import PluginExecutor


@pytest.fixture
def executor():
    pool = PluginExecutor(threads=3)
    yield pool
    pool.close()


async def test_a_keys_works_run_one_at_a_time_in_order(executor) -> None:
    ran: list[int] = []
    inside = 0

    def work(number: int) -> int:
        nonlocal inside
        inside += 1
        assert inside == 1, "two works of one key at once"
        time.sleep(0.002)
        ran.append(number)
        inside -= 1
        return number * 10

    results = await asyncio.gather(
        *(executor.run_in_turn("team-1", lambda n=n: work(n)) for n in range(20))
    )

    assert results == [n * 10 for n in range(20)]
    assert ran == list(range(20))


async def test_a_busy_key_leaves_the_pool_to_other_work_between_its_works() -> None:
    executor = PluginExecutor(threads=1)
    order: list[str] = []
    try:
        busy = [
            executor.run_in_turn("team", lambda n=n: (time.sleep(0.02), order.append(f"t{n}")))
            for n in range(5)
        ]
        started = asyncio.ensure_future(asyncio.gather(*busy))
        await asyncio.sleep(0.01)  # the team's first work runs on the only thread
        await executor.run(lambda: order.append("other"))  # e.g. storing held writes
        await started
    finally:
        executor.close()
    assert order.index("other") < 2, order  # not after every work of the team


async def test_other_keys_run_beside_a_busy_one(executor) -> None:
    release = threading.Event()
    slow = asyncio.ensure_future(executor.run_in_turn("slow", lambda: release.wait(5)))
    await asyncio.sleep(0.05)

    assert await asyncio.wait_for(executor.run_in_turn("other", lambda: "done"), 2) == "done"
    assert not slow.done()
    release.set()
    assert await slow is True


async def test_an_error_is_its_callers_and_the_next_work_still_runs(executor) -> None:
    def fails() -> None:
        raise ValueError("plugin error")

    failing = executor.run_in_turn("team", fails)
    after = executor.run_in_turn("team", lambda: "next")
    with pytest.raises(ValueError, match="plugin error"):
        await failing
    assert await after == "next"


async def test_a_work_whose_caller_stopped_waiting_before_it_started_is_not_run(executor) -> None:
    release = threading.Event()
    ran: list[str] = []
    first = asyncio.ensure_future(executor.run_in_turn("team", lambda: release.wait(5)))
    second = asyncio.ensure_future(executor.run_in_turn("team", lambda: ran.append("second")))
    third = asyncio.ensure_future(executor.run_in_turn("team", lambda: ran.append("third")))
    await asyncio.sleep(0.05)
    second.cancel()
    release.set()
    await first
    await third
    assert ran == ["third"]

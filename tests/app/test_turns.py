"""Batches of a partition in flight together (`app.pipeline.turns`): each step takes them
in arrival order, at most `depth` at once, and a failed batch holds up none after it; what
queued up meanwhile comes out as one batch (`Backlog`)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from app.pipeline.turns import Backlog, InFlight, Turn

STEPS = ("plugins", "persons", "write", "send")


class Recorder:
    """Batches through STEPS, each step taking a random while, with what ran when."""

    def __init__(self) -> None:
        self.entered: dict[str, list[int]] = {step: [] for step in STEPS}
        self.inside: dict[str, int] = dict.fromkeys(STEPS, 0)
        self.busy = 0
        self.most_busy = 0
        self.overlapped = False  # two batches in different steps at one time

    async def handle(self, batch: int, turn: Turn) -> None:
        self.busy += 1
        self.most_busy = max(self.most_busy, self.busy)
        try:
            for step in STEPS:
                await turn.enter(step)
                assert self.inside[step] == 0, f"two batches in {step} at once"
                self.inside[step] += 1
                self.entered[step].append(batch)
                self.overlapped |= sum(self.inside.values()) > 1
                await asyncio.sleep(random.uniform(0, 0.004))
                self.inside[step] -= 1
                turn.leave(step)
        finally:
            self.busy -= 1


async def test_every_step_takes_the_batches_in_arrival_order() -> None:
    random.seed(7)
    recorder = Recorder()
    in_flight: InFlight[int] = InFlight(STEPS, recorder.handle, depth=3)
    for batch in range(40):
        await in_flight.add(batch)
    await in_flight.drain()

    assert all(order == list(range(40)) for order in recorder.entered.values())
    assert recorder.overlapped  # the next batch started before the one before it ended
    assert recorder.most_busy == 3


async def test_one_at_a_time_with_a_depth_of_one() -> None:
    recorder = Recorder()
    in_flight: InFlight[int] = InFlight(STEPS, recorder.handle, depth=1)
    for batch in range(5):
        await in_flight.add(batch)
    await in_flight.drain()

    assert recorder.most_busy == 1 and not recorder.overlapped


async def test_a_step_a_batch_skips_does_not_hold_the_next_one_up() -> None:
    reached: list[int] = []

    async def handle(batch: int, turn: Turn) -> None:
        if batch == 0:
            await asyncio.sleep(0.05)  # still busy elsewhere; it never enters "write"
            return
        await turn.enter("write")
        reached.append(batch)

    in_flight: InFlight[int] = InFlight(["write"], handle, depth=2)
    await in_flight.add(0)
    await in_flight.add(1)
    await asyncio.sleep(0.1)
    assert reached == [1]
    await in_flight.drain()


async def test_a_failed_batch_raises_and_lets_the_ones_after_it_through() -> None:
    done: list[int] = []

    async def handle(batch: int, turn: Turn) -> None:
        await turn.enter("write")
        if batch == 1:
            raise RuntimeError("batch 1 broke")
        done.append(batch)
        turn.leave("write")

    in_flight: InFlight[int] = InFlight(["write"], handle, depth=2)
    await in_flight.add(0)
    await in_flight.add(1)
    with pytest.raises(RuntimeError, match="batch 1 broke"):
        await in_flight.add(2)  # the slot frees when batch 1 ends, with its error
    in_flight = InFlight(["write"], handle, depth=2)
    await in_flight.add(2)
    await in_flight.drain()
    assert done == [0, 2]


async def test_a_failed_batch_leaves_its_steps_for_the_next() -> None:
    done: list[int] = []

    async def handle(batch: int, turn: Turn) -> None:
        await turn.enter("write")
        if batch == 0:
            await asyncio.sleep(0.01)
            raise RuntimeError("batch 0 broke in write")
        done.append(batch)

    in_flight: InFlight[int] = InFlight(["write"], handle, depth=2)
    await in_flight.add(0)
    await in_flight.add(1)
    with pytest.raises(RuntimeError):
        await in_flight.drain()
    await asyncio.sleep(0.01)
    assert done == [1]  # batch 1 entered "write" after batch 0 failed in it


async def test_cancel_stops_the_batches_in_flight() -> None:
    started, finished = [], []

    async def handle(batch: int, turn: Turn) -> None:
        started.append(batch)
        await asyncio.sleep(10)
        finished.append(batch)

    in_flight: InFlight[int] = InFlight(["write"], handle, depth=2)
    await in_flight.add(0)
    await in_flight.add(1)
    await asyncio.sleep(0.01)
    in_flight.cancel()
    await asyncio.sleep(0.01)
    assert started == [0, 1] and finished == []
    await in_flight.drain()  # nothing left


def test_depth_is_at_least_one() -> None:
    async def handle(batch: int, turn: Turn) -> None:
        return None

    with pytest.raises(ValueError, match="at least one"):
        InFlight(["write"], handle, depth=0)


class Queue:
    """Items as a partition's stream gives them: `waiting` while some are already there."""

    def __init__(self, *items: tuple[int, int]) -> None:
        self.items = asyncio.Queue[tuple[int, int]]()
        for item in items:
            self.items.put_nowait(item)
        self.ended = False

    def waiting(self) -> bool:
        return not self.items.empty()

    async def stream(self) -> AsyncIterator[tuple[int, int]]:
        while not (self.ended and self.items.empty()):
            yield await self.items.get()


def backlog(queue: Queue, limits: tuple[int, int] = (10, 1000)) -> Backlog[tuple[int, int]]:
    # an item is (events, bytes)
    return Backlog(queue.stream(), queue.waiting, lambda item: item, limits)


async def test_what_waits_comes_as_one_batch_and_what_comes_later_alone() -> None:
    queue = Queue((1, 10), (2, 10), (3, 10))
    batches = backlog(queue)
    assert await batches.next() == [(1, 10), (2, 10), (3, 10)]

    later = asyncio.ensure_future(batches.next())
    await asyncio.sleep(0.01)
    assert not later.done()  # nothing waits: the next batch is the next item, once it is there
    queue.items.put_nowait((4, 10))
    assert await later == [(4, 10)]


async def test_a_batch_stops_short_of_either_limit_and_the_item_over_it_goes_next() -> None:
    queue = Queue((4, 10), (4, 10), (4, 10), (1, 600), (1, 600), (1, 10))
    batches = backlog(queue, limits=(10, 1000))
    assert await batches.next() == [(4, 10), (4, 10)]  # a third would be 12 events
    assert await batches.next() == [(4, 10), (1, 600)]  # another 600 bytes would be 1,220
    assert await batches.next() == [(1, 600), (1, 10)]


async def test_an_item_over_the_limits_comes_alone() -> None:
    queue = Queue((50, 10), (1, 10), (1, 5000))
    batches = backlog(queue, limits=(10, 1000))
    assert await batches.next() == [(50, 10)]
    assert await batches.next() == [(1, 10)]
    assert await batches.next() == [(1, 5000)]


async def test_every_item_comes_once_in_order_then_the_end() -> None:
    items = [(i % 4 + 1, 100 * (i % 3)) for i in range(40)]
    queue = Queue(*items[:25])
    batches = backlog(queue, limits=(7, 500))
    seen: list[tuple[int, int]] = []
    for _ in range(5):
        seen += await batches.next()
    for item in items[25:]:
        queue.items.put_nowait(item)
    queue.ended = True
    with pytest.raises(StopAsyncIteration):
        while True:
            batch = await batches.next()
            assert sum(e for e, _ in batch) <= 7 and sum(b for _, b in batch) <= 500
            seen += batch
    assert seen == items


async def test_ready_waits_for_a_free_place_without_taking_one() -> None:
    release = asyncio.Event()

    async def handle(batch: int, turn: Turn) -> None:
        await release.wait()

    in_flight: InFlight[int] = InFlight(["write"], handle, depth=1)
    await in_flight.add(0)
    waiting = asyncio.ensure_future(in_flight.ready())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    release.set()
    await waiting
    await in_flight.ready()  # still free: ready took no place
    await in_flight.drain()

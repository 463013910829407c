"""Batches of a partition in flight together (`app.pipeline.turns`): each step takes them
in arrival order, at most `depth` at once, and a failed batch holds up none after it."""

from __future__ import annotations

import asyncio
import random

import pytest

from app.pipeline.turns import InFlight, Turn

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

"""Batches of one partition in flight together, each step taking them in arrival order.

An agent's run of stages waits on a different server at each stage (the sandbox, then
Postgres, then ClickHouse, then the broker): with one batch at a time, each sits idle
while the others work. `InFlight` lets the next batch start while the one before it is
still in a later stage, and keeps every step in order: batch N+1 enters a step only once
batch N has left it. So persons apply a distinct id's events in order, rows are written
in order, batches are sent on in order, and each is acknowledged after its own durable
write, as with one batch at a time.

`Backlog` takes what waits as one batch: when a partition's messages queue up behind the
batches in flight (the chain fell behind), the next batch is all of them up to the size
of one full message, so catching up costs one batch's round trips, not one per message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Turn:
    """One batch's place in each step: it waits for the batch before it to leave a step
    before entering, and lets the batch after it in once it has left."""

    def __init__(
        self, before: dict[str, asyncio.Future[None]], mine: dict[str, asyncio.Future[None]]
    ) -> None:
        self._before = before
        self._mine = mine

    async def enter(self, step: str) -> None:
        """Wait until the batch before this one has left `step`."""
        before = self._before.get(step)
        if before is not None and not before.done():
            await asyncio.shield(before)

    def leave(self, step: str) -> None:
        """This batch is done with `step` (or skips it): the next may enter."""
        mine = self._mine.get(step)
        if mine is not None and not mine.done():
            mine.set_result(None)

    def leave_all(self) -> None:
        """This batch is done with every step (it finished, failed or was cancelled)."""
        for step in self._mine:
            self.leave(step)


class InFlight(Generic[T]):
    """Up to `depth` batches of one partition handled at once, each through its `Turn`.

    `handle(item, turn)` runs one batch; `add` waits while `depth` batches are in flight.
    A batch that raised raises from the next `add` or from `drain`; its turn is left on
    every step first, so the batches after it are not held up (and since it is never
    acknowledged, the partition's committed offset stays before it).
    """

    def __init__(
        self, steps: Iterable[str], handle: Callable[[T, Turn], Awaitable[None]], depth: int
    ) -> None:
        if depth < 1:
            raise ValueError("at least one batch must be in flight")
        self._steps = tuple(steps)
        self._last: dict[str, asyncio.Future[None]] = {}
        self._handle = handle
        self._depth = depth
        self._tasks: list[asyncio.Task[None]] = []

    async def ready(self) -> None:
        """Wait until fewer than `depth` batches are in flight; raises a failed batch's
        error."""
        self._reap()
        while len(self._tasks) >= self._depth:
            await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
            self._reap()

    async def add(self, item: T) -> None:
        """Start handling `item` once fewer than `depth` batches are in flight."""
        await self.ready()
        loop = asyncio.get_running_loop()
        mine = {step: loop.create_future() for step in self._steps}
        turn, self._last = Turn(self._last, mine), mine
        self._tasks.append(asyncio.ensure_future(self._run(item, turn)))

    async def _run(self, item: T, turn: Turn) -> None:
        try:
            await self._handle(item, turn)
        finally:
            turn.leave_all()

    def _reap(self) -> None:
        done = [t for t in self._tasks if t.done()]
        self._tasks = [t for t in self._tasks if not t.done()]
        for task in done:
            task.result()  # a batch's error is the agent's

    async def drain(self) -> None:
        """Wait for every batch in flight."""
        while self._tasks:
            await asyncio.wait(self._tasks)
            self._reap()

    def cancel(self) -> None:
        """Stop the batches in flight (the worker is stopping or lost the partition:
        they are not acknowledged, and the partition's next owner runs them again)."""
        for task in self._tasks:
            task.cancel()
        self._tasks = []


class Backlog(Generic[T]):
    """A partition's messages in batches: one message when the next is not there yet, all
    that already wait when they queued up, up to `limits` together.

    `sizes(item)` is an item's (events, bytes) and `limits` the most of each in one batch;
    a first item over them comes alone. `waiting()` says whether the next item is already
    there, so taking it does not wait. An item taken that would overflow the batch is kept
    for the next one, so items come out in order, each once.
    """

    def __init__(
        self,
        items: AsyncIterator[T],
        waiting: Callable[[], bool],
        sizes: Callable[[T], tuple[int, int]],
        limits: tuple[int, int],
    ) -> None:
        self._items = items
        self._waiting = waiting
        self._sizes = sizes
        self._limits = limits
        self._kept: list[T] = []

    async def next(self) -> list[T]:
        """The next batch; raises StopAsyncIteration once the items have ended."""
        first = self._kept.pop() if self._kept else await anext(self._items)
        batch = [first]
        events, size = self._sizes(first)
        most_events, most_bytes = self._limits
        while self._waiting():
            try:
                item = await anext(self._items)
            except StopAsyncIteration:
                break
            more_events, more_bytes = self._sizes(item)
            if events + more_events > most_events or size + more_bytes > most_bytes:
                self._kept.append(item)
                break
            batch.append(item)
            events, size = events + more_events, size + more_bytes
        return batch

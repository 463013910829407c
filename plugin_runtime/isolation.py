"""Running plugin work off the asyncio loop, on a pool of plugin threads.

Plugin code is synchronous and CPU-bound; the runtime hands whole batches to this pool
(one hand-off per batch, not per event) and bounds each plugin call inside with
`call_bounded`. A plugin that raises, times out or hits its memory bound only fails its
own call; the thread goes on with the next piece of work.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_Queued = tuple[Callable[[], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]


class PluginExecutor:
    """A fixed pool of threads that run plugin work for the event loop."""

    def __init__(self, *, threads: int) -> None:
        if threads < 1:
            raise ValueError("a plugin executor needs at least one thread")
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="plugin")
        self._turns: dict[Hashable, deque[_Queued]] = {}  # a key's works not yet started
        self._turns_lock = threading.Lock()

    async def run(self, work: Callable[[], T]) -> T:
        """Run `work()` on a plugin thread and return its result (or raise its error)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    async def run_in_turn(self, key: Hashable, work: Callable[[], T]) -> T:
        """Run `work()` on a plugin thread once the works handed over before it with the
        same `key` have run, one at a time, and return its result.

        The thread that ran one hands the key's next to the pool itself: between two
        works of a key there is no trip through the event loop, which, busy with other
        stages, took about 30 ms per request to come back and start the next one (the
        key's process idle meanwhile). Each work is one job of the pool, behind what was
        handed to it before, so a busy key never keeps the pool from other work. A work
        whose caller stopped waiting before it started is not run."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._turns_lock:
            queue = self._turns.get(key)
            idle = queue is None
            if queue is None:
                queue = self._turns[key] = deque()
            queue.append((work, future, loop))
        if idle:
            self._pool.submit(self._serve_turn, key)
        return await future

    def _serve_turn(self, key: Hashable) -> None:
        """Run the key's next work, then hand the one after it to the pool (a key stays
        in `_turns` while one of its works runs, so a work handed over meanwhile waits)."""
        while True:
            with self._turns_lock:
                queue = self._turns[key]
                while queue and queue[0][1].cancelled():  # its caller was cancelled
                    queue.popleft()
                if not queue:
                    del self._turns[key]
                    return
                work, future, loop = queue.popleft()
            try:
                result = work()
            except BaseException as exc:  # the caller's to handle, as with `run`
                loop.call_soon_threadsafe(_settle, future, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, future, result, None)
            with self._turns_lock:
                if not self._turns[key]:
                    del self._turns[key]
                    return
            try:
                self._pool.submit(self._serve_turn, key)
                return
            except RuntimeError:  # the pool is shutting down: the rest run here
                continue

    def close(self) -> None:
        """Stop taking work; work already handed over finishes first."""
        self._pool.shutdown(wait=True)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)

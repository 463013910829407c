"""Running plugin work off the asyncio loop, on a pool of plugin threads.

Plugin code is synchronous and CPU-bound; the runtime hands whole batches to this pool
(one hand-off per batch, not per event) and bounds each plugin call inside with
`call_bounded`. A plugin that raises, times out or hits its memory bound only fails its
own call; the thread goes on with the next piece of work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class PluginExecutor:
    """A fixed pool of threads that run plugin work for the event loop."""

    def __init__(self, *, threads: int) -> None:
        if threads < 1:
            raise ValueError("a plugin executor needs at least one thread")
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="plugin")

    async def run(self, work: Callable[[], T]) -> T:
        """Run `work()` on a plugin thread and return its result (or raise its error)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    def close(self) -> None:
        """Stop taking work; work already handed over finishes first."""
        self._pool.shutdown(wait=True)

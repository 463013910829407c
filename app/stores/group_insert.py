"""Inserts of concurrent writers sent together, one at a time ("group commit").

Each input partition's batch is written by its own actor, and the ClickHouse client
serves one insert at a time anyway. So while an insert is in flight, the rows of the
writers that come meanwhile wait and then go to the server as one insert: fewer, larger
inserts, which is what a MergeTree table wants (each insert is a part to merge later).

Every writer returns only once its own rows are stored. When a shared insert fails, each
writer's rows are tried again on their own, so a row the server refuses fails only its
writer's batch (which the stage then splits down to that event), never a neighbour's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

Rows = list[tuple[Any, ...]]


class GroupInsert:
    def __init__(self, insert: Callable[[Rows], object]) -> None:
        """`insert`: the blocking call that stores rows (run on a thread)."""
        self._insert = insert
        self._waiting: list[tuple[Rows, asyncio.Future[None]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def __call__(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # read even when its writer is gone, so a failure is never reported as unread
        done.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._waiting.append((list(rows), done))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain())
        # shielded: a writer cancelled (a revoked partition) leaves the insert to finish
        await asyncio.shield(done)

    async def _drain(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                await asyncio.to_thread(self._insert, [row for rows, _ in group for row in rows])
            except Exception as exc:
                if len(group) == 1:
                    _settle(group[0][1], exc)
                    continue
                for rows, done in group:  # each on its own: an error is only its own
                    try:
                        await asyncio.to_thread(self._insert, rows)
                    except Exception as own:
                        _settle(done, own)
                    else:
                        _settle(done, None)
            else:
                for _, done in group:
                    _settle(done, None)


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)

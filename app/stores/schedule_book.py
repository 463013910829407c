"""The schedule's bookkeeping: who dispatches, which periods ran, which runs are going.

Cluster: Redis, shared by every worker. The lock `plugin-server:locks:schedule` names the
one worker that dispatches (as the original); a period key per (config, task, period
start) says that period was started, so a worker taking over never runs it again; a run
key per (config, task) says a run is going, so no second run of the task starts beside
it, on any worker. Its worker renews it each tick, as the holder renews the lock, so the
run key of a worker that died lapses with its lock. Embedded: the same in process memory.
"""

from __future__ import annotations

import time
from typing import Literal, Protocol

import redis.asyncio as aioredis

LOCK_KEY = "plugin-server:locks:schedule"
PREFIX = "plugin-server:schedule"

Begun = Literal["started", "running", "done"]

# acquire the lock, or renew it if it is ours: one round trip per tick
_HOLD = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
# start a period's run unless it was started before or a run of the task is going
_BEGIN = """
if redis.call('exists', KEYS[2]) == 1 then return 'done' end
if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 'running' end
redis.call('set', KEYS[2], ARGV[1], 'PX', ARGV[3])
return 'started'
"""
# renew those of the run keys that are still this holder's
_KEEP = """
for _, key in ipairs(KEYS) do
  if redis.call('get', key) == ARGV[1] then redis.call('pexpire', key, ARGV[2]) end
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class ScheduleBook(Protocol):
    async def hold(self, holder: str, ttl_seconds: float) -> bool:
        """Take or keep the dispatch lock for `ttl_seconds`; False if another holds it."""
        ...

    async def begin(
        self, run: str, period: str, holder: str, run_ttl: float, period_ttl: float
    ) -> Begun: ...

    async def keep(self, runs: list[str], holder: str, ttl_seconds: float) -> None:
        """Renew the run keys of `runs` that `holder` still has, for `ttl_seconds`."""
        ...

    async def end(self, run: str, holder: str) -> None: ...

    async def release(self, holder: str) -> None: ...

    async def close(self) -> None: ...


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisScheduleBook:
    def __init__(self, client: aioredis.Redis, *, namespace: str = "") -> None:
        """`namespace` keeps clusters that share a Redis apart (their topic prefix); the
        default keys are the original's lock name."""
        self._redis = client
        self._lock = f"{namespace}{LOCK_KEY}"
        self._prefix = f"{namespace}{PREFIX}"

    async def hold(self, holder: str, ttl_seconds: float) -> bool:
        held = await self._redis.eval(_HOLD, 1, self._lock, holder, _ms(ttl_seconds))
        return bool(held)

    async def begin(
        self, run: str, period: str, holder: str, run_ttl: float, period_ttl: float
    ) -> Begun:
        keys = (f"{self._prefix}:run:{run}", f"{self._prefix}:period:{period}")
        answer = await self._redis.eval(_BEGIN, 2, *keys, holder, _ms(run_ttl), _ms(period_ttl))
        text = answer.decode() if isinstance(answer, bytes) else str(answer)
        return "started" if text == "started" else "running" if text == "running" else "done"

    async def keep(self, runs: list[str], holder: str, ttl_seconds: float) -> None:
        keys = [f"{self._prefix}:run:{run}" for run in runs]
        await self._redis.eval(_KEEP, len(keys), *keys, holder, _ms(ttl_seconds))

    async def end(self, run: str, holder: str) -> None:
        await self._redis.eval(_RELEASE, 1, f"{self._prefix}:run:{run}", holder)

    async def release(self, holder: str) -> None:
        await self._redis.eval(_RELEASE, 1, self._lock, holder)

    async def close(self) -> None:
        await self._redis.aclose()


class MemoryScheduleBook:
    """One process's bookkeeping, with the same expiry rules as the Redis one."""

    def __init__(self) -> None:
        self._keys: dict[str, tuple[str, float]] = {}

    def _get(self, key: str) -> str | None:
        found = self._keys.get(key)
        if found is None or found[1] <= time.monotonic():
            self._keys.pop(key, None)
            return None
        return found[0]

    def _set(self, key: str, value: str, ttl: float) -> None:
        self._keys[key] = (value, time.monotonic() + ttl)

    async def hold(self, holder: str, ttl_seconds: float) -> bool:
        current = self._get(LOCK_KEY)
        if current not in (None, holder):
            return False
        self._set(LOCK_KEY, holder, ttl_seconds)
        return True

    async def begin(
        self, run: str, period: str, holder: str, run_ttl: float, period_ttl: float
    ) -> Begun:
        if self._get(f"period:{period}") is not None:
            return "done"
        if self._get(f"run:{run}") is not None:
            return "running"
        self._set(f"run:{run}", holder, run_ttl)
        self._set(f"period:{period}", holder, period_ttl)
        return "started"

    async def keep(self, runs: list[str], holder: str, ttl_seconds: float) -> None:
        for run in runs:
            if self._get(f"run:{run}") == holder:
                self._set(f"run:{run}", holder, ttl_seconds)

    async def end(self, run: str, holder: str) -> None:
        if self._get(f"run:{run}") == holder:
            self._keys.pop(f"run:{run}", None)

    async def release(self, holder: str) -> None:
        if self._get(LOCK_KEY) == holder:
            self._keys.pop(LOCK_KEY, None)

    async def close(self) -> None:
        self._keys.clear()

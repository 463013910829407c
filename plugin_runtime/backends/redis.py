"""The cluster's CacheBackend: Redis through the synchronous redis-py client.

redis-py clients are thread-safe (one connection pool), so every plugin thread shares one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import redis


class RedisCache:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisCache:
        """A cache on `url` (redis://host:port/db) answering text, not bytes."""
        return cls(redis.Redis.from_url(url, decode_responses=True, **options))

    def get(self, key: str) -> str | None:
        return cast("str | None", self._redis.get(key))

    def set(self, key: str, value: str, ttl_seconds: int | None = None) -> None:
        self._redis.set(key, value, ex=ttl_seconds or None)

    def set_if_absent(self, key: str, value: str) -> bool:
        return bool(self._redis.set(key, value, nx=True))

    def incr(self, key: str, by: int = 1) -> int:
        return int(self._redis.incrby(key, by))

    def expire(self, key: str, ttl_seconds: int) -> bool:
        if ttl_seconds <= 0:
            # Redis rejects a zero EXPIRE on some versions; deleting is what it means
            return bool(self._redis.delete(key))
        return bool(self._redis.expire(key, ttl_seconds))

    def lpush(self, key: str, values: list[str]) -> int:
        return int(self._redis.lpush(key, *values))

    def lrange(self, key: str, start: int, stop: int) -> list[str]:
        return list(cast("list[str]", self._redis.lrange(key, start, stop)))

    def llen(self, key: str) -> int:
        return int(self._redis.llen(key))

    def lpop(self, key: str, count: int = 1) -> list[str]:
        popped = self._redis.lpop(key, count)
        return list(cast("list[str]", popped)) if popped else []

    def lrem(self, key: str, count: int, value: str) -> int:
        return int(self._redis.lrem(key, count, value))

    def delete(self, key: str) -> None:
        self._redis.delete(key)

    def usage(self, prefix: str) -> int:
        # glob characters in the prefix are escaped: it is matched as it is
        pattern = "".join(f"\\{c}" if c in "*?[]\\" else c for c in prefix) + "*"
        total = 0
        for keys in _chunks(self._redis.scan_iter(match=pattern, count=1000), 500):
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.memory_usage(key, samples=0)
            total += sum(int(n or 0) for n in pipe.execute())
        return total

    def close(self) -> None:
        self._redis.close()


def _chunks(items: Iterator[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

"""`meta.cache` over the in-memory and the Redis backend (R21-R29)."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from plugin_runtime.backends.memory import MemoryCache
from plugin_runtime.errors import IllegalOperationError
from plugin_runtime.extensions.cache import Cache

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:56379")


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def backend(request):
    if request.param == "memory":
        yield MemoryCache()
        return
    from plugin_runtime.backends.redis import RedisCache

    cache = RedisCache.from_url(REDIS_URL)
    yield cache
    cache.close()


@pytest.fixture
def cache(backend):
    # a fresh config id per test keeps Redis runs independent
    return Cache(backend, uuid.uuid4().int % 10**9)


def test_missing_key_returns_default(cache):
    assert cache.get("missing", 42) == 42
    assert cache.get("missing") is None


def test_values_round_trip_as_json(cache):
    cache.set("k", {"a": [1, 2.5, None, "x"]})
    assert cache.get("k") == {"a": [1, 2.5, None, "x"]}


def test_counter_increments(cache):
    cache.set("counter", 0)
    assert [cache.incr("counter") for _ in range(3)] == [1, 2, 3]
    assert cache.incr("fresh", 5) == 5


def test_ttl_and_expire_remove_keys(cache):
    cache.set("a", 1, ttl_seconds=1)
    cache.set("b", 1)
    assert cache.expire("b", 1) is True
    assert cache.expire("never-set", 1) is False
    time.sleep(1.2)
    assert cache.get("a", "gone") == "gone"
    assert cache.get("b", "gone") == "gone"


def test_lists_push_range_pop_and_remove(cache):
    assert cache.lpush("mylist", "a string") == 1
    assert cache.lpush("mylist", ["an", "array"]) == 3
    assert sorted(cache.lrange("mylist", 0, 3)) == ["a string", "an", "array"]
    assert cache.llen("mylist") == 3
    cache.expire("mylist", 0)
    assert cache.lrange("mylist", 0, 3) == []
    cache.lpush("mylist2", ["1", "2", "3"])
    assert cache.lpop("mylist2", 1) == ["3"]
    assert cache.lrange("mylist2", 0, -1) == ["2", "1"]
    assert cache.lrem("mylist2", 1, "2") == 1
    assert cache.lrange("mylist2", 0, 3) == ["1"]


def test_lpush_limits(cache):
    with pytest.raises(IllegalOperationError):
        cache.lpush("k", 5)
    with pytest.raises(IllegalOperationError, match="1000"):
        cache.lpush("k", [str(i) for i in range(1001)])
    assert cache.lpush("k", [str(i) for i in range(1000)]) == 1000
    cache.lpush("n", [7])
    assert cache.lrange("n", 0, 0) == ["7"]


def test_indexes_and_counts_must_be_integers(cache):
    for call in (
        lambda: cache.lrange("k", "0", 3),
        lambda: cache.lrem("k", "1", "x"),
        lambda: cache.lpop("k", "1"),
    ):
        with pytest.raises(IllegalOperationError):
            call()


def test_two_configs_never_share_keys(backend):
    config_id = uuid.uuid4().int % 10**9
    first, second = Cache(backend, config_id), Cache(backend, config_id + 1)
    first.set("k", "first")
    assert second.get("k") is None
    second.set("k", "second")
    assert first.get("k") == "first"


def test_usage_counts_what_one_prefix_holds(backend):
    prefix = f"@plugin-config/{uuid.uuid4().int % 10**9}/"
    other = f"@plugin-config/{uuid.uuid4().int % 10**9}/"
    assert backend.usage(prefix) == 0
    backend.set(prefix + "a", "x" * 5000)
    backend.lpush(prefix + "list", ["y" * 3000, "z" * 3000])
    backend.set(other + "a", "x" * 50000)
    held = backend.usage(prefix)
    # Redis counts its own overhead per key; the memory cache counts keys and values
    assert 11_000 <= held < 20_000
    backend.delete(prefix + "a")
    assert backend.usage(prefix) < held - 4_000

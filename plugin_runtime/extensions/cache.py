"""`meta.cache`: Redis-style helpers namespaced per plugin config; values round-trip as JSON."""

from __future__ import annotations

from typing import Any

from plugin_runtime.backends import CacheBackend
from plugin_runtime.errors import IllegalOperationError
from plugin_runtime.extensions import values as json_values

MAX_LPUSH_ITEMS = 1000  # elements per lpush call, as the original capped it


def cache_prefix(plugin_config_id: int) -> str:
    """The key prefix of one plugin config; no two configs share cache keys."""
    return f"@plugin-config/{plugin_config_id}/"


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise IllegalOperationError(f"cache: {name} must be an integer, got {value!r}")
    return value


class Cache:
    """What `meta.cache` is. Keys are strings; anything JSON can encode is a value."""

    __slots__ = ("_backend", "_prefix")

    def __init__(self, backend: CacheBackend, plugin_config_id: int) -> None:
        self._backend = backend
        self._prefix = cache_prefix(plugin_config_id)

    def _key(self, key: str) -> str:
        if not isinstance(key, str):
            raise IllegalOperationError(f"cache: keys must be strings, got {key!r}")
        return self._prefix + key

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value, or `default` when the key is missing or expired."""
        raw = self._backend.get(self._key(key))
        if raw is None:
            return default
        try:
            return json_values.loads(raw)
        except ValueError:
            return raw

    def set(self, key: str, value: Any, ttl_seconds: int | None = None) -> None:
        """Store `value`; with `ttl_seconds` it expires after that many seconds."""
        ttl = None if ttl_seconds is None else _int("ttl_seconds", ttl_seconds)
        self._backend.set(self._key(key), json_values.dumps(value), ttl or None)

    def incr(self, key: str, by: int = 1) -> int:
        """Add `by` to the integer at `key` (a missing key counts from 0); the new value."""
        return self._backend.incr(self._key(key), _int("by", by))

    def expire(self, key: str, ttl_seconds: int) -> bool:
        """Expire `key` after `ttl_seconds` (0 deletes it); False when it did not exist."""
        return self._backend.expire(self._key(key), _int("ttl_seconds", ttl_seconds))

    def lpush(self, key: str, values: str | list[Any]) -> int:
        """Push a string, or each element of a list (as text) in order, on the left."""
        if isinstance(values, str):
            items = [values]
        elif isinstance(values, list | tuple):
            if len(values) > MAX_LPUSH_ITEMS:
                raise IllegalOperationError(
                    f"cache.lpush takes at most {MAX_LPUSH_ITEMS} elements, got {len(values)}"
                )
            items = [v if isinstance(v, str) else json_values.dumps(v) for v in values]
        else:
            raise IllegalOperationError("cache.lpush takes a string or a list of strings")
        if not items:
            return self._backend.llen(self._key(key))
        return self._backend.lpush(self._key(key), items)

    def lrange(self, key: str, start: int, stop: int) -> list[str]:
        """Elements `start`..`stop` inclusive (negative counts from the end)."""
        return self._backend.lrange(self._key(key), _int("start", start), _int("stop", stop))

    def llen(self, key: str) -> int:
        return self._backend.llen(self._key(key))

    def lpop(self, key: str, count: int = 1) -> list[str]:
        """Pop up to `count` elements from the left."""
        return self._backend.lpop(self._key(key), _int("count", count))

    def lrem(self, key: str, count: int, value: str) -> int:
        """Remove `count` occurrences of `value` (0: all); how many were removed."""
        return self._backend.lrem(self._key(key), _int("count", count), value)

"""The harness's live views of a plugin config's `meta.cache` and `meta.storage`: what a
test reads is what the plugin stored, and what a test writes the plugin reads next, as
Jest tests do with `resetMeta()` and `cache.set`."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from plugin_runtime.backends.memory import MemoryCache, MemoryStorage
from plugin_runtime.extensions import values as json_values
from plugin_runtime.extensions.cache import cache_prefix


def _decoded(raw: str | list[str]) -> Any:
    if isinstance(raw, list):
        return list(raw)
    try:
        return json_values.loads(raw)
    except ValueError:
        return raw


class CacheView(MutableMapping[str, Any]):
    """One config's cache: key -> value (a list key as its list of strings)."""

    def __init__(self, cache: MemoryCache, plugin_config_id: int) -> None:
        self._cache, self._prefix = cache, cache_prefix(plugin_config_id)

    def _keys(self) -> list[str]:
        n = len(self._prefix)
        return [k[n:] for k in self._cache.snapshot() if k.startswith(self._prefix)]

    def __getitem__(self, key: str) -> Any:
        raw = self._cache.snapshot().get(self._prefix + key)
        if raw is None:
            raise KeyError(key)
        return _decoded(raw)

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def set(self, key: str, value: Any, ttl_seconds: int | None = None) -> None:
        """As `meta.cache.set` would store it."""
        self._cache.set(self._prefix + key, json_values.dumps(value), ttl_seconds)

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._cache.delete(self._prefix + key)

    def expire(self, key: str) -> None:
        """Let `key`'s time run out now, as if its TTL had passed."""
        self._cache.delete(self._prefix + key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def __repr__(self) -> str:
        return f"CacheView({dict(self)!r})"


class StorageView(MutableMapping[str, Any]):
    """One config's storage: key -> value."""

    def __init__(self, storage: MemoryStorage, plugin_config_id: int) -> None:
        self._storage, self._id = storage, plugin_config_id

    def __getitem__(self, key: str) -> Any:
        raw = self._storage.get(self._id, key)
        if raw is None:
            raise KeyError(key)
        return json_values.loads(raw)

    def __setitem__(self, key: str, value: Any) -> None:
        self._storage.set(self._id, key, json_values.dumps(value))

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._storage.delete(self._id, key)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._storage.rows(self._id)))

    def __len__(self) -> int:
        return len(self._storage.rows(self._id))

    def __repr__(self) -> str:
        return f"StorageView({dict(self)!r})"

"""`meta.utils.cursor`: cluster-wide integer counters of one plugin config.

They live in the cache backend (Redis in the cluster), whose INCR is atomic across every
worker, so concurrent `increment` calls never hand out the same value twice.
"""

from __future__ import annotations

from typing import Any

from plugin_runtime.backends import CacheBackend
from plugin_runtime.errors import IllegalOperationError


def cursor_prefix(plugin_config_id: int) -> str:
    return f"@plugin-config/{plugin_config_id}/@cursor/"


def _number(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise IllegalOperationError(f"cursor: {name} must be an integer, got {value!r}")
    return value


class Cursor:
    __slots__ = ("_backend", "_prefix")

    def __init__(self, backend: CacheBackend, plugin_config_id: int) -> None:
        self._backend = backend
        self._prefix = cursor_prefix(plugin_config_id)

    def init(self, key: str, value: int = 0) -> None:
        """Create the counter at `value` unless it already exists (set-once)."""
        start = _number("value", value)
        self._backend.set_if_absent(self._prefix + str(key), str(start))

    def increment(self, key: str, by: int = 1) -> int:
        """Add `by` (a missing counter starts at 0) and return the new value."""
        return self._backend.incr(self._prefix + str(key), _number("by", by))


class Utils:
    """What `meta.utils` is."""

    __slots__ = ("cursor",)

    def __init__(self, cursor: Cursor) -> None:
        self.cursor = cursor

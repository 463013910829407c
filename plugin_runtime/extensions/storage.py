"""`meta.storage`: persistent key/value per plugin config; values round-trip as JSON."""

from __future__ import annotations

from typing import Any

from plugin_runtime.backends import StorageBackend
from plugin_runtime.errors import IllegalOperationError
from plugin_runtime.extensions import values as json_values


class Storage:
    """What `meta.storage` is. A stored JSON null is a value, not absence."""

    __slots__ = ("_backend", "_config_id")

    def __init__(self, backend: StorageBackend, plugin_config_id: int) -> None:
        self._backend = backend
        self._config_id = plugin_config_id

    @staticmethod
    def _check(key: str) -> str:
        if not isinstance(key, str) or not key:
            raise IllegalOperationError(f"storage: keys must be non-empty strings, got {key!r}")
        return key

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value, or `default` when there is none."""
        raw = self._backend.get(self._config_id, self._check(key))
        return default if raw is None else json_values.loads(raw)

    def set(self, key: str, value: Any) -> None:
        """Store `value` (anything JSON can encode) under `key`."""
        self._backend.set(self._config_id, self._check(key), json_values.dumps(value))

    def delete(self, key: str) -> None:
        """Remove `key`; no error when it is absent."""
        self._backend.delete(self._config_id, self._check(key))

    # the original's name, for ported plugins (`del` is a Python keyword)
    del_ = delete

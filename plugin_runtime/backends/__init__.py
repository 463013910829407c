"""The interfaces `meta` talks to, with two implementations each: in-process
(`memory.py`, for the embedded mode and the authoring kit) and the real servers
(`redis.py`, `sql.py`, ...).

Plugin code is synchronous and runs on the runtime's plugin threads, so these
interfaces are synchronous too; real implementations use thread-safe clients.
Every key is already namespaced per plugin config by the caller (`extensions/`).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class CacheBackend(Protocol):
    """Redis semantics: values are JSON text; TTLs in seconds."""

    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str, ttl_seconds: int | None = None) -> None: ...
    def set_if_absent(self, key: str, value: str) -> bool: ...
    def incr(self, key: str, by: int = 1) -> int: ...
    def expire(self, key: str, ttl_seconds: int) -> bool: ...
    def lpush(self, key: str, values: list[str]) -> int: ...
    def lrange(self, key: str, start: int, stop: int) -> list[str]: ...
    def llen(self, key: str) -> int: ...
    def lpop(self, key: str, count: int = 1) -> list[str]: ...
    def lrem(self, key: str, count: int, value: str) -> int: ...
    def delete(self, key: str) -> None: ...

    def usage(self, prefix: str) -> int:
        """Bytes held under keys starting with `prefix` (keys and values); may scan, so the
        runtime asks only when a config nears its bound."""
        ...


class StorageBackend(Protocol):
    """Persistent key/value per plugin config; values are JSON text."""

    def get(self, plugin_config_id: int, key: str) -> str | None: ...
    def set(self, plugin_config_id: int, key: str, value: str) -> None: ...
    def delete(self, plugin_config_id: int, key: str) -> None: ...

    def usage(self, plugin_config_id: int) -> int:
        """Bytes the config holds (keys and values, writes pending in this thread's batch
        included); asked only when the config nears its bound."""
        ...

    def batch(self, *, hold: bool = False) -> AbstractContextManager[None]:
        """A scope (on the calling thread) whose writes are stored together when it ends;
        reads inside it see them. The runtime opens one per batch of plugin calls. With
        `hold`, they are stored by the next `write_held` instead (reads see them until
        then), so the scope's end does not wait on the database."""
        ...

    def write_held(self) -> None:
        """Store the writes of the scopes that ended with `hold`, in the order they
        were made."""
        ...

    def holding(self) -> bool:
        """Whether writes are held and not yet stored (a scope that ended with `hold`
        and found this false has had its writes stored)."""
        ...


@dataclass(frozen=True)
class LogEntry:
    team_id: int
    plugin_id: int
    plugin_config_id: int
    timestamp: datetime
    source: str  # "CONSOLE" (meta.logger), "PLUGIN" (an error it raised) or "SYSTEM" (the runtime)
    level: str  # debug, info, warning, error
    message: str
    id: str = ""  # the stored entry's id, which sorts in write order ("" before it is stored)


class LogSink(Protocol):
    def write(self, entry: LogEntry) -> None: ...


class JobQueue(Protocol):
    """Where `meta.jobs` enqueues; the jobs topology implements it in cluster mode."""

    def enqueue(
        self, *, plugin_config_id: int, team_id: int, name: str, payload: Any, run_at: datetime
    ) -> None: ...


class CaptureSink(Protocol):
    """Where `posthog.capture` sends a capture message (the input topic's format)."""

    def capture(self, message: Mapping[str, Any]) -> None: ...


class GeoIPReader(Protocol):
    def city(self, ip: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class HttpResponse:
    status: int
    status_text: str
    headers: dict[str, str]
    body: bytes


class HttpClient(Protocol):
    """What `fetch` uses; raises ConnectionError/TimeoutError on network failure and
    ValueError on an unusable URL."""

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None,
        body: bytes | None,
        timeout: float,
    ) -> HttpResponse: ...


class ErrorSink(Protocol):
    """Where the runtime records a plugin config's errors (plugin_configs.error in SQL).

    `error` is `{"message", "name", "time", "stack"?, "event"?}`; the latest one wins.
    """

    def record(self, plugin_config_id: int, error: Mapping[str, Any]) -> None: ...
    def clear(self, plugin_config_id: int) -> None: ...
    def disable(self, plugin_config_id: int) -> None: ...
    def budget(self, plugin_config_id: int, state: Mapping[str, Any] | None) -> None:
        """The config's budget state, None when healthy again."""
        ...


@dataclass(frozen=True)
class RuntimeBackends:
    """Everything `meta` and the sandbox globals talk to, built once per process."""

    cache: CacheBackend
    storage: StorageBackend
    logs: LogSink
    jobs: JobQueue
    captures: CaptureSink
    http: HttpClient
    errors: ErrorSink
    geoip: GeoIPReader | None = None

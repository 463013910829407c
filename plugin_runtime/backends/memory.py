"""In-process backends: the embedded mode's stores and the authoring kit's recorders.

Same interfaces and semantics as the real servers (Redis TTLs and lists, JSON text
values), so a plugin behaves the same here as in the cluster.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from plugin_runtime.backends import HttpClient, LogEntry, RuntimeBackends
from plugin_runtime.backends.http_fixtures import HttpFixtures


class MemoryCache:
    """A CacheBackend with Redis semantics (strings, lists, TTLs) in a dict."""

    def __init__(self) -> None:
        self._values: dict[str, str | list[str]] = {}
        self._expiry: dict[str, float] = {}
        self._lock = threading.RLock()

    def _live(self, key: str) -> str | list[str] | None:
        deadline = self._expiry.get(key)
        if deadline is not None and deadline <= time.monotonic():
            self._values.pop(key, None)
            self._expiry.pop(key, None)
        return self._values.get(key)

    def _list(self, key: str) -> list[str]:
        value = self._live(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise TypeError(f"WRONGTYPE key {key!r} does not hold a list")
        return value

    def get(self, key: str) -> str | None:
        with self._lock:
            value = self._live(key)
            if isinstance(value, list):
                raise TypeError(f"WRONGTYPE key {key!r} holds a list")
            return value

    def set(self, key: str, value: str, ttl_seconds: int | None = None) -> None:
        with self._lock:
            self._values[key] = value
            self._expiry.pop(key, None)
            if ttl_seconds:
                self._expiry[key] = time.monotonic() + ttl_seconds

    def set_if_absent(self, key: str, value: str) -> bool:
        with self._lock:
            if self._live(key) is not None:
                return False
            self.set(key, value)
            return True

    def incr(self, key: str, by: int = 1) -> int:
        with self._lock:
            current = self.get(key)
            try:
                new = int(current or 0) + by
            except ValueError:
                raise ValueError(f"value at {key!r} is not an integer") from None
            self._values[key] = str(new)
            return new

    def expire(self, key: str, ttl_seconds: int) -> bool:
        with self._lock:
            if self._live(key) is None:
                return False
            if ttl_seconds <= 0:
                self.delete(key)
            else:
                self._expiry[key] = time.monotonic() + ttl_seconds
            return True

    def lpush(self, key: str, values: list[str]) -> int:
        with self._lock:
            items = self._list(key)
            for value in values:
                items.insert(0, value)
            self._values[key] = items
            return len(items)

    def lrange(self, key: str, start: int, stop: int) -> list[str]:
        with self._lock:
            items = self._list(key)
            # Redis LRANGE: inclusive stop, negative indexes count from the end
            n = len(items)
            start = max(n + start, 0) if start < 0 else start
            stop = n + stop if stop < 0 else min(stop, n - 1)
            return list(items[start : stop + 1]) if start <= stop else []

    def llen(self, key: str) -> int:
        with self._lock:
            return len(self._list(key))

    def lpop(self, key: str, count: int = 1) -> list[str]:
        with self._lock:
            items = self._list(key)
            popped, rest = items[:count], items[count:]
            if rest:
                self._values[key] = rest
            else:
                self.delete(key)
            return popped

    def lrem(self, key: str, count: int, value: str) -> int:
        with self._lock:
            items = self._list(key)
            limit = abs(count) or len(items)
            order = list(range(len(items)))
            if count < 0:
                order.reverse()
            doomed = [i for i in order if items[i] == value][:limit]
            for i in sorted(doomed, reverse=True):
                del items[i]
            if not items:
                self.delete(key)
            return len(doomed)

    def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)
            self._expiry.pop(key, None)

    def usage(self, prefix: str) -> int:
        with self._lock:
            keys = [k for k in self._values if k.startswith(prefix)]
            total = 0
            for key in keys:
                value = self._live(key)
                if value is not None:
                    items = value if isinstance(value, list) else [value]
                    total += len(key) + sum(len(v) for v in items)
            return total

    def snapshot(self) -> dict[str, str | list[str]]:
        """Every live key and its raw value."""
        with self._lock:
            live = {k: self._live(k) for k in list(self._values)}
            return {
                k: v if isinstance(v, str) else list(v) for k, v in live.items() if v is not None
            }


class MemoryStorage:
    """A StorageBackend in a dict keyed by (plugin config id, key)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[int, str], str] = {}
        self._lock = threading.Lock()

    def get(self, plugin_config_id: int, key: str) -> str | None:
        with self._lock:
            return self._rows.get((plugin_config_id, key))

    def set(self, plugin_config_id: int, key: str, value: str) -> None:
        with self._lock:
            self._rows[(plugin_config_id, key)] = value

    def delete(self, plugin_config_id: int, key: str) -> None:
        with self._lock:
            self._rows.pop((plugin_config_id, key), None)

    def usage(self, plugin_config_id: int) -> int:
        with self._lock:
            return sum(len(k) + len(v) for (c, k), v in self._rows.items() if c == plugin_config_id)

    def batch(self, *, hold: bool = False) -> AbstractContextManager[None]:
        # writes land in the dict at once: nothing to gather, nothing to hold
        return nullcontext()

    def write_held(self) -> None:
        return None

    def holding(self) -> bool:
        return False

    def rows(self, plugin_config_id: int) -> dict[str, str]:
        with self._lock:
            return {k: v for (c, k), v in self._rows.items() if c == plugin_config_id}


class MemoryLogSink:
    """A LogSink that keeps entries in order; `read_logs` answers like the SQL one."""

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []
        self._lock = threading.Lock()

    def write(self, entry: LogEntry) -> None:
        with self._lock:
            self.entries.append(entry)

    def read_logs(
        self, plugin_config_id: int, *, level: str | None = None, source: str | None = None
    ) -> list[LogEntry]:
        with self._lock:
            return [
                e
                for e in self.entries
                if e.plugin_config_id == plugin_config_id
                and (level is None or e.level == level)
                and (source is None or e.source == source)
            ]


@dataclass(frozen=True)
class QueuedJob:
    plugin_config_id: int
    team_id: int
    name: str
    payload: Any
    run_at: datetime


class MemoryJobQueue:
    """A JobQueue that holds jobs until `take_due` hands them out."""

    def __init__(self) -> None:
        self.jobs: list[QueuedJob] = []
        self._lock = threading.Lock()

    def enqueue(
        self, *, plugin_config_id: int, team_id: int, name: str, payload: Any, run_at: datetime
    ) -> None:
        with self._lock:
            self.jobs.append(QueuedJob(plugin_config_id, team_id, name, payload, run_at))

    def take_due(self, now: datetime) -> list[QueuedJob]:
        """Remove and return the jobs whose time has come, oldest first."""
        with self._lock:
            due = sorted((j for j in self.jobs if j.run_at <= now), key=lambda j: j.run_at)
            self.jobs = [j for j in self.jobs if j.run_at > now]
        return due


class MemoryCaptureSink:
    """A CaptureSink that keeps the capture messages."""

    def __init__(self) -> None:
        self.messages: list[Mapping[str, Any]] = []

    def capture(self, message: Mapping[str, Any]) -> None:
        self.messages.append(dict(message))


@dataclass
class MemoryErrorSink:
    """An ErrorSink that keeps each config's latest error and the disabled configs."""

    errors: dict[int, Mapping[str, Any]] = field(default_factory=dict)
    history: list[tuple[int, Mapping[str, Any]]] = field(default_factory=list)
    disabled: set[int] = field(default_factory=set)
    budgets: dict[int, dict[str, Any]] = field(default_factory=dict)

    def record(self, plugin_config_id: int, error: Mapping[str, Any]) -> None:
        self.errors[plugin_config_id] = error
        self.history.append((plugin_config_id, error))

    def clear(self, plugin_config_id: int) -> None:
        self.errors.pop(plugin_config_id, None)

    def disable(self, plugin_config_id: int) -> None:
        self.disabled.add(plugin_config_id)

    def budget(self, plugin_config_id: int, state: Mapping[str, Any] | None) -> None:
        if state is None:
            self.budgets.pop(plugin_config_id, None)
        else:
            self.budgets[plugin_config_id] = dict(state)


class StaticGeoIP:
    """A GeoIPReader answering from a dict of ip -> city record."""

    def __init__(self, records: Mapping[str, Mapping[str, Any]]) -> None:
        self._records = {ip: dict(r) for ip, r in records.items()}

    def city(self, ip: str) -> dict[str, Any] | None:
        return self._records.get(ip)


def memory_backends(*, http: HttpClient | None = None) -> RuntimeBackends:
    """Fresh in-process backends for every `meta` field (`http`: what `fetch` uses; by
    default `HttpFixtures`, which answers only what a test declared)."""
    return RuntimeBackends(
        cache=MemoryCache(),
        storage=MemoryStorage(),
        logs=MemoryLogSink(),
        jobs=MemoryJobQueue(),
        captures=MemoryCaptureSink(),
        http=http or HttpFixtures(),
        errors=MemoryErrorSink(),
    )

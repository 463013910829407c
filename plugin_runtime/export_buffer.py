"""The export buffer of one plugin config: batches for `export_events` by size and time.

Numbers and rules are the original's (plugin-contrib `createBuffer`, spec 3.7): an event's
size is the length of its compact JSON; a batch is flushed before an event would take it
over the byte limit, and at the latest `max_seconds` after its first event.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_BUFFER_BYTES = 1_048_576  # 1 MiB of compact JSON per batch
MIN_BUFFER_BYTES = 1
MAX_BUFFER_BYTES = 104_857_600  # 100 MiB
DEFAULT_BUFFER_SECONDS = 10  # a batch waits at most this long for more events
MIN_BUFFER_SECONDS = 1
MAX_BUFFER_SECONDS = 600


def _int_setting(value: Any, default: int, low: int, high: int) -> int:
    try:
        # the original parses base-10 integers: "5.9" is 5, "abc" is the default
        parsed = int(str(value).strip().split(".")[0]) if value not in (None, "") else default
    except ValueError:
        parsed = default
    return max(low, min(high, parsed))


@dataclass(frozen=True)
class BufferSettings:
    max_bytes: int = DEFAULT_BUFFER_BYTES
    max_seconds: int = DEFAULT_BUFFER_SECONDS
    ignore: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BufferSettings:
        """From `exportEventsBufferBytes`, `exportEventsBufferSeconds`, `exportEventsToIgnore`."""
        ignore = str(config.get("exportEventsToIgnore") or "")
        return cls(
            max_bytes=_int_setting(
                config.get("exportEventsBufferBytes"),
                DEFAULT_BUFFER_BYTES,
                MIN_BUFFER_BYTES,
                MAX_BUFFER_BYTES,
            ),
            max_seconds=_int_setting(
                config.get("exportEventsBufferSeconds"),
                DEFAULT_BUFFER_SECONDS,
                MIN_BUFFER_SECONDS,
                MAX_BUFFER_SECONDS,
            ),
            ignore=frozenset(s.strip() for s in ignore.split(",") if s.strip()),
        )


def event_size(event: Mapping[str, Any]) -> int:
    return len(json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=str))


class ExportBuffer:
    """Thread-safe: events come from the exports stage, time flushes from a timer."""

    def __init__(self, settings: BufferSettings) -> None:
        self.settings = settings
        self._events: list[dict[str, Any]] = []
        self._bytes = 0
        self._started: float | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._events)

    def add(self, event: dict[str, Any]) -> list[list[dict[str, Any]]]:
        """Buffer `event` unless its name is ignored; the batches that are now full."""
        if event.get("event") in self.settings.ignore:
            return []
        size = event_size(event)
        ready: list[list[dict[str, Any]]] = []
        with self._lock:
            if self._events and self._bytes + size > self.settings.max_bytes:
                ready.append(self._take())
            self._events.append(event)
            self._bytes += size
            if self._started is None:
                self._started = time.monotonic()
            if self._bytes > self.settings.max_bytes:
                ready.append(self._take())
        return ready

    def due(self, now: float | None = None) -> bool:
        """True when the oldest waiting event has waited `max_seconds`."""
        started = self._started
        moment = time.monotonic() if now is None else now
        return started is not None and moment - started >= self.settings.max_seconds

    def drain(self) -> list[dict[str, Any]]:
        """Everything waiting, as one batch (maybe empty)."""
        with self._lock:
            return self._take()

    def _take(self) -> list[dict[str, Any]]:
        batch, self._events, self._bytes, self._started = self._events, [], 0, None
        return batch

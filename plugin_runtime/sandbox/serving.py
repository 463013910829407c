"""The worker serving one team's sandbox: each backend call the sandbox sends is checked
against what that team may touch, then handed to the real backend.

The sandbox is not trusted to have namespaced anything: a cache key must lie under the
prefix of one of the team's own plugin configs, a storage row, log line, error, job or
metric must name one of them, a captured event is sent for the team whatever it says,
and `fetch` goes through the egress policy of the HTTP client. Arguments are plain data
(the channel carries nothing else); their types and sizes are checked here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from plugin_runtime import telemetry
from plugin_runtime.backends import LogEntry, RuntimeBackends
from plugin_runtime.capabilities import EXPORT_RETRY_JOB
from plugin_runtime.error_recording import ErrorRecorder
from plugin_runtime.errors import StateLimitError
from plugin_runtime.extensions.cache import cache_prefix
from plugin_runtime.extensions.logger import MAX_MESSAGE_CHARS
from plugin_runtime.extensions.metrics import MetricValues
from plugin_runtime.sandbox import protocol
from plugin_runtime.sandbox.limits import Limits, value_bound
from plugin_runtime.types import PluginConfigRef

_CONFIG_KEY = re.compile(r"@plugin-config/(\d+)/")
_LEVELS = frozenset({"debug", "info", "warning", "error"})
_SOURCES = frozenset({"CONSOLE", "PLUGIN", "SYSTEM"})
MAX_ERROR_TYPE_CHARS = 100  # an error class name longer than this is counted as "other"


class ScopeError(PermissionError):
    """A sandbox asked for something outside its team (only a broken sandbox does)."""


@dataclass(frozen=True)
class Member:
    """One plugin config of the team, as the worker knows it."""

    ref: PluginConfigRef
    metrics: MetricValues
    jobs: frozenset[str]


class _Meter:
    """What one config holds in one store, as far as this worker knows: measured in the
    store at the first write, grown by every write served here, and measured again only
    when a write would pass the bound (deletes and expiries are seen then)."""

    def __init__(self, what: str, bound: int, measure: Callable[[], int]) -> None:
        self._what, self._bound, self._measure = what, bound, measure
        self._known: int | None = None

    def admit(self, added: int) -> None:
        if self._known is None or self._known + added > self._bound:
            self._known = self._measure()
            if self._known + added > self._bound:
                raise StateLimitError(
                    f"{self._what} holds {self._known:,} bytes; {added:,} more is over its "
                    f"bound of {self._bound:,} bytes"
                )
        self._known += added


class BackendServer:
    def __init__(
        self,
        backends: RuntimeBackends,
        team_id: int,
        members: Callable[[], Mapping[int, Member]],
        remaining_seconds: Callable[[], float],
        limits: Limits,
    ) -> None:
        self._b = backends
        self._limits = limits
        self._meters: dict[tuple[str, int], _Meter] = {}
        self._team_id = team_id
        self._members = members
        self._remaining = remaining_seconds
        self._recorder = ErrorRecorder(backends.errors, backends.logs)
        self._handlers: dict[str, Callable[..., Any]] = {
            "storage.get": self._storage_get,
            "storage.set": self._storage_set,
            "storage.delete": self._storage_delete,
            "logs.write": self._log,
            "jobs.enqueue": self._enqueue,
            "captures.capture": self._capture,
            "http.request": self._http,
            "geoip.city": self._geoip,
            "errors.record": self._error,
            "errors.clear": lambda cid: self._b.errors.clear(
                self._member(cid).ref.plugin_config_id
            ),
            "metrics.update": self._metric,
        }

    def __call__(self, name: str, args: list[Any]) -> Any:
        handler = self._handlers.get(name)
        if handler is None:
            return self._cache(name.removeprefix("cache."), args)
        return handler(*args)

    def failed(self, name: str, args: list[Any], exc: Exception) -> None:
        """A write nobody waited for failed: recorded against the plugin config that sent it
        (when the call names one of the team's), so the author sees it in the logs."""
        member = self._sender(args)
        if member is not None:
            error = RuntimeError(f"{name} failed: {type(exc).__name__}: {exc}")
            self._recorder.record(member.ref, error)

    def _sender(self, args: list[Any]) -> Member | None:
        first = args[0] if args else None
        if type(first) is str and (match := _CONFIG_KEY.match(first)) is not None:
            first = int(match.group(1))
        if type(first) is dict:
            first = first.get("plugin_config_id")
        return self._members().get(first) if type(first) is int else None

    # -- scope -----------------------------------------------------------------------

    def _member(self, plugin_config_id: Any) -> Member:
        member = self._members().get(plugin_config_id) if type(plugin_config_id) is int else None
        if member is None:
            raise ScopeError(f"plugin config {plugin_config_id!r} is not one of this team's")
        return member

    def _key(self, key: Any) -> str:
        match = _CONFIG_KEY.match(key) if type(key) is str else None
        if match is None:
            raise ScopeError("a cache key outside every plugin config's namespace")
        self._member(int(match.group(1)))
        return str(key)

    def _admit(self, store: str, plugin_config_id: int, values: list[str]) -> None:
        limits = self._limits
        if store == "cache":
            value_bytes, total = limits.cache_value_bytes, limits.cache_total_bytes
        else:
            value_bytes, total = limits.storage_value_bytes, limits.storage_total_bytes
        what = f"meta.{store} of plugin config {plugin_config_id}"
        for value in values:
            value_bound(what, value, value_bytes)
        meter = self._meters.get((store, plugin_config_id))
        if meter is None:
            if store == "cache":
                prefix = cache_prefix(plugin_config_id)
                measure: Callable[[], int] = lambda: self._b.cache.usage(prefix)  # noqa: E731
            else:
                measure = lambda: self._b.storage.usage(plugin_config_id)  # noqa: E731
            meter = self._meters[(store, plugin_config_id)] = _Meter(what, total, measure)
        meter.admit(sum(len(v) for v in values))

    def _cache_write(self, key: str, values: list[str]) -> None:
        match = _CONFIG_KEY.match(key)
        assert match is not None  # `_key` checked it
        self._admit("cache", int(match.group(1)), [key, *values])

    # -- handlers --------------------------------------------------------------------

    def _cache(self, op: str, args: list[Any]) -> Any:
        if not args:
            raise ScopeError("a cache call without a key")
        key, rest = self._key(args[0]), args[1:]
        cache = self._b.cache
        if op == "get" and not rest:
            return cache.get(key)
        if op == "set" and len(rest) == 2:
            self._cache_write(key, [_text(rest[0])])
            return cache.set(key, rest[0], _optional_int(rest[1]))
        if op == "set_if_absent" and len(rest) == 1:
            self._cache_write(key, [_text(rest[0])])
            return cache.set_if_absent(key, rest[0])
        if op == "incr" and len(rest) == 1:
            return cache.incr(key, _int(rest[0]))
        if op == "expire" and len(rest) == 1:
            return cache.expire(key, _int(rest[0]))
        if op == "lpush" and len(rest) == 1 and type(rest[0]) is list:
            values = [_text(v) for v in rest[0]]
            self._cache_write(key, values)
            return cache.lpush(key, values)
        if op == "lrange" and len(rest) == 2:
            return cache.lrange(key, _int(rest[0]), _int(rest[1]))
        if op == "llen" and not rest:
            return cache.llen(key)
        if op == "lpop" and len(rest) == 1:
            return cache.lpop(key, _int(rest[0]))
        if op == "lrem" and len(rest) == 2:
            return cache.lrem(key, _int(rest[0]), _text(rest[1]))
        if op == "delete" and not rest:
            return cache.delete(key)
        raise ScopeError(f"cache.{op} with {len(rest)} arguments")

    def _storage_get(self, cid: Any, key: Any) -> str | None:
        return self._b.storage.get(self._member(cid).ref.plugin_config_id, _text(key))

    def _storage_set(self, cid: Any, key: Any, value: Any) -> None:
        plugin_config_id = self._member(cid).ref.plugin_config_id
        self._admit("storage", plugin_config_id, [_text(key), _text(value)])
        self._b.storage.set(plugin_config_id, key, value)

    def _storage_delete(self, cid: Any, key: Any) -> None:
        self._b.storage.delete(self._member(cid).ref.plugin_config_id, _text(key))

    def _log(self, entry: Any) -> None:
        if type(entry) is not dict:
            raise ScopeError("a log entry that is not an object")
        ref = self._member(entry.get("plugin_config_id")).ref
        level, source = entry.get("level"), entry.get("source")
        self._b.logs.write(
            LogEntry(
                team_id=ref.team_id,
                plugin_id=ref.plugin_id,
                plugin_config_id=ref.plugin_config_id,
                timestamp=_time(entry.get("timestamp")),
                source=source if source in _SOURCES else "CONSOLE",
                level=level if level in _LEVELS else "info",
                message=str(entry.get("message"))[:MAX_MESSAGE_CHARS],
            )
        )

    def _enqueue(self, cid: Any, name: Any, payload: Any, run_at: Any) -> None:
        member = self._member(cid)
        if name not in member.jobs and name != EXPORT_RETRY_JOB:
            raise ScopeError(f"plugin config {cid} defines no job {str(name)[:100]!r}")
        self._b.jobs.enqueue(
            plugin_config_id=member.ref.plugin_config_id,
            team_id=member.ref.team_id,
            name=str(name),
            payload=payload,
            run_at=_time(run_at),
        )

    def _capture(self, message: Any) -> None:
        if type(message) is not dict:
            raise ScopeError("a capture message that is not an object")
        # the event belongs to this team, whatever the sandbox wrote in it
        message["team_id"] = self._team_id
        data = message.get("data")
        if type(data) is str:
            decoded = json.loads(data)
            if type(decoded) is dict:
                decoded["team_id"] = self._team_id
                message["data"] = json.dumps(decoded)
        self._b.captures.capture(message)

    def _http(self, method: Any, url: Any, headers: Any, body: Any, timeout: Any) -> dict[str, Any]:
        if type(headers) is not dict:
            raise ScopeError("fetch headers that are not an object")
        wait = min(float(timeout), self._remaining())
        if wait <= 0:
            raise TimeoutError("the plugin call has no time left for a request")
        response = self._b.http.request(
            _text(method),
            _text(url),
            headers={_text(k): _text(v) for k, v in headers.items()},
            body=None if body is None else protocol.unb64(body),
            timeout=wait,
        )
        return {
            "status": response.status,
            "status_text": response.status_text,
            "headers": response.headers,
            "body": protocol.b64(response.body),
        }

    def _geoip(self, ip: Any) -> dict[str, Any] | None:
        if self._b.geoip is None:
            raise RuntimeError("IP location capabilities are not available")
        return self._b.geoip.city(_text(ip))

    def _error(self, cid: Any, error: Any) -> None:
        if type(error) is not dict:
            raise ScopeError("an error record that is not an object")
        ref = self._member(cid).ref
        self._b.errors.record(ref.plugin_config_id, error)
        name = error.get("name")
        kind = name if type(name) is str and len(name) <= MAX_ERROR_TYPE_CHARS else "other"
        telemetry.ERRORS.add(1, {**telemetry.attributes(ref), "error.type": kind})

    def _metric(self, cid: Any, name: Any, value: Any) -> None:
        metrics = self._member(cid).metrics
        if name in metrics.kinds and type(value) in (int, float):
            metrics.update(name, value)


def _text(value: Any) -> str:
    if type(value) is not str:
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _optional_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def _time(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(_text(value))
    except ValueError:
        return datetime.now(UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

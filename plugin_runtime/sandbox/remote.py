"""The backends `meta` talks to inside a sandbox process: each call is a request to the
worker over the channel (`protocol.BACKEND_CALLS`), which serves it with the real
backend, scoped to this sandbox's team. Nothing here holds a connection, a key or
another team's anything: the worker decides what a request may touch.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from plugin_runtime.backends import HttpResponse, LogEntry, RuntimeBackends
from plugin_runtime.extensions.metrics import MetricValues
from plugin_runtime.sandbox import call_monitor, protocol
from plugin_runtime.sandbox.limits import Limits, value_bound

OUTBOX_BYTES = 1024 * 1024  # writes held back for the next message, at most this much


class Channel:
    """The sandbox's end of the socket; one request in flight at a time (plugin code of a
    sandbox runs on one thread). Writes that need no answer wait in an outbox and go out
    with the next message, in order, so a later read still sees them."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.receiver = protocol.Receiver(sock)
        self._outbox = bytearray()

    def send(self, message: Any) -> None:
        """Send `message` now, after every write waiting in the outbox."""
        self._outbox += protocol.encode(message)
        self.sock.sendall(self._outbox)
        self._outbox.clear()

    def request(self, name: str, *args: Any) -> Any:
        message = {"call": name, "args": list(args)}
        if name in protocol.NO_REPLY:
            self._outbox += protocol.encode(message)
            if len(self._outbox) > OUTBOX_BYTES:
                self.sock.sendall(self._outbox)
                self._outbox.clear()
            return None
        self.send(message)
        answer = self.receiver.receive()
        if "ok" in answer:
            return answer["ok"]
        raise protocol.error_from(answer.get("error"))


class RemoteCache:
    def __init__(self, channel: Channel, value_bytes: int) -> None:
        self._request = channel.request
        self._value_bytes = value_bytes

    def _check(self, key: str, value: str) -> None:
        # here too, so the plugin's own call fails with the reason (the worker, which does
        # not answer writes, checks again and records a refusal against the config)
        value_bound(
            f"meta.cache key {key.partition('/')[2].partition('/')[2]!r}", value, self._value_bytes
        )

    def get(self, key: str) -> str | None:
        value: str | None = self._request("cache.get", key)
        return value

    def set(self, key: str, value: str, ttl_seconds: int | None = None) -> None:
        self._check(key, value)
        self._request("cache.set", key, value, ttl_seconds)

    def set_if_absent(self, key: str, value: str) -> bool:
        self._check(key, value)
        return bool(self._request("cache.set_if_absent", key, value))

    def incr(self, key: str, by: int = 1) -> int:
        return int(self._request("cache.incr", key, by))

    def expire(self, key: str, ttl_seconds: int) -> bool:
        return bool(self._request("cache.expire", key, ttl_seconds))

    def lpush(self, key: str, values: list[str]) -> int:
        for value in values:
            self._check(key, value)
        return int(self._request("cache.lpush", key, values))

    def lrange(self, key: str, start: int, stop: int) -> list[str]:
        return list(self._request("cache.lrange", key, start, stop))

    def llen(self, key: str) -> int:
        return int(self._request("cache.llen", key))

    def lpop(self, key: str, count: int = 1) -> list[str]:
        return list(self._request("cache.lpop", key, count))

    def lrem(self, key: str, count: int, value: str) -> int:
        return int(self._request("cache.lrem", key, count, value))

    def delete(self, key: str) -> None:
        self._request("cache.delete", key)

    def usage(self, prefix: str) -> int:
        raise PermissionError("a sandbox does not measure the cache")


class RemoteStorage:
    def __init__(self, channel: Channel, value_bytes: int) -> None:
        self._request = channel.request
        self._value_bytes = value_bytes

    def get(self, plugin_config_id: int, key: str) -> str | None:
        value: str | None = self._request("storage.get", plugin_config_id, key)
        return value

    def set(self, plugin_config_id: int, key: str, value: str) -> None:
        value_bound(f"meta.storage key {key!r}", value, self._value_bytes)
        self._request("storage.set", plugin_config_id, key, value)

    def delete(self, plugin_config_id: int, key: str) -> None:
        self._request("storage.delete", plugin_config_id, key)

    def usage(self, plugin_config_id: int) -> int:
        raise PermissionError("a sandbox does not measure storage")

    @contextlib.contextmanager
    def batch(self, *, hold: bool = False) -> Iterator[None]:
        # the worker holds the batch scope around the whole request
        yield

    def write_held(self) -> None:
        return None  # the worker stores them

    def holding(self) -> bool:
        return False


class RemoteLogs:
    def __init__(self, channel: Channel) -> None:
        self._request = channel.request

    def write(self, entry: LogEntry) -> None:
        self._request(
            "logs.write",
            {
                "plugin_config_id": entry.plugin_config_id,
                "timestamp": entry.timestamp.isoformat(),
                "source": entry.source,
                "level": entry.level,
                "message": entry.message,
            },
        )


class RemoteJobs:
    def __init__(self, channel: Channel) -> None:
        self._request = channel.request

    def enqueue(
        self, *, plugin_config_id: int, team_id: int, name: str, payload: Any, run_at: datetime
    ) -> None:
        self._request("jobs.enqueue", plugin_config_id, name, payload, run_at.isoformat())


class RemoteCaptures:
    def __init__(self, channel: Channel) -> None:
        self._request = channel.request

    def capture(self, message: Mapping[str, Any]) -> None:
        self._request("captures.capture", dict(message))


class RemoteHttp:
    def __init__(self, channel: Channel) -> None:
        self._request = channel.request

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None,
        body: bytes | None,
        timeout: float,
    ) -> HttpResponse:
        # never longer than what is left of the plugin call (the worker checks it too)
        watch = call_monitor.current_watch()
        if watch is not None:
            timeout = max(0.001, min(timeout, watch.deadline - time.monotonic()))
        answer = self._request(
            "http.request",
            method,
            url,
            dict(headers or {}),
            None if body is None else protocol.b64(body),
            timeout,
        )
        return HttpResponse(
            status=int(answer["status"]),
            status_text=str(answer["status_text"]),
            headers=dict(answer["headers"]),
            body=protocol.unb64(answer["body"]),
        )


class RemoteGeoIP:
    def __init__(self, channel: Channel) -> None:
        self._request = channel.request

    def city(self, ip: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self._request("geoip.city", ip)
        return value


class RemoteErrors:
    def __init__(self, channel: Channel) -> None:
        self._request = channel.request

    def record(self, plugin_config_id: int, error: Mapping[str, Any]) -> None:
        self._request("errors.record", plugin_config_id, dict(error))

    def clear(self, plugin_config_id: int) -> None:
        self._request("errors.clear", plugin_config_id)

    def disable(self, plugin_config_id: int) -> None:
        raise PermissionError("only the worker disables a plugin config")

    def budget(self, plugin_config_id: int, state: Mapping[str, Any] | None) -> None:
        raise PermissionError("only the worker keeps a plugin config's budget")


class RemoteMetricValues(MetricValues):
    """A config's metric values; every update is checked here and forwarded to the worker,
    which keeps the values the runtime reads."""

    def __init__(self, kinds: Mapping[str, str], channel: Channel, plugin_config_id: int) -> None:
        super().__init__(kinds)
        self._request = channel.request
        self._config_id = plugin_config_id

    def update(self, name: str, value: float) -> None:
        if name not in self.kinds:
            raise KeyError(name)
        self._request("metrics.update", self._config_id, name, value)


def remote_backends(channel: Channel, *, geoip: bool, limits: Limits) -> RuntimeBackends:
    return RuntimeBackends(
        cache=RemoteCache(channel, limits.cache_value_bytes),
        storage=RemoteStorage(channel, limits.storage_value_bytes),
        logs=RemoteLogs(channel),
        jobs=RemoteJobs(channel),
        captures=RemoteCaptures(channel),
        http=RemoteHttp(channel),
        errors=RemoteErrors(channel),
        geoip=RemoteGeoIP(channel) if geoip else None,
    )

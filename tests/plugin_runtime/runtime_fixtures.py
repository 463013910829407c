"""Building plugin configs and runtimes on in-memory backends for the runtime's tests."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from plugin_runtime.backends import HttpClient, RuntimeBackends, StorageBackend
from plugin_runtime.backends.http_fixtures import HttpFixtures
from plugin_runtime.backends.memory import (
    MemoryCache,
    MemoryCaptureSink,
    MemoryErrorSink,
    MemoryJobQueue,
    MemoryLogSink,
    MemoryStorage,
)
from plugin_runtime.exports import ExportFailure
from plugin_runtime.isolation import PluginExecutor
from plugin_runtime.runtime import PluginRuntime
from plugin_runtime.sandbox.limits import DEFAULT_MEMORY_BYTES, Limits
from plugin_runtime.setup_retry import SetupRetryPolicy
from plugin_runtime.types import PluginConfigRecord, PluginSource

TEAM = 2


def record(
    code: str,
    *,
    id: int = 39,
    plugin_id: int = 60,
    name: str = "test-plugin",
    team_id: int = TEAM,
    order: int = 0,
    config: dict[str, Any] | None = None,
    plugin_json: dict[str, Any] | None = None,
) -> PluginConfigRecord:
    source = PluginSource(
        id=plugin_id,
        name=name,
        plugin_json={"name": name, **(plugin_json or {})},
        files={"plugin.py": textwrap.dedent(code)},
    )
    return PluginConfigRecord(
        id=id, team_id=team_id, plugin=source, order=order, config=config or {}
    )


def event(name: str = "$test", **properties: Any) -> dict[str, Any]:
    return {
        "event": name,
        "distinct_id": "my_id",
        "team_id": TEAM,
        "uuid": "017cc6d8-0001-0001-8000-000000000001",
        "properties": dict(properties),
        "ip": "127.0.0.1",
        "site_url": "http://localhost",
        "now": "2021-10-28T12:00:00.000Z",
    }


@dataclass
class Harnessed:
    runtime: PluginRuntime
    backends: RuntimeBackends
    cache: MemoryCache
    storage: Any  # MemoryStorage unless a test gave its own
    logs: MemoryLogSink
    jobs: MemoryJobQueue
    captures: MemoryCaptureSink
    errors: MemoryErrorSink
    http: HttpFixtures
    failures: list[ExportFailure] = field(default_factory=list)


def make_runtime(
    *,
    attempts: int = 3,
    base_delay: float = 0.01,
    timeout: float = 5.0,
    tick: float = 0.05,
    memory_bytes: int | None = None,
    http: HttpClient | None = None,
    threads: int = 2,
    limits: Limits | None = None,
    storage: StorageBackend | None = None,
) -> Harnessed:
    cache, logs = MemoryCache(), MemoryLogSink()
    storage = MemoryStorage() if storage is None else storage
    jobs, captures, errors, http_client = (
        MemoryJobQueue(),
        MemoryCaptureSink(),
        MemoryErrorSink(),
        HttpFixtures(),
    )
    backends = RuntimeBackends(
        cache=cache,
        storage=storage,
        logs=logs,
        jobs=jobs,
        captures=captures,
        http=http_client if http is None else http,
        errors=errors,
    )
    failures: list[ExportFailure] = []
    runtime = PluginRuntime(
        backends=backends,
        limits=limits
        or Limits(timeout_seconds=timeout, memory_bytes=memory_bytes or DEFAULT_MEMORY_BYTES),
        executor=PluginExecutor(threads=threads),
        setup_retry=SetupRetryPolicy(attempts=attempts, base_delay_seconds=base_delay),
        on_export_failure=failures.append,
        export_tick_seconds=tick,
    )
    return Harnessed(
        runtime, backends, cache, storage, logs, jobs, captures, errors, http_client, failures
    )

"""The plugin runtime of a process, with the backends of its run mode.

Cluster: Redis for `meta.cache` and `utils.cursor`, Postgres for storage, logs and errors,
the input topic for `posthog.capture`. Embedded: an in-process cache and the embedded
SQLite file; captured events wait in memory for the embedded driver to ingest them.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine

from app.capture_sink import KafkaCaptureSink
from app.settings import Settings
from plugin_runtime.backends import CaptureSink, GeoIPReader, RuntimeBackends
from plugin_runtime.backends.geoip import shared_geoip
from plugin_runtime.backends.http import UrllibHttpClient
from plugin_runtime.backends.memory import MemoryCache, MemoryCaptureSink, MemoryJobQueue
from plugin_runtime.backends.redis import RedisCache
from plugin_runtime.backends.sql import SqlErrorSink, SqlLogSink, SqlStorage
from plugin_runtime.exports import ExportFailure
from plugin_runtime.isolation import PluginExecutor
from plugin_runtime.runtime import PluginRuntime
from plugin_runtime.sandbox.limits import Limits

log = logging.getLogger(__name__)

MIB = 1024 * 1024
ExportFailureHook = Callable[[ExportFailure], Awaitable[None] | None]


@dataclass
class PluginHost:
    runtime: PluginRuntime
    backends: RuntimeBackends
    closers: list[Callable[[], None]] = field(default_factory=list)

    async def run_due_jobs(self) -> int:
        """Run the plugin jobs (and export retries) whose time has come; returns how many."""
        jobs = self.backends.jobs
        if not isinstance(jobs, MemoryJobQueue):
            return 0
        due = jobs.take_due(datetime.now(UTC))
        for job in due:
            try:
                await self.runtime.run_job(job.plugin_config_id, job.name, job.payload)
            except Exception:
                # the runtime records the plugin's error; one job never stops the others
                log.exception("job %s of plugin config %s failed", job.name, job.plugin_config_id)
        return len(due)

    async def close(self) -> None:
        await self.runtime.close()
        await self.run_due_jobs()
        jobs = self.backends.jobs
        if isinstance(jobs, MemoryJobQueue) and jobs.jobs:
            log.warning("%d plugin jobs were still scheduled at shutdown", len(jobs.jobs))
        for close in reversed(self.closers):
            close()


def _geoip(settings: Settings) -> GeoIPReader | None:
    return None if settings.DISABLE_MMDB else shared_geoip(settings.MMDB_PATH)


def open_host(
    settings: Settings,
    engine: Engine,
    *,
    embedded: bool,
    on_export_failure: ExportFailureHook | None = None,
) -> PluginHost:
    """A runtime with no configs loaded yet; `host.runtime.load(...)` loads them."""
    logs = SqlLogSink(engine, instance_id=f"{socket.gethostname()}:{os.getpid()}")
    captures: CaptureSink
    if embedded:
        cache: MemoryCache | RedisCache = MemoryCache()
        captures = MemoryCaptureSink()
    else:
        cache = RedisCache.from_url(settings.REDIS_URL)
        captures = KafkaCaptureSink(settings)
    backends = RuntimeBackends(
        cache=cache,
        storage=SqlStorage(engine),
        logs=logs,
        # scheduled jobs are kept in process until the jobs topology takes them
        jobs=MemoryJobQueue(),
        captures=captures,
        http=UrllibHttpClient(allowed_hosts=settings.FETCH_ALLOWED_HOSTS.split(",")),
        errors=SqlErrorSink(engine),
        geoip=_geoip(settings),
    )
    executor = PluginExecutor(threads=settings.worker_concurrency)
    runtime = PluginRuntime(
        backends=backends,
        limits=Limits(
            timeout_seconds=settings.TASK_TIMEOUT,
            memory_bytes=settings.PLUGIN_CALL_MEMORY_MB * MIB,
            cache_value_bytes=settings.PLUGIN_CACHE_VALUE_MAX_KB * 1024,
            cache_total_bytes=settings.PLUGIN_CACHE_MAX_MB * MIB,
            storage_value_bytes=settings.PLUGIN_STORAGE_VALUE_MAX_KB * 1024,
            storage_total_bytes=settings.PLUGIN_STORAGE_MAX_MB * MIB,
        ),
        executor=executor,
        on_export_failure=on_export_failure,
        max_sandboxes=settings.SANDBOX_MAX_PROCESSES,
    )
    host = PluginHost(runtime=runtime, backends=backends)
    host.closers.extend([executor.close, logs.close])
    if isinstance(cache, RedisCache):
        host.closers.append(cache.close)
    if isinstance(captures, KafkaCaptureSink):
        host.closers.append(captures.close)
    return host

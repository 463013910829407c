"""The plugin runtime of a process, with the backends of its run mode.

Cluster: Redis for `meta.cache` and `utils.cursor`, Postgres for storage, logs, errors and
jobs, the input topic for `posthog.capture`. Embedded: an in-process cache and the embedded
SQLite file (jobs included); captured events wait in memory for the embedded driver to ingest them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.capture_sink import KafkaCaptureSink
from app.connections import plugin_cache_redis
from app.settings import Settings
from plugin_runtime.backends import CaptureSink, GeoIPReader, RuntimeBackends
from plugin_runtime.backends.geoip import shared_geoip
from plugin_runtime.backends.http import UrllibHttpClient
from plugin_runtime.backends.memory import MemoryCache, MemoryCaptureSink
from plugin_runtime.backends.redis import RedisCache
from plugin_runtime.backends.sql import SqlErrorSink, SqlLogSink, SqlStorage
from plugin_runtime.backends.sql_jobs import ClaimedJob, SqlJobQueue
from plugin_runtime.budgets import BudgetPolicy
from plugin_runtime.exports import ExportFailure
from plugin_runtime.isolation import PluginExecutor
from plugin_runtime.runtime import PluginRuntime
from plugin_runtime.sandbox.limits import Limits
from plugin_runtime.types import JobOutcome

log = logging.getLogger(__name__)

MIB = 1024 * 1024
JOBS_PER_POLL = 100  # jobs one worker claims at a time; the rest wait for the next poll
JOB_RELEASE_DELAY = timedelta(seconds=10)
JOB_LEASE_MARGIN = timedelta(seconds=15)  # a (re)loading sandbox and the stores' round trips
ExportFailureHook = Callable[[ExportFailure], Awaitable[None] | None]


@dataclass
class PluginHost:
    runtime: PluginRuntime
    backends: RuntimeBackends
    jobs: SqlJobQueue
    closers: list[Callable[[], None]] = field(default_factory=list)

    async def run_due_jobs(self, limit: int = JOBS_PER_POLL) -> int:
        """Run the plugin jobs (and export retries) whose time has come; returns how many.

        Every worker polls; each due job is claimed by one of them (`SqlJobQueue`).
        """
        try:
            return await self._run_due(limit)
        except (SQLAlchemyError, OSError) as exc:
            # the database is away: the jobs wait in it (a claimed one until its lease
            # ends); the next poll tries again
            log.warning("plugin jobs wait: the database cannot be used: %s", exc)
            return 0

    async def _run_due(self, limit: int) -> int:
        queue = self.jobs
        due = await asyncio.to_thread(queue.claim_due, datetime.now(UTC), limit)
        for job in due:
            if not await asyncio.to_thread(queue.start, job, datetime.now(UTC)):
                continue  # held too long behind earlier jobs: another worker has it now
            try:
                outcome = await self.runtime.run_job(
                    job.plugin_config_id, job.name, job.payload, retries_so_far=job.attempts - 1
                )
            except Exception as exc:
                # not the plugin's doing (a store or the sandbox pool failed): try again
                # later without spending one of the job's attempts
                log.exception(
                    "job %s of plugin config %s could not run", job.name, job.plugin_config_id
                )
                await asyncio.to_thread(
                    queue.release,
                    job,
                    run_at=datetime.now(UTC) + JOB_RELEASE_DELAY,
                    error=f"{type(exc).__name__}: {exc}",
                )
                continue
            await asyncio.to_thread(self._settle, job, outcome)
        return len(due)

    def _settle(self, job: ClaimedJob, outcome: JobOutcome) -> None:
        if outcome.state == "done":
            self.jobs.succeeded(job)
        elif outcome.state == "later" and outcome.delay is not None:
            self.jobs.release(
                job, run_at=datetime.now(UTC) + outcome.delay, error=outcome.error or ""
            )
        elif outcome.state == "retry" and outcome.delay is not None:
            self.jobs.retry(
                job, run_at=datetime.now(UTC) + outcome.delay, error=outcome.error or ""
            )
        else:
            log.warning(
                "job %s of plugin config %s failed: %s",
                job.name,
                job.plugin_config_id,
                outcome.error,
            )
            self.jobs.failed(job, outcome.error or "failed")

    async def close(self) -> None:
        # jobs not yet due stay in plugin_jobs and run when a worker runs again
        await self.runtime.close()
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
    # a started job is another worker's to take only once its call could not still be
    # running: the sandbox stops every call at TASK_TIMEOUT
    jobs = SqlJobQueue(engine, lease=timedelta(seconds=settings.TASK_TIMEOUT) + JOB_LEASE_MARGIN)
    logs = SqlLogSink(engine, instance_id=f"{socket.gethostname()}:{os.getpid()}")
    captures: CaptureSink
    if embedded:
        cache: MemoryCache | RedisCache = MemoryCache()
        captures = MemoryCaptureSink()
    else:
        cache = RedisCache(plugin_cache_redis(settings))
        captures = KafkaCaptureSink(settings)
    backends = RuntimeBackends(
        cache=cache,
        storage=SqlStorage(engine),
        logs=logs,
        jobs=jobs,
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
        budget=BudgetPolicy(
            seconds=settings.PLUGIN_BUDGET_SECONDS,
            refill_per_second=settings.PLUGIN_BUDGET_REFILL_PER_SECOND,
            failure_seconds=settings.PLUGIN_BUDGET_FAILURE_SECONDS,
            pause_seconds=settings.PLUGIN_BUDGET_PAUSE_SECONDS,
            pauses_before_disable=settings.PLUGIN_BUDGET_PAUSES_BEFORE_DISABLE,
            pause_window_seconds=settings.PLUGIN_BUDGET_PAUSE_WINDOW_SECONDS,
            degraded_below=settings.PLUGIN_BUDGET_DEGRADED_BELOW,
        ),
    )
    host = PluginHost(runtime=runtime, backends=backends, jobs=jobs)
    host.closers.extend([executor.close, logs.close])
    if isinstance(cache, RedisCache):
        host.closers.append(cache.close)
    if isinstance(captures, KafkaCaptureSink):
        host.closers.append(captures.close)
    return host

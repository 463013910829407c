"""Handing a batch to `export_events`, with the original's retries (spec 3.7).

A `RetryError` re-enqueues the batch as the job `exportEventsWithRetry` after
3 x 2^(retry) seconds (6 s, 12 s, ... 98304 s) up to 15 times, so retries survive a
restart in a persistent job queue. No batch is lost silently: one that exhausts its
retries, or fails with any other error, comes back as an `ExportFailure` (logged with
its size and recorded against the plugin config) for the app's failure hook.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from plugin_runtime.backends import JobQueue
from plugin_runtime.capabilities import EXPORT_RETRY_JOB
from plugin_runtime.error_recording import ErrorRecorder
from plugin_runtime.errors import RetryError
from plugin_runtime.sandboxed import SandboxedInstance

EXPORT_MAX_RETRIES = 15  # retries after the first attempt: 16 attempts per batch
EXPORT_RETRY_BASE_SECONDS = 3  # retry n waits 3 x 2^n seconds


def retry_delay(retries_so_far: int) -> timedelta:
    """How long the next retry waits after `retries_so_far` retries."""
    return timedelta(seconds=EXPORT_RETRY_BASE_SECONDS * 2 ** (retries_so_far + 1))


@dataclass(frozen=True)
class ExportFailure:
    """A batch `export_events` did not take, for the app to route (e.g. a dead-letter topic)."""

    plugin_config_id: int
    team_id: int
    plugin_name: str
    events: list[dict[str, Any]]
    error: str
    attempts: int


def new_payload(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """The `exportEventsWithRetry` payload of a freshly flushed batch."""
    return {"batch": batch, "batchId": random.randrange(1_000_000), "retriesPerformedSoFar": 0}


def export_with_retry(
    instance: SandboxedInstance,
    payload: dict[str, Any],
    *,
    jobs: JobQueue,
    recorder: ErrorRecorder,
) -> ExportFailure | None:
    """Run one export attempt of `payload`; blocks (runs on a plugin thread)."""
    batch: list[dict[str, Any]] = list(payload.get("batch") or [])
    retries = int(payload.get("retriesPerformedSoFar") or 0)
    n = len(batch)
    seen = instance.metrics.update
    if retries == 0:
        seen("events_seen", n)
    try:
        instance.call("export_events", batch, expected=(RetryError,))
    except RetryError as exc:
        seen("retry_errors", n)
        if retries < EXPORT_MAX_RETRIES:
            jobs.enqueue(
                plugin_config_id=instance.ref.plugin_config_id,
                team_id=instance.ref.team_id,
                name=EXPORT_RETRY_JOB,
                payload={**payload, "retriesPerformedSoFar": retries + 1},
                run_at=datetime.now(UTC) + retry_delay(retries),
            )
            return None
        recorder.record(instance.ref, exc)
        return _failed(
            instance,
            batch,
            f"RetryError after {retries + 1} attempts: {exc}",
            retries + 1,
            recorder,
        )
    except Exception as exc:
        # already recorded against the config by the call stack
        seen("other_errors", n)
        return _failed(instance, batch, f"{type(exc).__name__}: {exc}", retries + 1, recorder)
    seen("events_delivered_successfully", n)
    return None


def _failed(
    instance: SandboxedInstance,
    batch: list[dict[str, Any]],
    error: str,
    attempts: int,
    recorder: ErrorRecorder,
) -> ExportFailure:
    instance.metrics.update("undelivered_events", len(batch))
    # the error itself is in the plugin's log already (recorded once, as the plugin's)
    recorder.system(
        instance.ref,
        "error",
        f"export_events did not take a batch of {len(batch)} events "
        f"after {attempts} attempt(s); the batch is not exported",
    )
    return ExportFailure(
        plugin_config_id=instance.ref.plugin_config_id,
        team_id=instance.ref.team_id,
        plugin_name=instance.ref.plugin_name,
        events=batch,
        error=error,
        attempts=attempts,
    )

"""Plugin jobs and export retries whose time has come, run every second; the plugins'
metrics merged into the store every few seconds."""

from __future__ import annotations

from app.plugin_metrics import FLUSH_SECONDS
from topologies.resources import context_resources
from topologies.topics import app

JOB_POLL_SECONDS = 1.0


@app.timer(JOB_POLL_SECONDS)
async def run_due_jobs() -> None:
    resources = context_resources()
    if resources is not None:
        await resources.host.run_due_jobs()


@app.timer(FLUSH_SECONDS)
async def flush_plugin_metrics() -> None:
    resources = context_resources()
    if resources is not None:
        await resources.metrics.flush()

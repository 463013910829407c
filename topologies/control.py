"""Live plugin reloads: besides the reload channel (listened to from the worker's
resources service), every worker checks the plugin tables now and then, so a missed
announcement costs seconds, never a stale plugin (`app/reloads.py`)."""

from __future__ import annotations

from app.reloads import RELOAD_CHECK_SECONDS
from topologies.resources import context_reloader
from topologies.topics import app


@app.timer(RELOAD_CHECK_SECONDS)
async def check_plugin_tables() -> None:
    reloader = context_reloader()
    if reloader is not None:
        await reloader.check()

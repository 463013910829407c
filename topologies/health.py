"""Liveness: the worker writes a ping to Redis that `plugin-server --healthcheck` reads."""

from __future__ import annotations

from app.health import PING_INTERVAL_SECONDS, write_ping
from topologies.topics import app, settings


@app.timer(PING_INTERVAL_SECONDS)
async def ping() -> None:
    await write_ping(settings)

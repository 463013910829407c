"""Liveness: the worker writes a ping to Redis that `plugin-server --healthcheck` reads,
and answers GET /_health itself (for a per-process probe)."""

from __future__ import annotations

from faust.web import Request, Response, View

from app.health import PING_INTERVAL_SECONDS, write_ping
from topologies.resources import is_ready
from topologies.topics import app, settings


@app.timer(PING_INTERVAL_SECONDS)
async def ping() -> None:
    await write_ping(settings)


@app.page("/_health")
class Health(View):
    async def get(self, request: Request) -> Response:
        if not is_ready():
            return self.json({"status": "starting"}, status=503)
        return self.json({"status": "ok"})

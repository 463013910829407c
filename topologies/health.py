"""Liveness: the worker writes a ping to Redis that `plugin-server --healthcheck` reads,
and answers GET /_health itself (for a per-process probe)."""

from __future__ import annotations

from faust.web import Request, Response, View

from app.health import PING_INTERVAL_SECONDS, write_ping
from app.pipeline import stalls
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
        waiting = stalls.current()
        if waiting:
            # still 200: a worker waiting for a server is alive and will go on by itself
            return self.json(
                {
                    "status": "stalled",
                    "stalled": {
                        stage: {"reason": s.reason, "since": s.since, "attempts": s.attempts}
                        for stage, s in waiting.items()
                    },
                }
            )
        return self.json({"status": "ok"})

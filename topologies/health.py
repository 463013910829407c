"""Health and metrics. The worker writes a ping to Redis that `plugin-server --healthcheck`
reads, and answers GET /_health itself: 200 when it can do its work, 503 with the
reasons when a store it writes to cannot be used (for a per-process readiness probe).
GET /_alive answers while the event loop runs (a liveness probe); GET /metrics is its
OpenTelemetry metrics in Prometheus' text format."""

from __future__ import annotations

from faust.web import Request, Response, View

from app import telemetry
from app.health import PING_INTERVAL_SECONDS, write_ping
from app.pipeline import stalls
from topologies.resources import context_resources
from topologies.topics import app, settings

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4"  # the exposition format's


@app.timer(PING_INTERVAL_SECONDS)
async def ping() -> None:
    await write_ping(settings)


@app.page("/metrics")
class Metrics(View):
    """The worker's OpenTelemetry metrics in Prometheus' text format."""

    async def get(self, request: Request) -> Response:
        return self.bytes(telemetry.prometheus_text(), content_type=PROMETHEUS_CONTENT_TYPE)


@app.page("/_alive")
class Alive(View):
    """200 while the worker's event loop answers: a liveness probe that, unlike /_health,
    stays up while a store is down (restarting the worker would not bring it back)."""

    async def get(self, request: Request) -> Response:
        return self.json({"status": "alive"})


@app.page("/_health")
class Health(View):
    async def get(self, request: Request) -> Response:
        resources = context_resources()
        if resources is None:
            return self.json({"status": "starting"}, status=503)
        problems = await resources.readiness.problems()
        waiting = {
            stage: {"reason": s.reason, "since": s.since, "attempts": s.attempts}
            for stage, s in stalls.current().items()
        }
        if problems:
            # not ready: a store it writes to cannot be used; the stages wait for it and
            # go on by themselves when it is back
            body = {"status": "unavailable", "stores": problems, "stalled": waiting}
            return self.json(body, status=503)
        if waiting:
            # the stores answer again; the waiting stages are about to go on
            return self.json({"status": "stalled", "stalled": waiting})
        return self.json({"status": "ok"})

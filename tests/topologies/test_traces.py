"""Traces over OTLP: a captured event's trace from the capture endpoint through every stage,
across the Kafka hops, received by an OTLP/HTTP endpoint the test runs."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from app.local_cluster import LocalCluster
from tests.topologies.helpers import free_port

pytestmark = pytest.mark.integration
TOKEN = "phc_traces_test"
EVENT = "plugin_server.event.uuid"
STAGES = ("parse", "plugins", "persons", "write", "exports")


class Collector:
    """An OTLP/HTTP endpoint: keeps the spans it is sent, takes metrics and drops them."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []

    async def traces(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    attributes = {a.key: a.value.string_value for a in span.attributes}
                    self.spans.append({
                        "name": span.name, "trace": span.trace_id.hex(),
                        "parent": span.parent_span_id.hex(), "id": span.span_id.hex(),
                        "links": [link.trace_id.hex() for link in span.links],
                        "attributes": attributes,
                    })  # fmt: skip
        return web.Response(content_type="application/x-protobuf", body=b"")

    async def metrics(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(content_type="application/x-protobuf", body=b"")


async def test_a_captured_event_is_traced_through_every_stage() -> None:
    collector = Collector()
    server = web.Application()
    server.add_routes(
        [web.post("/v1/traces", collector.traces), web.post("/v1/metrics", collector.metrics)]
    )
    runner = web.AppRunner(server)
    await runner.setup()
    otlp_port, http_port, run = free_port(), free_port(), uuid.uuid4().hex[:8]
    await web.TCPSite(runner, "127.0.0.1", otlp_port).start()
    env = {
        **os.environ,
        "WORKER_HTTP_PORT": str(http_port),
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "1",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    }
    try:
        async with LocalCluster(
            run_id=run, input_topic=f"traces_{run}_input", events_store="postgres", env=env
        ) as cluster:
            conn = await asyncpg.connect(
                cluster.database_url.replace("postgres://", "postgresql://", 1)
            )
            await conn.execute("UPDATE teams SET api_token = $1 WHERE id = 1", TOKEN)
            await conn.close()
            event_uuid = str(uuid.uuid4())
            body = {"api_key": TOKEN, "event": "traced", "distinct_id": "t-1", "uuid": event_uuid}
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"http://127.0.0.1:{http_port}/capture", json=body) as answer,
            ):
                assert answer.status == 200, await answer.text()
            await cluster.wait_for(lambda rows: rows >= 2, "1 = 1", timeout=60)  # and warm-up
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                mine = [
                    s
                    for s in collector.spans
                    if s["attributes"].get("plugin_server.event.uuid") == event_uuid
                ]
                if {s["name"] for s in mine} >= {"parse", "plugins", "persons", "write", "exports"}:
                    break
                await asyncio.sleep(0.3)
    finally:
        await runner.cleanup()

    by_name = {s["name"]: s for s in mine}
    send = (
        by_name["send events_plugin_ingestion"]
        if "send events_plugin_ingestion" in by_name
        else next(s for s in mine if s["name"].startswith("send "))
    )
    # one trace from the capture endpoint's producer span to the last stage
    assert {s["trace"] for s in mine} == {send["trace"]}
    for stage in STAGES:
        assert by_name[stage]["parent"] == send["id"], stage
    # the batch spans link to the event's trace
    batches = [s for s in collector.spans if s["name"] == "process write"]
    assert any(send["trace"] in s["links"] for s in batches)

"""A worker's OpenTelemetry metrics on GET /metrics (Prometheus' text format), and /_alive."""

from __future__ import annotations

import os
import uuid

import aiohttp
import pytest

from app.local_cluster import LocalCluster, capture_message
from tests.topologies.helpers import free_port, metric

pytestmark = pytest.mark.integration

EVENTS = 30


async def test_the_worker_serves_stage_plugin_and_store_metrics() -> None:
    run, port = uuid.uuid4().hex[:8], free_port()
    async with LocalCluster(
        run_id=run,
        input_topic=f"metrics_{run}_input",
        events_store="postgres",
        env={**os.environ, "WORKER_HTTP_PORT": str(port)},
    ) as cluster:
        await cluster.produce(
            [capture_message(team_id=1, distinct_id=f"m-{i}", index=i) for i in range(EVENTS)]
        )
        await cluster.wait_for_events(EVENTS, timeout=60)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                text = await response.text()
            async with session.get(f"http://127.0.0.1:{port}/_alive") as response:
                assert response.status == 200  # the chart's liveness probe

    # the warm-up event and ours, through every stage
    for stage in ("parse", "plugins", "persons", "write"):
        assert metric(text, "plugin_server_stage_events_total", stage=stage, outcome="in") >= EVENTS
    assert metric(text, "plugin_server_stage_events_total", stage="write", outcome="out") >= EVENTS
    assert metric(text, "plugin_server_stage_duration_seconds_count", stage="write") >= 1
    assert metric(text, "plugin_server_stage_batch_size_count", stage="parse") >= 1
    assert metric(text, "plugin_server_event_latency_seconds_count") >= EVENTS // 10
    assert metric(text, "plugin_server_store_write_duration_seconds_count", store="events") >= 1
    # lag is reported for the input topic and for the stage topics the agents read
    lags = [line for line in text.splitlines() if line.startswith("plugin_server_consumer_lag{")]
    assert any(f'messaging_destination_name="metrics_{run}_input"' in line for line in lags)
    assert any(f'messaging_destination_name="run_{run}_parse"' in line for line in lags)
    # the example plugin: process_event and on_event for each event, its budget healthy
    assert metric(text, "plugin_server_plugin_calls_total", plugin="Event stamp") >= 2 * EVENTS
    assert metric(text, "plugin_server_plugin_duration_seconds_count", plugin="Event stamp") >= 1
    assert "plugin_server_plugin_budget_state" in text and 'state="healthy"' in text

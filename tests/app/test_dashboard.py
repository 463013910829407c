"""The Grafana dashboard asks only for metrics the worker exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from app import telemetry
from app.pipeline import telemetry as pipeline
from app.pipeline.output import StageOutput
from app.plugin_metrics import MetricsFlusher
from plugin_runtime import telemetry as runtime
from plugin_runtime.types import PluginConfigRef

DASHBOARD = Path(__file__).parents[2] / "charts/plugin-server/dashboards/plugin-server.json"
METRIC = re.compile(r"\bplugin_server_[a-z_]+")


REF = PluginConfigRef(1, 2, 3, "p")


class OneConfig:
    """A runtime with one loaded config, for the budget gauge to report."""

    def observed_configs(self) -> list[tuple[PluginConfigRef, str]]:
        return [(REF, "healthy")]


def exported_names() -> set[str]:
    """The Prometheus names on /metrics once every instrument has recorded something."""
    telemetry.install()
    pipeline.record_stage("write", 2, StageOutput(events=[{}]), 0.01)
    pipeline.consumer_lag[("input", 0)] = 1
    pipeline.record_stored([{"$$input": [0, 1, 1]}] * pipeline.LATENCY_SAMPLE_STRIDE)
    try:
        with pipeline.store_write("events"):
            raise ValueError("refused")
    except ValueError:
        pass
    labels = {"plugin_config_id": 1, "plugin": "p", "team_id": 2}
    runtime.CALLS.add(1, labels)
    runtime.FAILED_CALLS.add(1, labels)
    runtime.ERRORS.add(1, {**labels, "error.type": "ValueError"})
    runtime.DURATION.record(0.1, labels)
    config = OneConfig()
    runtime.watch(config)
    flusher = MetricsFlusher(runtime=None, store=None)  # type: ignore[arg-type]
    flusher.stored[(1, "sent")] = (REF, 1.0)  # as a merge leaves it
    text = telemetry.prometheus_text().decode()
    return {m.group(0) for line in text.splitlines() if (m := METRIC.match(line))}


def test_every_metric_of_the_dashboard_is_exported() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    wanted = {name for expr in exprs for name in METRIC.findall(expr)}
    exported = exported_names()
    assert wanted, "the dashboard names no metric"
    assert wanted <= exported, f"not exported: {sorted(wanted - exported)}"
    # and every metric the worker exports has a panel
    bare = {re.sub(r"_(bucket|count|sum)$", "", n) for n in exported}
    shown = {re.sub(r"_(bucket|count|sum)$", "", n) for n in wanted}
    assert bare <= shown, f"no panel for: {sorted(bare - shown)}"

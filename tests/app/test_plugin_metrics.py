"""The plugins' own meta.metrics, kept in the SQL store across workers and restarts."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.connections import database_url
from app.dev import open_local
from app.embedded import run_chain
from app.settings import load_settings
from app.stores.plugin_metrics import MetricDelta, PluginMetricStore
from tests.app.test_admin_teams import cli

COUNTING = """
def process_event(event, meta):
    meta.metrics["seen"].increment(1)
    meta.metrics["largest"].max(event["properties"].get("size", 0))
    meta.metrics["smallest"].min(event["properties"].get("size", 0))
    return event
"""


def message(index: int, size: int) -> bytes:
    data = {"event": "e", "properties": {"size": size}}
    return json.dumps({
        "team_id": 1, "distinct_id": f"d{index}", "ip": "", "site_url": "", "now": "",
        "uuid": f"01890000-0000-4000-8000-{index:012d}", "data": json.dumps(data),
    }).encode()  # fmt: skip


async def test_counts_add_up_across_flushes_restarts_and_workers(tmp_path: Path) -> None:
    plugin = tmp_path / "counting"
    plugin.mkdir()
    (plugin / "plugin.py").write_text(COUNTING)
    (plugin / "plugin.json").write_text(
        json.dumps({"name": "Counting", "metrics": {"seen": "sum", "largest": "max",
                                                    "smallest": "min"}})
    )  # fmt: skip
    settings = load_settings(DATA_DIR=str(tmp_path / "data"))
    settings, resources, _dir = await open_local(settings, [str(plugin)], {1})
    try:
        await run_chain(resources.context, [message(i, 10 + i) for i in range(5)])
        await resources.metrics.flush()
        await run_chain(resources.context, [message(10 + i, 3 + i) for i in range(4)])
        (config_id,) = {cid for cid, _name in resources.metrics.stored}
        store = PluginMetricStore(resources.engine)
        # another worker's counts for the same config, merged in between
        await store.merge([MetricDelta(config_id, "seen", "sum", 100),
                           MetricDelta(config_id, "largest", "max", 7)])  # fmt: skip
    finally:
        await resources.close()  # the rest is flushed as the worker stops

    engine = create_async_engine(database_url(settings.DATABASE_URL))
    try:
        stored = {m.name: m.value for m in await PluginMetricStore(engine).read(config_id)}
    finally:
        await engine.dispose()
    assert stored == {"seen": 109.0, "largest": 14.0, "smallest": 3.0}
    shown = cli("plugin", "metrics", str(config_id), database=settings.DATABASE_URL)
    assert shown.returncode == 0, shown.stderr
    rows = {line.split()[0]: line.split() for line in shown.stdout.splitlines()[1:]}
    assert rows["seen"][1:3] == ["sum", "109"] and rows["largest"][1:3] == ["max", "14"]
    missing = cli("plugin", "metrics", "99", database=settings.DATABASE_URL)
    assert missing.returncode == 2 and "no plugin config with id 99" in missing.stderr


async def test_merging_folds_each_kind_on_both_databases(sql_engine: AsyncEngine) -> None:
    store = PluginMetricStore(sql_engine)
    first = await store.merge(
        [MetricDelta(7, "sent", "sum", 2), MetricDelta(7, "top", "max", 5),
         MetricDelta(7, "low", "min", 5), MetricDelta(8, "sent", "sum", 1)]
    )  # fmt: skip
    assert first == {(7, "sent"): 2, (7, "top"): 5, (7, "low"): 5, (8, "sent"): 1}
    second = await store.merge(
        [MetricDelta(7, "sent", "sum", 3), MetricDelta(7, "top", "max", 4),
         MetricDelta(7, "low", "min", 1.5)]
    )  # fmt: skip
    assert second == {(7, "sent"): 5, (7, "top"): 5, (7, "low"): 1.5}
    assert [(m.name, m.kind, m.value) for m in await store.read(7)] == [
        ("low", "min", 1.5), ("sent", "sum", 5), ("top", "max", 5)
    ]  # fmt: skip
    assert await store.merge([]) == {}

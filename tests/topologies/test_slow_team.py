"""One team's slow plugin on a real worker: the other team's events in the same
partitions are stored at their own pace, and every slow event is stored too."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import pytest

from app.local_cluster import LocalCluster, capture_message
from app.reloads import announce
from app.settings import load_settings
from app.stores.plugin_configs import ensure_team, install_plugin
from plugin_runtime.loading import load_plugin
from tests.topologies.helpers import stored_count, write_plugin

pytestmark = pytest.mark.integration

SLOW_SECONDS = 1.0
PLUGIN = """
import time

def process_event(event, meta):
    time.sleep(float(meta.config["delay"]))
    event["properties"]["delayed"] = meta.config["delay"]
    return event
"""


def plugin_folder(folder: Path) -> Path:
    delay = {"key": "delay", "type": "string", "default": "0"}
    return write_plugin(folder, PLUGIN, name="delay", config=[delay])


async def add_slow_team(cluster: LocalCluster, plugin: Path, delay: float) -> None:
    """Team 2 with the plugin at `delay` s per event, announced to the running worker."""
    await ensure_team(cluster._engine, 2)
    await install_plugin(
        cluster._engine, load_plugin(plugin), team_id=2, config={"delay": str(delay)}
    )
    await announce(load_settings(**{k: v for k, v in cluster.env.items() if k.isupper()}))
    await asyncio.sleep(2)


async def test_a_slow_team_does_not_hold_up_the_fast_one(tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    plugin = plugin_folder(tmp_path / "delay")
    async with LocalCluster(
        run_id=run,
        input_topic=f"slow_{run}_input",
        events_store="postgres",
        plugin=plugin,
        env={**os.environ, "KAFKA_PRODUCER_MAX_QUEUE_SIZE": "50"},
    ) as cluster:
        await add_slow_team(cluster, plugin, SLOW_SECONDS)
        slow = [capture_message(team_id=2, distinct_id=f"s{i}", index=i) for i in range(8)]
        fast = [capture_message(team_id=1, distinct_id=f"f{i}", index=i) for i in range(200)]
        mixed = [m for pair in zip(slow, fast[:8], strict=True) for m in pair] + fast[8:]
        started = time.monotonic()
        await cluster.produce(mixed)
        while await stored_count(cluster, 1) < len(fast):
            assert time.monotonic() - started < 60
            await asyncio.sleep(0.1)
        fast_done = time.monotonic() - started
        while await stored_count(cluster, 2) < len(slow):
            assert time.monotonic() - started < 120, "slow events lost"
            await asyncio.sleep(0.25)
        slow_done = time.monotonic() - started
    print(f"fast team stored in {fast_done:.1f} s, slow team in {slow_done:.1f} s")
    # 8 slow events are 8 s of plugin time: the fast team does not wait for them
    assert fast_done < len(slow) * SLOW_SECONDS / 2
    assert slow_done >= (len(slow) - 2) * SLOW_SECONDS * 0.9

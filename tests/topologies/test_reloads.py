"""Live reloads on two real workers: a config changed with `plugin-server plugin config`
reaches both within a second or two, without a restart, and no event is lost on the way."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text

from app.local_cluster import LocalCluster, capture_message
from tests.topologies.helpers import write_plugin

pytestmark = pytest.mark.integration

PARTITIONS = 4
PLUGIN = """
def process_event(event, meta):
    event["properties"]["greeting"] = meta.config["greeting"]
    return event
"""


def _plugin(folder: Path) -> Path:
    greeting = {"key": "greeting", "type": "string", "default": "hello"}
    return write_plugin(folder, PLUGIN, name="greeter", config=[greeting])


async def _greetings(cluster: LocalCluster, prefix: str) -> dict[str, str]:
    async with cluster._engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT distinct_id, properties FROM events WHERE distinct_id LIKE :p"),
            {"p": f"{prefix}%"},
        )
        found = {}
        for distinct_id, properties in rows:
            props = properties if isinstance(properties, dict) else orjson.loads(properties)
            found[distinct_id] = props.get("greeting")
        return found


async def _stored(cluster: LocalCluster, prefix: str, count: int) -> dict[str, str]:
    for _ in range(240):
        found = await _greetings(cluster, prefix)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.25)
    raise AssertionError(f"only {len(found)} of {count} events stored; see {cluster.log_path}")


async def test_a_config_change_reaches_both_workers_without_a_restart(tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    async with LocalCluster(
        run_id=run,
        input_topic=f"reload_{run}_input",
        events_store="postgres",
        plugin=_plugin(tmp_path / "plugin"),
        partitions=PARTITIONS,
    ) as cluster:
        await cluster.start_worker()
        pids = [p.pid for p in cluster.processes]

        def batch(tag: str) -> list[tuple[bytes, bytes]]:
            # distinct ids spread over every partition, so both workers take some
            return [
                capture_message(team_id=1, distinct_id=f"{run}-{tag}-{i}", index=i)
                for i in range(40)
            ]

        await cluster.produce(batch("before"))
        before = await _stored(cluster, f"{run}-before-", 40)
        assert set(before.values()) == {"hello"}

        changed = subprocess.run(
            [
                sys.executable,
                "-m",
                "app.cli",
                "plugin",
                "config",
                "1",
                "1",
                "--set",
                "greeting=bye",
            ],
            env={**cluster.env},
            capture_output=True,
            text=True,
            check=False,
        )
        assert changed.returncode == 0, changed.stderr
        started = time.monotonic()
        applied = None
        for attempt in range(40):  # a probe batch every half second until both show it
            tag = f"probe{attempt}"
            await cluster.produce(batch(tag))
            found = await _stored(cluster, f"{run}-{tag}-", 40)
            if set(found.values()) == {"bye"}:
                applied = time.monotonic() - started
                break
            await asyncio.sleep(0.5)
        assert applied is not None, "the change did not reach every worker"
        assert [p.pid for p in cluster.processes] == pids  # no restart
        assert all(p.poll() is None for p in cluster.processes)
        print(f"config change applied on both workers within {applied:.1f} s")
        assert applied < 10

"""One team's slow plugin beside a fast team, on one real worker: the fast team's latency
with and without the slow team, side by side.

    scripts/services.sh up && eval "$(scripts/services.sh env)"
    .venv/bin/python benchmarks/slow_team.py [--seconds 20] [--rate 200] [--slow-delay 2]

Each run starts a worker with the same plugin for two teams (team 1: no delay; team 2:
`--slow-delay` s per event), sends team 1's events at `--rate` per second for
`--seconds` (and, in the second run, one team 2 event per second among them), and
measures produce-to-stored latency of team 1's events. Prints p50/p99 of both runs, the
ratio, team 1's events/s, and whether every team 2 event was stored.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.local_cluster import LocalCluster, capture_message
from tests.topologies.helpers import stored_count
from tests.topologies.test_slow_team import add_slow_team, plugin_folder


def _props(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else orjson.loads(value)  # type: ignore[arg-type]


async def steady(
    cluster: LocalCluster, seconds: float, rate: int, slow_every: int | None
) -> tuple[int, int]:
    """Send team 1's events at `rate`/s (and a team 2 event every `slow_every`); returns
    how many of each were sent."""
    producer = AIOKafkaProducer(**cluster._kafka(), linger_ms=5)
    await producer.start()
    fast = slow = 0
    try:
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate)
            while fast < due:
                key, value = capture_message(team_id=1, distinct_id=f"f{fast % 100}", index=fast)
                await producer.send(cluster.input_topic, value, key=key)
                fast += 1
                if slow_every and fast % slow_every == 0:
                    key, value = capture_message(team_id=2, distinct_id=f"s{slow}", index=slow)
                    await producer.send(cluster.input_topic, value, key=key)
                    slow += 1
            await asyncio.sleep(0.01)
        await producer.flush()
    finally:
        await producer.stop()
    return fast, slow


async def one_run(args: argparse.Namespace, with_slow: bool) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    plugin = plugin_folder(Path(f"/tmp/slow-team-bench-{run}"))
    async with LocalCluster(
        run_id=run,
        input_topic=f"slowbench_{run}_input",
        events_store="postgres",
        plugin=plugin,
        env={**os.environ, "LOG_LEVEL": "warning"},
    ) as cluster:
        await add_slow_team(cluster, plugin, args.slow_delay)
        sent_fast, sent_slow = await steady(
            cluster, args.seconds, args.rate, args.rate if with_slow else None
        )
        deadline = time.monotonic() + args.seconds + 60
        while await stored_count(cluster, 1) < sent_fast and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
        fast_done = time.time()
        async with cluster._engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT properties, created_at FROM events "
                    "WHERE team_id = 1 AND distinct_id <> 'warm-up'"
                )
            )
            pairs = sorted((float(_props(p)["sent"]), stored.timestamp()) for p, stored in rows)
            latencies = sorted(done - sent for sent, done in pairs)
            if os.environ.get("BENCH_TRACE"):
                for sent_at, done in pairs[:: max(1, len(pairs) // 20)]:
                    print(
                        f"  sent +{sent_at - pairs[0][0]:6.2f} s  latency {done - sent_at:6.2f} s"
                    )
        slow_deadline = time.monotonic() + sent_slow * args.slow_delay + 60
        while with_slow and await stored_count(cluster, 2) < sent_slow:
            if time.monotonic() > slow_deadline:
                break
            await asyncio.sleep(0.5)
        slow_stored = await stored_count(cluster, 2) if with_slow else 0
    first = pairs[0][0] if pairs else fast_done
    return {
        "fast_sent": sent_fast,
        "fast_stored": len(latencies),
        "fast_rate": len(latencies) / max(0.001, fast_done - first),
        "p50": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan"),
        "slow_sent": sent_slow,
        "slow_stored": slow_stored,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=int, default=200, help="team 1 events per second")
    parser.add_argument("--slow-delay", type=float, default=2.0, help="team 2's s per event")
    args = parser.parse_args()
    alone = await one_run(args, with_slow=False)
    beside = await one_run(args, with_slow=True)
    print(f"\n{'team 1 (fast)':<34}{'events/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, r in (("alone", alone), (f"beside a {args.slow_delay:g} s/event team", beside)):
        print(f"{name:<34}{r['fast_rate']:>10,.0f}{r['p50']:>10,.0f}{r['p99']:>10,.0f}")
    print(
        f"\np99 beside / alone = {beside['p99'] / alone['p99']:.2f}x (aim: <= 2x); "
        f"team 1 stored {beside['fast_stored']:.0f} of {beside['fast_sent']:.0f}; "
        f"team 2 stored {beside['slow_stored']:.0f} of {beside['slow_sent']:.0f}"
    )


if __name__ == "__main__":
    asyncio.run(main())

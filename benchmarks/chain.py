"""End-to-end throughput and latency of the agent chain on the real broker, beside a bare
passthrough in the same run.

    scripts/services.sh up && eval "$(scripts/services.sh env)"
    .venv/bin/python benchmarks/chain.py [--events 50000] [--runs 3] [--mode cluster|dev|both]
    .venv/bin/python benchmarks/chain.py --new-persons          # a new person per event
    .venv/bin/python benchmarks/chain.py --rate 5000 --duration 30   # steady load
    .venv/bin/python benchmarks/chain.py --rate 5000 --timeline  # ... and its latency by second
    .venv/bin/python benchmarks/chain.py --at-half             # a burst, then half its rate
    .venv/bin/python benchmarks/chain.py --rate 2000 --duration 45 --pause-postgres 15
    .venv/bin/python benchmarks/chain.py --workers 2            # two worker processes
    .venv/bin/python benchmarks/chain.py --live                 # produce while it runs
    .venv/bin/python benchmarks/chain.py --profile /tmp/worker.txt   # py-spy, per stage

Each cluster run puts the capture messages on a fresh input topic, starts `faust -A app
worker` (cluster mode, the example plugin installed for the team, events to ClickHouse)
and waits until every event is stored; then a bare aiokafka+orjson consume -> produce
passthrough moves the same messages on the same broker. Both are timed from their first
output to their last (the chain's first stored batch is not counted), so neither shares
the machine with the producer. `--live` (implied by `--profile` and `--workers`) produces
while the worker runs instead, and adds the CPU-seconds each process used. `--rate`
paces the producer (events/s for `--duration` seconds) and reports p50/p99/max
produce-to-stored latency under that steady load. `--pause-postgres S` stops Postgres
(SIGSTOP) for S seconds from 10 s into the paced run, and reports how long after it was
back the chain took to store what waited and to be under a second late again.

First it warms the broker up with a short paced run, not counted (`--no-warm-up` skips
it): a broker just started runs its code interpreted until the JIT has compiled it, and
in a first run after `scripts/services.sh up` it took four times the CPU it took later
(17.2 CPU-seconds against 4.4 in a 30 s run at 5,000 events/s). Before the chain and
before the passthrough it waits for the machine to be quiet (the broker deletes a
finished run's topics for half a minute). Each run line gives the
workers' and their sandboxes' CPU per event over the timed window, when the sampling
(every 0.25 s, from /proc) covered all of it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.local_cluster import LocalCluster, capture_message
from benchmarks.profile_stages import print_stage_profile

PARTITIONS = 4
DISTINCT_IDS = 1_000
PACE_TICK_SECONDS = 0.01  # the paced producer sends a slice of its rate this often
PAUSE_AFTER_SECONDS = 10.0  # --pause-postgres: into the paced run
CAUGHT_UP_MS = 1_000.0  # --pause-postgres: an event stored this soon after it was sent
# Before the chain and before the passthrough, wait until the machine is this quiet: the
# broker goes on deleting a finished run's topics (and the servers their databases) for
# half a minute or more, and a run measured meanwhile shares the cores with that
QUIET_SHARE = 0.15  # of all cores busy, over one second
SETTLE_TIMEOUT_SECONDS = 120.0
WARM_UP_RATE, WARM_UP_SECONDS = 3_000, 20.0


@dataclass
class RunResult:
    rate: float
    latencies_ms: list[float]
    baseline: float | None = None
    cpu: dict[str, float] | None = None  # CPU-seconds per process group during the run
    # µs of CPU per event of the worker processes and of their sandboxes, between the
    # first and the last stored batch: less moved by a busy machine than the rate is
    per_event_us: dict[str, float] | None = None
    # --pause-postgres: seconds from Postgres back until the events sent before it were all
    # stored, and until the last event more than CAUGHT_UP_MS late was sent
    recovery: tuple[float, float] | None = None
    # --rate: (epoch seconds stored, epoch seconds sent) of each event
    stored: list[tuple[float, float]] | None = None

    def timeline(self) -> list[str]:
        """p50/p99/max latency of the events sent in each second of a paced run: whether
        the tail is a few stalls or a queue that grew."""
        if not self.stored:
            return []
        began = min(sent for _, sent in self.stored)
        by_second: dict[int, list[float]] = {}
        for stored, sent in self.stored:
            by_second.setdefault(int(sent - began), []).append((stored - sent) * 1000)
        lines = [f"{'sent in second':>16}{'events':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"]
        for second, lat in sorted(by_second.items()):
            p50, p99 = statistics.median(lat), percentile(lat, 0.99)
            lines.append(f"{second:>16}{len(lat):>9,}{p50:>9,.0f}{p99:>9,.0f}{max(lat):>9,.0f}")
        return lines

    def line(self, name: str) -> str:
        lat = self.latencies_ms
        if not lat:
            return f"{name:<46}{self.rate:>10,.0f}{'-':>9}{'-':>9}{'-':>9}"
        p50, p99, top = statistics.median(lat), percentile(lat, 0.99), max(lat)
        return f"{name:<46}{self.rate:>10,.0f}{p50:>9,.0f}{p99:>9,.0f}{top:>9,.0f}"


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    """Send all messages as fast as the client goes."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024, acks=1
    )
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


# A paced run's messages are built before it starts, stamped with this time, and the
# stamp replaced as each tick sends them: building one (a uuid, two JSON encodings, two
# formatted times) cost more than sending it, on the machine the worker is measured on
PLACEHOLDER_TIME = 1111111111.111111


def _stamps(when: float) -> tuple[bytes, bytes]:
    """What `capture_message` writes of a time: `properties.sent` and the ISO times."""
    return orjson.dumps(when), time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(when)).encode()


def prepare_paced(
    team_id: int, rate: int, seconds: float, distinct_ids: int
) -> list[tuple[bytes, bytes]]:
    """The messages of a paced run, stamped with `PLACEHOLDER_TIME`."""
    return [
        capture_message(
            team_id=team_id, distinct_id=f"user-{i % distinct_ids}", index=i, now=PLACEHOLDER_TIME
        )
        for i in range(int(rate * seconds) + 1)
    ]


async def produce_paced(
    bootstrap: str, topic: str, prepared: list[tuple[bytes, bytes]], rate: int, seconds: float
) -> int:
    """`rate` of the `prepared` messages a second for `seconds`, each stamped as it is sent;
    returns how many.

    Each tick's slice goes out as one batch per partition, keyed as the default
    partitioner would: a `send` per message cost the producer a third of a core at
    5,000/s, taken from the worker it measures (capture runs on other machines)."""
    placeholder_sent, placeholder_time = _stamps(PLACEHOLDER_TIME)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1)
    await producer.start()
    partitions = sorted(await producer.partitions_for(topic))
    partitioner = DefaultPartitioner()
    partition_of: dict[bytes, int] = {}
    sent = 0
    try:
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            due = min(int(elapsed * rate) + 1, len(prepared))
            stamp_sent, stamp_time = _stamps(time.time())
            batches: dict[int, Any] = {}
            for key, template in prepared[sent:due]:
                value = template.replace(placeholder_sent, stamp_sent, 1).replace(
                    placeholder_time, stamp_time
                )
                partition = partition_of.get(key)
                if partition is None:  # murmur2 in Python: once per distinct id
                    partition = partition_of[key] = partitioner(key, partitions, partitions)
                if partition not in batches:
                    batches[partition] = producer.create_batch()
                batch = batches[partition]
                if batch.append(key=key, value=value, timestamp=None) is None:
                    await _send_batch(producer, batch, topic, partition)
                    batches[partition] = batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            for partition, batch in batches.items():
                await _send_batch(producer, batch, topic, partition)
            sent = max(sent, due)
            await asyncio.sleep(PACE_TICK_SECONDS)
        await producer.flush()
        return sent
    finally:
        await producer.stop()


async def _send_batch(producer: AIOKafkaProducer, batch: Any, topic: str, partition: int) -> None:
    batch.close()
    await producer.send_batch(batch, topic, partition=partition)


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


async def settle() -> None:
    """Wait (up to SETTLE_TIMEOUT_SECONDS) until under QUIET_SHARE of the machine is busy."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while True:
        busy, total = _cpu_ticks()
        await asyncio.sleep(1.0)
        busy_after, total_after = _cpu_ticks()
        share = (busy_after - busy) / max(1, total_after - total)
        if share < QUIET_SHARE:
            return
        if time.monotonic() > deadline:
            print(f"  (the machine stayed {share:.0%} busy; measuring anyway)", flush=True)
            return


async def passthrough(bootstrap: str, source: str, count: int) -> float:
    """Bare aiokafka+orjson consume -> parse, set a property, dump -> produce; events/s."""
    sink = f"{source}_passthrough"
    consumer = AIOKafkaConsumer(
        source, bootstrap_servers=bootstrap, group_id=f"passthrough-{uuid.uuid4()}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024, acks=1
    )
    await consumer.start()
    await producer.start()
    try:
        seen = 0
        started = None
        while seen < count:
            polled = await consumer.getmany(timeout_ms=500, max_records=500)
            if started is None and polled:
                started = time.perf_counter()
            for records in polled.values():
                for record in records:
                    event = orjson.loads(record.value)
                    event["passthrough"] = True
                    await producer.send(sink, orjson.dumps(event), key=record.key)
                    seen += 1
        await producer.flush()
        assert started is not None
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()


async def create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([n for n in names if n in await admin.list_topics()])
    finally:
        await admin.close()


EMBEDDED_BATCH = 1_000  # capture messages per run of the embedded chain


async def embedded_rate(count: int, distinct_ids: int) -> float:
    """The embedded mode (`plugin-server dev`: SQLite, chDB, the example plugin, no
    servers): events/s of the same chain over the same messages, in batches."""
    import tempfile

    from app.dev import EXAMPLE, open_local
    from app.embedded import run_chain
    from app.settings import load_settings

    with tempfile.TemporaryDirectory() as data_dir:
        settings = load_settings(DATA_DIR=data_dir)
        _settings, resources, _dir = await open_local(settings, [str(EXAMPLE / "plugin")], {1})
        try:
            values = [
                capture_message(team_id=1, distinct_id=f"user-{i % distinct_ids}", index=i)[1]
                for i in range(count)
            ]
            started = time.perf_counter()
            for start in range(0, count, EMBEDDED_BATCH):
                await run_chain(resources.context, values[start : start + EMBEDDED_BATCH])
            return count / (time.perf_counter() - started)
        finally:
            await resources.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(worker_pids: set[int]) -> dict[str, float]:
    """CPU time used so far by the worker processes, their sandboxes, and every other
    process by command name (the broker is `java`), from /proc."""
    usage: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        found = _process_stat(int(entry.name))
        if found is None:
            continue
        name, parent, seconds = found
        if name.startswith("kworker/"):
            name = "kworker"  # its name shows the work queue it serves at the moment
        pid = int(entry.name)
        group = "worker" if pid in worker_pids else "sandbox" if parent in worker_pids else name
        usage[group] = usage.get(group, 0.0) + seconds
    return usage


def _process_stat(pid: int) -> tuple[str, int, float] | None:
    """(command name, parent pid, CPU-seconds so far) of a process, None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return stat[stat.index("(") + 1 : stat.rindex(")")], int(fields[1]), seconds


def _process_seconds(pid: int) -> float:
    found = _process_stat(pid)
    return found[2] if found is not None else 0.0


def workers_cpu_seconds(worker_pids: set[int]) -> dict[str, float]:
    """`cpu_seconds` of the workers and their sandboxes only, reading just their entries
    (the whole of /proc, every quarter second, cost the benchmark a twentieth of a core)."""
    usage = {"worker": 0.0, "sandbox": 0.0}
    for pid in worker_pids:
        usage["worker"] += _process_seconds(pid)
        children: set[int] = set()
        for task in Path(f"/proc/{pid}/task").glob("*/children"):  # each thread's own
            try:
                children.update(int(child) for child in task.read_text().split())
            except OSError:
                continue
        usage["sandbox"] += sum(_process_seconds(child) for child in children)
    return usage


class CpuSampler:
    """The CPU time of the workers and their sandboxes, sampled as the run goes, to tell
    what a window of it cost."""

    def __init__(self, worker_pids: set[int]) -> None:
        self._pids = worker_pids
        self.samples: list[tuple[float, dict[str, float]]] = []

    async def run(self) -> None:
        while True:
            usage = workers_cpu_seconds(self._pids)
            self.samples.append((time.time(), {k: usage.get(k, 0.0) for k in GROUPS}))
            await asyncio.sleep(CPU_SAMPLE_SECONDS)

    def between(self, start: float, end: float) -> dict[str, float]:
        """CPU-seconds per group from `start` to `end` (epoch seconds), interpolated."""
        return {g: self._at(end, g) - self._at(start, g) for g in GROUPS}

    def _at(self, when: float, group: str) -> float:
        samples = self.samples
        for (t0, u0), (t1, u1) in itertools.pairwise(samples):
            if t0 <= when <= t1:
                share = (when - t0) / (t1 - t0) if t1 > t0 else 0.0
                return u0[group] + share * (u1[group] - u0[group])
        return samples[-1][1][group]

    @property
    def started(self) -> float:
        """When the first sample was taken (the CPU before it is not known)."""
        return self.samples[0][0] if self.samples else float("inf")


GROUPS = ("worker", "sandbox")
CPU_SAMPLE_SECONDS = 0.25


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    used = {k: v - before.get(k, 0.0) for k, v in after.items()}
    return {k: v for k, v in sorted(used.items(), key=lambda kv: -kv[1]) if v >= 0.05}


async def pause_postgres(seconds: float) -> float:
    """Postgres stopped (every process of it) for `seconds`, PAUSE_AFTER_SECONDS from now;
    returns when it went on again (epoch seconds)."""
    await asyncio.sleep(PAUSE_AFTER_SECONDS)
    subprocess.run(["pkill", "-STOP", "-x", "postgres"], check=True)
    try:
        await asyncio.sleep(seconds)
    finally:
        subprocess.run(["pkill", "-CONT", "-x", "postgres"], check=True)
    return time.time()


def recovery(stored: list[tuple[float, float]], resumed: float) -> tuple[float, float]:
    """Seconds after `resumed` until what was sent before it was stored, and until the last
    event stored more than CAUGHT_UP_MS after it was sent had been sent."""
    drained = max((created for created, sent in stored if sent < resumed), default=resumed)
    late = [sent for created, sent in stored if (created - sent) * 1000 > CAUGHT_UP_MS]
    return drained - resumed, max(0.0, max(late, default=resumed) - resumed)


def start_profiler(pid: int, path: str) -> subprocess.Popen[bytes]:
    """py-spy sampling the worker (and its sandbox processes) until it is interrupted."""
    spy = Path(sys.executable).with_name("py-spy")
    command = [str(spy), "record", "--pid", str(pid), "--subprocesses", "--format", "raw"]
    return subprocess.Popen([*command, "--rate", "200", "--output", path, "--nonblocking"])


def stop_profiler(profiler: subprocess.Popen[bytes]) -> None:
    profiler.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
    profiler.wait(timeout=60)


def is_live(args: argparse.Namespace) -> bool:
    # a second worker would find the queue already drained by the first
    return bool(args.live or args.profile is not None or args.workers > 1)


async def cluster_run(args: argparse.Namespace, distinct_ids: int) -> RunResult:
    bootstrap = os.environ.get("KAFKA_HOSTS", "127.0.0.1:19092")
    run_id = uuid.uuid4().hex[:8]
    input_topic = f"bench_{run_id}_input"
    await create_topic(bootstrap, input_topic)
    # a burst waits on the input topic before the worker starts, as the passthrough's input
    # does: neither shares the machine with the producer, and both are timed from their
    # first output (the chain's first stored batch, whose events are then not counted)
    burst = (
        []
        if args.rate
        else [
            capture_message(team_id=1, distinct_id=f"user-{i % distinct_ids}", index=i)
            for i in range(args.events)
        ]
    )
    live = is_live(args)
    prefill, burst = ([], burst) if live else (burst, [])
    await settle()
    async with LocalCluster(
        run_id=run_id,
        input_topic=input_topic,
        partitions=PARTITIONS,
        owns_input_topic=False,
        prefill=prefill,
    ) as run:
        for _ in range(args.workers - 1):
            await run.start_worker()
        pids = {p.pid for p in run.processes}
        prepared = (
            prepare_paced(run.team_id, args.rate, args.duration, distinct_ids) if args.rate else []
        )
        cpu_before = cpu_seconds(pids)
        sampler = CpuSampler(pids)
        sampling = asyncio.create_task(sampler.run())
        profiler = None
        if args.profile:
            assert run.process is not None
            profiler = start_profiler(run.process.pid, args.profile)
        pausing = (
            asyncio.ensure_future(pause_postgres(args.pause_postgres))
            if args.pause_postgres
            else None
        )
        if args.rate:
            count = await produce_paced(bootstrap, input_topic, prepared, args.rate, args.duration)
        elif live:
            count = len(burst)
            await produce(bootstrap, input_topic, burst)
        else:
            count = len(prefill)
        try:
            stored = await run.wait_for_events(count, timeout=900)
        finally:
            sampling.cancel()
        # prefilled, the work was done while the worker came up: no CPU figures
        cpu = cpu_used(cpu_before, cpu_seconds(pids)) if live or args.rate else None
        if profiler is not None:
            stop_profiler(profiler)
        last_stored = max(created for created, _ in stored)
        if args.rate:
            rate = count / (last_stored - min(sent for _, sent in stored))
            latencies = [(created - sent) * 1000 for created, sent in stored]
        else:
            first_stored = min(created for created, _ in stored)
            in_first = sum(1 for created, _ in stored if created == first_stored)
            rate = (count - in_first) / (last_stored - first_stored)
            latencies = []  # a burst's latencies are its queue: see --rate
        timed_from = min(sent for _, sent in stored) if args.rate else first_stored
        timed = sum(1 for created, _ in stored if created > timed_from)
        per_event = None
        # only when sampling began before the timed window (a queued burst can start
        # being stored before the worker's first sample)
        if timed and sampler.started <= timed_from:
            spent = sampler.between(timed_from, last_stored)
            per_event = {g: spent[g] / timed * 1e6 for g in GROUPS}
        result = RunResult(rate=rate, latencies_ms=latencies, cpu=cpu, per_event_us=per_event)
        if args.rate:
            result.stored = stored
        if pausing is not None:
            result.recovery = recovery(stored, await pausing)
    try:
        if not args.rate:
            await settle()
            result.baseline = await passthrough(bootstrap, input_topic, count)
    finally:
        await delete_topics(bootstrap, [input_topic, f"{input_topic}_passthrough"])
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=1, help="cluster runs, one after another")
    parser.add_argument(
        "--mode",
        choices=["cluster", "dev", "both"],
        default="cluster",
        help="the worker on Kafka beside a passthrough, the embedded mode, or both",
    )
    parser.add_argument(
        "--distinct-ids", type=int, default=DISTINCT_IDS, help="distinct ids the events cycle"
    )
    parser.add_argument(
        "--new-persons", action="store_true", help="a new distinct id (a new person) per event"
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--rate", type=int, help="steady load: events/s for --duration seconds")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument(
        "--at-half",
        action="store_true",
        help="a burst of --events first, then a steady load at half its rate for --duration "
        "seconds (in one go, so both figures are of the machine in the same state)",
    )
    parser.add_argument(
        "--pause-postgres",
        type=float,
        metavar="SECONDS",
        help=f"with --rate: stop Postgres this long, {PAUSE_AFTER_SECONDS:.0f} s into the run, "
        "and report how the chain caught up",
    )
    parser.add_argument(
        "--timeline", action="store_true", help="with --rate: latency by second of the run"
    )
    parser.add_argument(
        "--no-warm-up",
        action="store_true",
        help=f"skip the {WARM_UP_SECONDS:.0f} s paced run that warms the broker up first",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="produce the burst while the worker runs (and measure its CPU) instead of "
        "before it starts",
    )
    parser.add_argument(
        "--profile", help="py-spy the worker into this file, print per stage (implies --live)"
    )
    args = parser.parse_args()
    if args.pause_postgres and not args.rate:
        parser.error("--pause-postgres needs a steady load (--rate)")
    if args.at_half:
        args.rate = None  # found from the burst
    dev_rate = (
        await embedded_rate(args.events, _distinct_ids(args))
        if args.mode in ("dev", "both")
        else None
    )
    results: list[tuple[str, RunResult]] = []
    if args.mode != "dev":
        if not args.no_warm_up:
            await warm_up(args)
        for _ in range(args.runs):
            results.append(await _cluster_run_printed(args, len(results) + 1))
        if args.at_half:
            args.rate = max(1, int(results[-1][1].rate / 2))
            results.append(await _cluster_run_printed(args, len(results) + 1))

    print()
    print(f"{'pipeline':<46}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for number, (label, result) in enumerate(results, 1):
        print(result.line(f"chain #{number} ({label})"))
        if result.baseline is not None:
            print(f"{'  bare aiokafka+orjson passthrough':<46}{result.baseline:>10,.0f}")
    if dev_rate is not None:
        print(f"{'embedded chain (dev mode, 1 plugin)':<46}{dev_rate:>10,.0f}")
    ratios = [r.rate / r.baseline for _, r in results if r.baseline]
    if ratios:
        shown = ", ".join(f"{x:.2f}x" for x in ratios)
        print(f"\nchain / passthrough = {shown}  (aim: >= 0.25x, >= 10,000 events/s)")
    if args.at_half:
        paced = results[-1][1]
        p99 = percentile(paced.latencies_ms, 0.99)
        print(f"p99 at half the burst rate ({args.rate:,}/s): {p99:,.0f} ms  (aim: < 1,000 ms)")
    if args.profile:
        last = results[-1][1] if results else None
        events = args.events if not args.rate else None
        print_stage_profile(args.profile, events, last.cpu if last else None)


async def warm_up(args: argparse.Namespace) -> None:
    """A paced run through a worker, not counted, so the broker's hot code is compiled."""
    overrides = {"rate": WARM_UP_RATE, "duration": WARM_UP_SECONDS, "workers": 1}
    extras = {"profile": None, "pause_postgres": None, "live": False}
    warm = argparse.Namespace(**{**vars(args), **overrides, **extras})
    result = await cluster_run(warm, DISTINCT_IDS)
    print(
        f"warm-up: paced {WARM_UP_RATE:,}/s for {WARM_UP_SECONDS:.0f} s, not counted "
        f"({result.rate:,.0f} events/s)",
        flush=True,
    )


def _distinct_ids(args: argparse.Namespace) -> int:
    """The distinct ids the events cycle: with --new-persons, one per event."""
    if not args.new_persons:
        return int(args.distinct_ids)
    return int(args.rate * args.duration) if args.rate else int(args.events)


async def _cluster_run_printed(args: argparse.Namespace, number: int) -> tuple[str, RunResult]:
    """One cluster run with its line printed as it ends; with the label of its table row."""
    distinct_ids = _distinct_ids(args)
    result = await cluster_run(args, distinct_ids)
    ratio = f", {result.rate / result.baseline:.2f}x passthrough" if result.baseline else ""
    cost = ""
    if result.per_event_us:
        cost = ", CPU per event: " + ", ".join(
            f"{g} {us:.0f} µs" for g, us in result.per_event_us.items()
        )
    print(f"run {number}: {result.rate:,.0f} events/s{ratio}{cost}", flush=True)
    if result.recovery:
        drained, late = result.recovery
        print(
            f"  after Postgres was back: what waited stored in {drained:.1f} s, "
            f"under {CAUGHT_UP_MS / 1000:.0f} s late again for what was sent from "
            f"{late:.1f} s on",
            flush=True,
        )
    if result.cpu:
        shown = ", ".join(f"{k} {v:.1f}" for k, v in result.cpu.items())
        print(f"  CPU-seconds while it ran: {shown}", flush=True)
    for line in result.timeline() if args.timeline else []:
        print(f"  {line}", flush=True)
    workers = f"{args.workers} worker{'s' if args.workers > 1 else ''}"
    load = (
        f"paced {args.rate:,}/s"
        if args.rate
        else f"{args.events:,} {'live' if is_live(args) else 'queued'}"
    )
    persons = "a new person per event" if args.new_persons else f"{distinct_ids} ids"
    return f"{workers}, {load}, {persons}", result


if __name__ == "__main__":
    asyncio.run(main())

# ruff: noqa: E501  -- the report rows are tables; wrapping them hides their columns
"""What the plugin sandbox costs: per call, per load, per loaded config, per mechanism.

    python benchmarks/sandbox.py            # the full run (about a minute)
    python benchmarks/sandbox.py --quick    # fewer repetitions

Prints, beside the original plugin server's figures (docs performance probe): the
per-event cost of the full path (plugin-thread hand-off per batch of 100 events,
`call_bounded` with the time and memory bounds, a `meta` object) against the same
function as plain Python, for a plugin that sets two properties and one with a
2,000-iteration loop; the load time of one plugin; the RSS of 1,000 loaded plugin
configs (in a fresh subprocess); and the cost of the time-limit mechanisms considered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import SimpleNamespace
from typing import Any

from plugin_runtime.backends.memory import memory_backends
from plugin_runtime.isolation import PluginExecutor
from plugin_runtime.sandbox.compiler import compile_plugin
from plugin_runtime.sandbox.limits import Limits, call_bounded
from plugin_runtime.sandboxed import SandboxTeam
from plugin_runtime.types import PluginConfigRecord, PluginSource

SIMPLE = """
def process_event(event, meta):
    event["properties"]["processed"] = True
    event["properties"]["plugin"] = "demo"
    return event
"""
LOOP = """
def process_event(event, meta):
    total = 0
    for i in range(2000):
        if i % 3 == 0:
            total += i
    event["properties"]["total"] = total
    return event
"""
LOOP_TIME_CHECKED = """
def process_event(event, meta):
    total = 0
    started = clock()
    for i in range(2000):
        if clock() - started > 30:
            raise TimeoutError("loop")
        if i % 3 == 0:
            total += i
    event["properties"]["total"] = total
    return event
"""
CACHE = """
def process_event(event, meta):
    seen = meta.cache.get("seen", 0)
    meta.cache.set("seen", seen + 1)
    event["properties"]["seen"] = seen
    return event
"""
ORIGINAL = {"simple": 31.3, "loop": 450.0, "load_ms": 8.3, "kib_per_config": 321.0}
BATCH = 100
LIMITS = Limits()


def plain(source: str) -> Callable[..., Any]:
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    fn: Callable[..., Any] = namespace["process_event"]
    return fn


def sandboxed(source: str, extra: dict[str, Any] | None = None) -> Callable[..., Any]:
    plugin = compile_plugin(
        {"plugin.py": source}, plugin_name="bench", sandbox_globals=extra or {}, limits=LIMITS
    )
    return plugin.functions["process_event"]


def a_meta() -> SimpleNamespace:
    return SimpleNamespace(config={"greeting": "hi"}, global_={}, attachments={})


def events(n: int) -> list[dict[str, Any]]:
    return [{"event": "$pageview", "distinct_id": str(i), "properties": {"i": i}} for i in range(n)]


def best_us_per_call(run: Callable[[], None], calls: int, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times) / calls * 1e6


def per_call_plain(fn: Callable[..., Any], n: int, repeat: int) -> float:
    batch, meta = events(n), a_meta()

    def run() -> None:
        for ev in batch:
            fn(ev, meta)

    return best_us_per_call(run, n, repeat)


def per_call_restricted(fn: Callable[..., Any], n: int, repeat: int) -> float:
    return per_call_plain(fn, n, repeat)


def per_call_full_path(fn: Callable[..., Any], n: int, repeat: int) -> float:
    batches = [events(BATCH) for _ in range(n // BATCH)]
    meta = a_meta()
    executor = PluginExecutor(threads=2)

    async def all_batches() -> None:
        for batch in batches:
            await executor.run(
                lambda b=batch: [call_bounded(fn, ev, meta, limits=LIMITS) for ev in b]
            )

    try:
        return best_us_per_call(lambda: asyncio.run(all_batches()), n, repeat)
    finally:
        executor.close()


def config(source: str, config_id: int) -> PluginConfigRecord:
    plugin = PluginSource(id=1, name="bench", plugin_json={}, files={"plugin.py": source})
    return PluginConfigRecord(id=config_id, team_id=2, plugin=plugin)


def boundary_per_event(source: str, n: int, repeat: int) -> float:
    """The server's path: batches of 100 through the team's sandbox process."""
    team = SandboxTeam(2, memory_backends(), limits=LIMITS)
    try:
        instance = team.load(config(source, 1))
        batches = [events(BATCH) for _ in range(max(1, n // BATCH))]

        def run() -> None:
            for batch in batches:
                team.chain([instance], batch)

        run()  # warm
        return best_us_per_call(run, len(batches) * BATCH, repeat)
    finally:
        team.close()


def sandbox_replacement_ms(configs: int, repeat: int) -> float:
    """From `kill -9` of a team's sandbox to its next batch answered, `configs` loaded again."""
    team = SandboxTeam(2, memory_backends(), limits=LIMITS)
    samples = []
    try:
        records = [config(SIMPLE, i + 1) for i in range(configs)]
        instances = [team.load(r) for r in records]
        team.chain(instances, events(1))
        for _ in range(repeat):
            pid = team.process.pid
            assert pid is not None
            started = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                team.chain(instances, events(1))  # finds it dead
            instances = [team.load(r) for r in records]
            team.chain(instances, events(1))
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        team.close()
    return statistics.median(samples)


BOUNDARY_MEMORY_CHILD = """
import gc, sys
sys.path.insert(0, {root!r})
from benchmarks.sandbox import SIMPLE, config, LIMITS
from plugin_runtime.backends.memory import memory_backends
from plugin_runtime.sandbox.call_monitor import current_rss
from plugin_runtime.sandboxed import SandboxTeam
team = SandboxTeam(2, memory_backends(), limits=LIMITS)
team.load(config(SIMPLE, 1))  # the process is up: what follows is per config
gc.collect()
before, sandbox_before = current_rss(), team.process.rss()
kept = [team.load(config(SIMPLE, i + 2)) for i in range(1000)]
gc.collect()
private = 0
with open(f"/proc/{{team.process.pid}}/smaps_rollup") as rollup:
    for line in rollup:
        if line.startswith(("Private_Clean", "Private_Dirty")):
            private += int(line.split()[1]) * 1024
print(current_rss() - before, team.process.rss() - sandbox_before, sandbox_before, private)
team.close()
"""


def boundary_memory_of_1000_configs() -> tuple[int, int, int, int]:
    """(worker RSS over baseline, sandbox RSS over its start, sandbox RSS at start, sandbox
    private bytes) for 1,000 configs of one team, in a fresh process."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    child = BOUNDARY_MEMORY_CHILD.format(root=root)
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    worker, sandbox, start, private = (int(x) for x in out.stdout.split())
    return worker, sandbox, start, private


def load_ms(source: str, n: int) -> float:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        sandboxed(source)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


MEMORY_CHILD = """
import gc, psutil
from types import SimpleNamespace
from plugin_runtime.sandbox.compiler import compile_plugin
from plugin_runtime.sandbox.limits import Limits
source = open({path!r}).read()
limits = Limits()
compile_plugin({{"plugin.py": source}}, plugin_name="warm", sandbox_globals={{}}, limits=limits)
gc.collect()
before = psutil.Process().memory_info().rss
loaded = []
for i in range(1000):
    meta = SimpleNamespace(config={{"n": str(i)}}, global_={{}}, attachments={{}})
    plugin = compile_plugin(
        {{"plugin.py": source}}, plugin_name=f"p{{i}}", sandbox_globals={{}}, limits=limits
    )
    loaded.append((plugin, meta))
gc.collect()
print(psutil.Process().memory_info().rss - before)
"""


def memory_of_1000_configs(source: str) -> int:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(source)
    child = MEMORY_CHILD.format(path=f.name)
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def mechanism_settrace(fn: Callable[..., Any], n: int, repeat: int) -> float:
    def tracer(frame: Any, event: str, arg: Any) -> Any:
        return None  # a call-level hook only; a line-level one costs far more

    sys.settrace(tracer)
    try:
        return per_call_plain(fn, n, repeat)
    finally:
        sys.settrace(None)


def mechanism_setprofile(fn: Callable[..., Any], n: int, repeat: int) -> float:
    sys.setprofile(lambda frame, event, arg: None)
    try:
        return per_call_plain(fn, n, repeat)
    finally:
        sys.setprofile(None)


def _echo_worker(conn: Connection) -> None:
    fn = plain(SIMPLE)
    meta = a_meta()
    while True:
        batch = conn.recv()
        if batch is None:
            return
        conn.send([fn(ev, meta) for ev in batch])


def mechanism_subprocess_batches(n: int, repeat: int) -> float:
    """A worker process per plugin thread, a batch of 100 events pickled each way (the
    cheapest shape; meta calls would add a round trip each)."""
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("fork").Process(target=_echo_worker, args=(child,))
    proc.start()
    batches = [events(BATCH) for _ in range(n // BATCH)]

    def run() -> None:
        for batch in batches:
            parent.send(batch)
            parent.recv()

    try:
        return best_us_per_call(run, n, repeat)
    finally:
        parent.send(None)
        proc.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    n, repeat = (2_000, 3) if args.quick else (20_000, 5)
    n_loop = n // 10

    simple_plain = per_call_plain(plain(SIMPLE), n, repeat)
    simple_rp = per_call_restricted(sandboxed(SIMPLE), n, repeat)
    simple_full = per_call_full_path(sandboxed(SIMPLE), n, repeat)
    loop_plain = per_call_plain(plain(LOOP), n_loop, repeat)
    loop_rp = per_call_restricted(sandboxed(LOOP), n_loop, repeat)
    loop_full = per_call_full_path(sandboxed(LOOP), n_loop, repeat)
    load = load_ms(SIMPLE, 50 if args.quick else 300)
    rss = memory_of_1000_configs(SIMPLE)
    simple_box = boundary_per_event(SIMPLE, n, repeat)
    cache_box = boundary_per_event(CACHE, n // 4, repeat)
    loop_box = boundary_per_event(LOOP, n_loop, repeat)
    box_worker, box_sandbox, box_start, box_private = boundary_memory_of_1000_configs()
    replace_1 = sandbox_replacement_ms(1, repeat)
    replace_20 = sandbox_replacement_ms(20, repeat)

    def row(name: str, ours: float, original: float, plain_value: float, unit: str) -> None:
        print(
            f"{name:<44} {ours:>10.2f} {unit:<4} original {original:>8.1f} {unit:<4}"
            f" ({original / ours:5.1f}x faster)   plain Python {plain_value:8.2f} {unit}"
            f"   overhead {ours - plain_value:+8.2f} {unit}"
        )

    print(
        f"Python {sys.version.split()[0]}; {n:,} simple / {n_loop:,} loop calls, best of {repeat}"
    )
    print("\n== per event, full path (hand-off per batch of 100, call_bounded, meta) ==")
    row("process_event setting two properties", simple_full, ORIGINAL["simple"], simple_plain, "µs")
    row("process_event with a 2,000-iteration loop", loop_full, ORIGINAL["loop"], loop_plain, "µs")
    print(
        f"{'  (restricted code alone, no bounds/hand-off)':<44} simple {simple_rp:.2f} µs, loop {loop_rp:.2f} µs"
    )
    print(
        f"  aims: <= 5 µs over plain per call -> {simple_full - simple_plain:.2f} µs; "
        f"loop <= 450 µs -> {loop_full:.1f} µs"
    )
    print("\n== per event, the server's path (a sandbox process per team, batches of 100) ==")
    aims = {"simple": 5.0, "cache": 20.0, "loop": 450.0}
    for name, label, value in (
        ("simple", "process_event setting two properties", simple_box),
        ("cache", "process_event with meta.cache get + set", cache_box),
        ("loop", "process_event with a 2,000-iteration loop", loop_box),
    ):
        original = ORIGINAL.get(name)
        versus = (
            f"original {original:>8.1f} µs ({original / value:5.1f}x)" if original else " " * 30
        )
        print(f"{label:<44} {value:>10.2f} µs   {versus}   aim <= {aims[name]:g} µs")
    print(
        f"{'1,000 configs of a team: worker RSS':<44} {box_worker / 2**20:>10.1f} MiB  aim < 32 MB over baseline"
    )
    print(
        f"{'  ... and its sandbox process':<44} {box_sandbox / 2**20:>10.1f} MiB  more than at its start "
        f"({box_start / 2**20:.1f} MiB RSS, {box_private / 2**20:.1f} MiB private with them)"
    )
    print(
        f"{'replace a killed sandbox (kill -9 to answer)':<44} {replace_1:>10.1f} ms   with 1 config; "
        f"{replace_20:.1f} ms with 20"
    )
    print("\n== load and memory ==")
    print(
        f"{'load one plugin (compile_plugin, median)':<44} {load:>10.2f} ms   original {ORIGINAL['load_ms']} ms ({ORIGINAL['load_ms'] / load:.1f}x faster)"
    )
    kib = rss / 1000 / 1024
    print(
        f"{'1,000 loaded configs, RSS over baseline':<44} {rss / 2**20:>10.1f} MiB  = {kib:.1f} KiB per config; "
        f"original {ORIGINAL['kib_per_config']} KiB ({ORIGINAL['kib_per_config'] / kib:.0f}x less); aim < 32 MB"
    )

    print("\n== time-limit mechanisms considered (loop plugin, µs per call) ==")
    checked = per_call_plain(
        sandboxed(LOOP_TIME_CHECKED, {"clock": time.monotonic}), n_loop, repeat
    )
    print(f"{'restricted loop, no time check':<52} {loop_rp:>9.1f}")
    print(f"{'restricted loop + clock check every iteration':<52} {checked:>9.1f}")
    print(
        f"{'restricted loop under sys.settrace (call hook)':<52} {mechanism_settrace(sandboxed(LOOP), n_loop, repeat):>9.1f}"
    )
    print(
        f"{'restricted loop under sys.setprofile':<52} {mechanism_setprofile(sandboxed(LOOP), n_loop, repeat):>9.1f}"
    )
    print(
        f"{'restricted loop via call_bounded (monitor thread)':<52} {per_call_plain(lambda e, m: call_bounded(sandboxed_loop, e, m, limits=LIMITS), n_loop, repeat):>9.1f}"
    )
    print("\n== isolation hand-off (simple plugin, µs per event, batches of 100) ==")
    print(f"{'plugin thread (PluginExecutor) + call_bounded':<52} {simple_full:>9.2f}")
    print(
        f"{'worker process, batch pickled over a pipe':<52} {mechanism_subprocess_batches(n, repeat):>9.2f}"
    )


sandboxed_loop = sandboxed(LOOP)

if __name__ == "__main__":
    main()

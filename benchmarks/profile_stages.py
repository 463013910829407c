"""Where a worker's CPU went, per stage, from a py-spy profile in raw (collapsed) form.

    .venv/bin/python benchmarks/profile_stages.py /tmp/worker.txt \
        [--events 50000 --worker-cpu 4.2 --sandbox-cpu 1.2]

`benchmarks/chain.py --profile FILE` records one. py-spy samples only threads that are
running, so samples are CPU time: at 200 samples/s, a sample is 5 ms of one core. Each
stack is counted once, under the first of `CATEGORIES` whose marker appears in it
(stage functions first, so the time a stage spends in the Kafka client is the stage's);
samples of a thread waiting in the selector are left out.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

SAMPLES_PER_SECOND = 200  # the rate chain.py asks py-spy for

# (category, markers): a stack belongs to the first category with a marker in it
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ingress (input -> first topic)", ("ingest_capture_messages",)),
    ("parse", ("parse_messages (",)),
    ("plugins (worker side)", ("run_plugins (", "run_overflow_plugins (")),
    ("persons", ("resolve_persons (", "attach_persons (")),
    ("write", ("write_events (",)),
    ("exports", ("export_events (app/pipeline/exports.py",)),
    ("encode + send between stages", ("send_output (", "send_events (")),
    ("decode between stages", ("faust/serializers", "faust/models")),
    # what stages hand to threads (no stage frame in the thread's stack)
    ("write: ClickHouse client (thread)", ("clickhouse_driver", "app/clickhouse.py")),
    ("SQL clients (persons, storage, marks)", ("psycopg", "sqlalchemy", "asyncpg")),
    ("plugins: sandbox requests (worker side)", ("plugin_runtime/",)),
    ("Kafka client (fetch, commit)", ("aiokafka",)),
)
SANDBOX = "plugin sandbox processes"
SANDBOX_MARKER = "plugin_runtime.sandbox.child"
# a sample of a thread waiting in the event loop's selector is not work
IDLE_LEAVES = ("EpollSelector.select (", "select (selectors.py")
OTHER = "other (Faust, asyncio, timers)"


def stage_samples(path: str) -> tuple[Counter[str], int]:
    """Samples per category, and the total."""
    counts: Counter[str] = Counter()
    for line in Path(path).read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        if stack.rsplit(";", 1)[-1].startswith(IDLE_LEAVES):
            continue
        if SANDBOX_MARKER in stack.split(";", 2)[:2][-1]:  # a child process: parent;child;...
            counts[SANDBOX] += int(number)
            continue
        category = next(
            (name for name, markers in CATEGORIES if any(m in stack for m in markers)), OTHER
        )
        counts[category] += int(number)
    return counts, sum(counts.values())


def print_stage_profile(
    path: str, events: int | None = None, cpu: dict[str, float] | None = None
) -> None:
    """Each category's share of the samples; with `events` and the CPU-seconds the worker
    and its sandboxes used (`cpu`, from /proc), µs of CPU per event. py-spy also samples
    some threads that wait (in a socket read, say), so its totals run high: the shares are
    scaled to what /proc measured, per process kind."""
    counts, total = stage_samples(path)
    if not total:
        print(f"no samples in {path}")
        return
    sandbox_samples = counts.get(SANDBOX, 0)
    worker_samples = total - sandbox_samples
    print(f"\nCPU by stage ({path}, {total} samples)")
    per_event = f"{'µs/event':>10}" if events and cpu else ""
    print(f"{'where':<44}{'share':>8}{per_event}")
    for name, count in counts.most_common():
        share = f"{100 * count / total:>7.1f}%"
        cost = ""
        if events and cpu:
            kind, samples = (
                ("sandbox", sandbox_samples) if name == SANDBOX else ("worker", worker_samples)
            )
            cost = f"{cpu.get(kind, 0.0) * count / samples / events * 1e6:>10.1f}"
        print(f"{name:<44}{share}{cost}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile")
    parser.add_argument("--events", type=int, help="events the run processed")
    parser.add_argument("--worker-cpu", type=float, help="CPU-seconds the worker used")
    parser.add_argument("--sandbox-cpu", type=float, help="CPU-seconds its sandboxes used")
    args = parser.parse_args()
    cpu = {"worker": args.worker_cpu or 0.0, "sandbox": args.sandbox_cpu or 0.0}
    print_stage_profile(args.profile, args.events, cpu if args.worker_cpu else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())

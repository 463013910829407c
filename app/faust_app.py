"""The Faust app of the cluster mode (`faust -A app worker`)."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import faust
from mode import ServiceT

from app.connections import faust_broker_credentials
from app.log_format import use_format
from app.settings import Settings, get_settings

APP_ID = "plugin-server"
STREAM_BUFFER_MESSAGES = 16  # batches read ahead per stream
# Objects allocated (net of those freed) between collections of the youngest GC
# generation. The batches read ahead and in flight are hundreds of thousands of live
# objects, and a young collection walks all of them to find them alive: at 50,000 the
# collector took about 390 ms of CPU per 50,000 events (timed with `gc.callbacks` during
# `benchmarks/chain.py`), at 500,000 about 5 ms. Event dicts hold no cycles, so what waits
# longer for the collector is rare garbage, at most this many objects (tens of MiB).
GC_GEN0_THRESHOLD = 500_000

_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
               "error": logging.ERROR, "none": logging.CRITICAL + 10}  # fmt: skip


def quiet_logging(settings: Settings) -> None:
    """Apply LOG_LEVEL to the root logger and the Kafka clients.

    Faust leaves the root logger at DEBUG even with `-l warn`, and building the records it
    then drops costs 10-25% of a worker's CPU.
    """
    level = _LOG_LEVELS[settings.LOG_LEVEL]
    root = logging.getLogger()
    root.setLevel(level)
    # Faust's own handler takes its `-l` level: LOG_LEVEL decides, whichever command ran
    for handler in root.handlers:
        handler.setLevel(level)
    for name in ("aiokafka", "kafka", "faust", "mode"):
        logging.getLogger(name).setLevel(max(level, logging.INFO))
    use_format(settings.LOG_FORMAT)


def tune_worker(settings: Settings) -> None:
    quiet_logging(settings)
    from app import telemetry

    telemetry.install()  # the instruments record from here on; /metrics serves them
    # modules and plugin code loaded so far live as long as the worker: keep them out of
    # every collection, and collect the young generation less often
    gc.freeze()
    _gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


COMMIT_INTERVAL_SECONDS = 0.5  # Faust's default is 2.8 s


class PluginServerApp(faust.App):
    """The worker's Faust app. Building it does no I/O (so `faust -A app --help` works
    without a broker); the first start makes its directories and runs `before_start`
    (creating the topics), before any consumer joins its group."""

    before_start: Callable[[], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._boot_services: list[type[ServiceT]] = []

    def boot_service(self, cls: type[ServiceT]) -> type[ServiceT]:
        """Like `app.service`, but started right after the producer, before the consumer
        joins its group, and stopped after the agents.

        Faust starts `app.service`s, tasks and timers only once the first partition
        assignment is recovered. A rebalance waits out a dead member's session, so a
        worker that joins then would wait that long for what it needs at any time (the
        schedule's takeover, the stores the agents wait for)."""
        self._boot_services.append(cls)
        return cls

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        services = list(super().on_init_dependencies())
        boot = [cls(loop=self.loop, beacon=self.beacon) for cls in self._boot_services]
        # children stop in reverse: these outlive the consumer and agents, not the producer
        after = services.index(self.producer) + 1 if self.producer in services else 0
        return [*services[:after], *boot, *services[after:]]

    async def on_first_start(self) -> None:
        Path(self.conf.datadir).parent.mkdir(parents=True, exist_ok=True)
        if self.before_start is not None:
            await asyncio.to_thread(self.before_start)
        await super().on_first_start()


def create_app(settings: Settings | None = None) -> PluginServerApp:
    settings = settings or get_settings()
    options: dict[str, Any] = faust_broker_credentials(settings)
    app = PluginServerApp(
        APP_ID,
        broker=[f"kafka://{host}" for host in settings.kafka_bootstrap],
        store="memory://",
        datadir=f"{settings.DATA_DIR}/faust",
        web_host=settings.WORKER_HTTP_HOST,
        web_bind=settings.WORKER_HTTP_HOST,
        web_port=settings.WORKER_HTTP_PORT or 6066,  # Faust validates the port even when web is off
        web_enabled=settings.WORKER_HTTP_PORT != 0,
        topic_partitions=settings.KAFKA_PARTITIONS,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        # short group timeouts: a restarted worker rejoins in seconds, not half a minute
        broker_session_timeout=10,
        broker_heartbeat_interval=3,
        broker_rebalance_timeout=10,
        # a worker that dies re-reads what each stage processed since its last commit, and
        # every stage after it sees that again: commit often, so that is under a second
        broker_commit_interval=COMMIT_INTERVAL_SECONDS,
        # a stage message holds up to KAFKA_PRODUCER_MAX_QUEUE_SIZE events: a short buffer
        # of them is plenty, and the default 4,096 would keep millions of events decoded
        stream_buffer_maxsize=STREAM_BUFFER_MESSAGES,
        producer_max_request_size=max(1_048_576, settings.KAFKA_MAX_MESSAGE_BATCH_SIZE + 65_536),
        autodiscover=False,
        **options,
    )
    app.on_worker_init.connect(lambda *a, **kw: tune_worker(settings))
    return app

"""`meta.jobs` (R35, R38-R40), `meta.metrics` (R41-R45) and `meta.logger` (R48)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from plugin_runtime.backends.memory import MemoryJobQueue, MemoryLogSink
from plugin_runtime.errors import IllegalOperationError, PluginLoadError, UnknownJobError
from plugin_runtime.extensions.jobs import Jobs
from plugin_runtime.extensions.logger import Logger, format_message
from plugin_runtime.extensions.metrics import Metrics, MetricValues, declared_metrics
from plugin_runtime.types import PluginConfigRef

REF = PluginConfigRef(plugin_config_id=39, team_id=2, plugin_id=60, plugin_name="p")


def jobs(queue: MemoryJobQueue) -> Jobs:
    return Jobs(queue, REF, frozenset({"log_reply", "x"}))


def test_run_now_enqueues_one_job_for_the_config():
    queue = MemoryJobQueue()
    jobs(queue).log_reply("runNow").run_now()
    (job,) = queue.jobs
    assert (job.name, job.payload, job.plugin_config_id, job.team_id) == (
        "log_reply",
        "runNow",
        39,
        2,
    )
    assert abs(job.run_at - datetime.now(UTC)) < timedelta(seconds=1)


@pytest.mark.parametrize(
    ("args", "kwargs", "delay"),
    [
        ((), {"seconds": 30}, timedelta(seconds=30)),
        ((), {"minutes": 2, "hours": 1}, timedelta(hours=1, minutes=2)),
        ((), {"days": 1}, timedelta(days=1)),
        ((1, "second"), {}, timedelta(seconds=1)),
        ((2, "minutes"), {}, timedelta(minutes=2)),
        ((1, "week"), {}, timedelta(weeks=1)),
        ((1, "month"), {}, timedelta(weeks=30)),
        ((5, "milliseconds"), {}, timedelta(milliseconds=5)),
    ],
)
def test_run_in_delays(args, kwargs, delay):
    queue = MemoryJobQueue()
    before = datetime.now(UTC)
    jobs(queue).x(None).run_in(*args, **kwargs)
    assert abs(queue.jobs[0].run_at - (before + delay)) < timedelta(milliseconds=500)


def test_unknown_unit_enqueues_nothing():
    queue = MemoryJobQueue()
    with pytest.raises(IllegalOperationError, match="fortnight"):
        jobs(queue).x(1).run_in(1, "fortnight")
    assert queue.jobs == []


def test_run_at_uses_the_given_time():
    queue = MemoryJobQueue()
    jobs(queue).x(1).run_at(datetime(2030, 1, 1, tzinfo=UTC))
    assert queue.jobs[0].run_at.timestamp() * 1000 == 1893456000000


def test_unknown_job_name_is_a_clear_error():
    with pytest.raises(UnknownJobError, match=r"'nope' is not defined.*log_reply, x"):
        jobs(MemoryJobQueue()).nope.run_now()


def test_metrics_accumulate_by_kind():
    values = MetricValues({"metric1": "sum", "metric2": "max", "metric3": "min", "m": "min"})
    metrics = Metrics(values)
    for n in (100, 10, -10):
        metrics["metric1"].increment(n)
    metrics["metric2"].max(5)
    metrics.metric2.max(10)
    metrics["metric3"].min(4)
    metrics["metric3"].min(1)
    metrics["m"].min(0)
    metrics["m"].min(5)
    assert values.snapshot() == {"metric1": 100, "metric2": 10, "metric3": 1, "m": 0}


def test_metric_misuse_is_refused():
    metrics = Metrics(MetricValues({"i_should_increment": "sum"}))
    with pytest.raises(AttributeError):
        metrics["i_should_increment"].max(100)
    with pytest.raises(IllegalOperationError, match="numbers"):
        metrics["i_should_increment"].increment("not a number")
    with pytest.raises(IllegalOperationError, match="'undeclared' is not declared"):
        metrics["undeclared"]


def test_metric_declarations_are_checked():
    assert declared_metrics("p", {"a": "SUM", "b": "mAx"}) == {"a": "sum", "b": "max"}
    assert set(declared_metrics("p", None, exports=True)) == {
        "events_seen",
        "events_delivered_successfully",
        "undelivered_events",
        "retry_errors",
        "other_errors",
    }
    with pytest.raises(PluginLoadError, match="avg"):
        declared_metrics("p", {"unsupportedMetric": "avg"})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), ""),
        (("number =", 987), "number = 987"),
        ((Exception("something"),), "Exception: something"),
        (({1: "ein", 2: "zwei"},), '{"1":"ein","2":"zwei"}'),
        (([99, 79],), "[99,79]"),
    ],
)
def test_log_messages_are_formatted_like_the_console(args, message):
    assert format_message(args) == message


def test_logger_levels_write_entries_for_the_config():
    sink = MemoryLogSink()
    logger = Logger(sink, REF)
    logger.debug("d")
    logger.info("i")
    logger.warning("w")
    logger.warn("w2")
    logger.error("e")
    entries = sink.read_logs(39)
    assert [(e.level, e.message) for e in entries] == [
        ("debug", "d"),
        ("info", "i"),
        ("warning", "w"),
        ("warning", "w2"),
        ("error", "e"),
    ]
    assert {(e.team_id, e.plugin_id, e.source) for e in entries} == {(2, 60, "CONSOLE")}

"""Loading, setup retries, reload and teardown (spec 4.7, 5.3, R36-R37, R69-R77)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from tests.plugin_runtime.runtime_fixtures import TEAM, event, make_runtime, record

COUNT_SETUPS = """
def setup_plugin(meta):
    meta.storage.set("setups", meta.storage.get("setups", 0) + 1)
    meta.global_["ready"] = True

def process_event(event, meta):
    event["properties"]["ready"] = meta.global_.get("ready")
    return event

def teardown_plugin(meta):
    meta.storage.set("teardowns", meta.storage.get("teardowns", 0) + 1)
"""


async def test_setup_runs_once_per_load():
    h = make_runtime()
    await h.runtime.load([record(COUNT_SETUPS)])
    for _ in range(5):
        (out,) = await h.runtime.process_events(TEAM, [event()])
        assert out["properties"]["ready"] is True
    assert h.storage.rows(39) == {"setups": "1"}
    assert [e.message for e in h.logs.read_logs(39, source="SYSTEM")] == [
        "plugin test-plugin loaded"
    ]


async def test_failing_setup_retries_then_disables_with_error_visible():
    h = make_runtime(attempts=3, base_delay=0.01)
    code = """
def setup_plugin(meta):
    raise RetryError("not yet")

def process_event(event, meta):
    return None
"""
    await h.runtime.load([record(code)])
    (out,) = await h.runtime.process_events(TEAM, [event()])  # absent between attempts
    assert out == event()
    await asyncio.sleep(0.2)
    assert h.runtime.failing_configs() == {39: "RetryError: not yet"}
    assert 39 in h.errors.disabled
    assert h.errors.errors[39]["message"] == "not yet"
    system = [e.message for e in h.logs.read_logs(39, source="SYSTEM")]
    assert system.count("RetryError: not yet") == 3
    assert "retrying in 0.01 s" in system[1] and "retrying in 0.02 s" in system[3]
    assert system[-1] == "plugin disabled after 3 failed load attempt(s)"


async def test_setup_succeeding_on_retry_loads_the_plugin():
    h = make_runtime(attempts=3, base_delay=0.01)
    code = """
def setup_plugin(meta):
    if meta.cache.incr("attempts") == 1:
        raise RetryError("first time")

def process_event(event, meta):
    event["properties"]["seen"] = True
    return event
"""
    await h.runtime.load([record(code)])
    await asyncio.sleep(0.1)
    (out,) = await h.runtime.process_events(TEAM, [event()])
    assert out["properties"]["seen"] is True
    assert 39 not in h.errors.errors  # cleared on a successful load
    assert h.runtime.failing_configs() == {}


async def test_syntax_error_is_recorded_and_retried():
    h = make_runtime(attempts=2, base_delay=0.01)
    await h.runtime.load([record("def process_event(event, meta)\n    return event\n")])
    await asyncio.sleep(0.1)
    assert 39 in h.runtime.failing_configs()
    assert h.errors.errors[39]["name"] in ("PluginLoadError", "SyntaxError")


async def test_unchanged_config_keeps_its_instance_on_reload():
    h = make_runtime()
    await h.runtime.load([record(COUNT_SETUPS)])
    await h.runtime.load([record(COUNT_SETUPS, order=5)])
    assert h.storage.rows(39) == {"setups": "1"}


async def test_changed_config_is_torn_down_and_set_up_again():
    h = make_runtime()
    await h.runtime.load([record(COUNT_SETUPS)])
    await h.runtime.load([record(COUNT_SETUPS + "\n# v2\n")])
    assert h.storage.rows(39) == {"setups": "2", "teardowns": "1"}


async def test_removed_and_disabled_configs_are_torn_down():
    h = make_runtime()
    await h.runtime.load([record(COUNT_SETUPS, id=39), record(COUNT_SETUPS, id=40)])
    disabled = record(COUNT_SETUPS, id=40)
    object.__setattr__(disabled, "enabled", False)
    await h.runtime.load([disabled])
    assert h.storage.rows(39)["teardowns"] == "1"
    assert h.storage.rows(40)["teardowns"] == "1"
    assert await h.runtime.process_events(TEAM, [event()]) == [event()]


async def test_failing_teardown_is_recorded():
    h = make_runtime()
    await h.runtime.load(
        [record("def teardown_plugin(meta):\n    raise ValueError('teardown exploded')\n")]
    )
    await h.runtime.close()
    assert h.errors.errors[39]["message"] == "teardown exploded"
    assert any("failed to unload" in e.message for e in h.logs.read_logs(39, source="SYSTEM"))


async def test_bad_config_is_refused_without_retries():
    h = make_runtime(attempts=5)
    plugin_json = {"config": [{"key": "url", "name": "URL", "required": True}]}
    await h.runtime.load(
        [record("def process_event(e, meta):\n    return e\n", plugin_json=plugin_json)]
    )
    assert "'url' is required" in h.runtime.failing_configs()[39]


async def test_scheduled_tasks_and_capabilities_are_listed():
    h = make_runtime()
    code = """
def process_event(event, meta):
    return event

def on_event(event, meta):
    pass

def random_function():
    pass

def run_every_hour(meta):
    meta.storage.set("ran", "hour")

jobs = {"x": lambda payload, meta: None}
"""
    await h.runtime.load([record(code)])
    assert h.runtime.scheduled_tasks() == [(39, "runEveryHour")]
    assert h.runtime.capabilities(39) == {
        "methods": ["onEvent", "processEvent"],
        "scheduled_tasks": ["runEveryHour"],
        "jobs": ["x"],
    }
    assert h.runtime.configs_with("on_event") == [39]
    assert h.runtime.configs_with("exportEvents") == []
    await h.runtime.run_scheduled(39, "runEveryHour")
    assert h.storage.rows(39) == {"ran": '"hour"'}


async def test_failing_scheduled_task_is_recorded_without_event():
    h = make_runtime()
    await h.runtime.load([record("def run_every_minute(meta):\n    raise ValueError('lol')\n")])
    await h.runtime.run_scheduled(39, "run_every_minute")
    await h.runtime.run_scheduled(39, "runEveryMinute")
    assert h.errors.errors[39]["message"] == "lol"
    assert "event" not in h.errors.errors[39]
    assert len(h.errors.history) == 2


async def test_jobs_run_with_payload_and_unknown_job_is_recorded():
    h = make_runtime()
    code = """
def reply(payload, meta):
    meta.storage.set("got", payload)

jobs = {"log_reply": reply}
"""
    await h.runtime.load([record(code)])
    await h.runtime.run_job(39, "log_reply", {"a": 1})
    await h.runtime.run_job(39, "nope", None)
    rows = h.storage.rows(39)
    assert rows.keys() == {"got"}
    assert json.loads(rows["got"]) == {"a": 1}
    assert "defines no job 'nope'" in h.errors.errors[39]["message"]


async def test_a_job_that_raises_retry_error_asks_again_with_backoff_then_fails():
    h = make_runtime()
    code = """
def later(payload, meta):
    raise RetryError("not yet")

def broken(payload, meta):
    raise ValueError("no")

jobs = {"later": later, "broken": broken}
"""
    await h.runtime.load([record(code)])
    first = await h.runtime.run_job(39, "later", None, retries_so_far=0)
    assert (first.state, first.delay) == ("retry", timedelta(seconds=6))
    assert 39 not in h.errors.errors  # a retry is not an error yet
    fifth = await h.runtime.run_job(39, "later", None, retries_so_far=4)
    assert fifth.delay == timedelta(seconds=96)
    last = await h.runtime.run_job(39, "later", None, retries_so_far=15)
    assert last.state == "failed" and "after 16 attempts: not yet" in (last.error or "")
    assert h.errors.errors[39]["message"] == "not yet"
    broken = await h.runtime.run_job(39, "broken", None)
    assert (broken.state, broken.error) == ("failed", "ValueError: no")
    gone = await h.runtime.run_job(40, "later", None)
    assert gone.state == "failed" and "not loaded" in (gone.error or "")


async def test_on_event_errors_do_not_stop_other_plugins():
    h = make_runtime()
    bad = "def on_event(event, meta):\n    raise ValueError('bad')\n"
    good = """
def on_event(event, meta):
    event["properties"]["b"] = 2
    meta.storage.set("seen", event["event"])
"""
    await h.runtime.load([record(bad, id=39), record(good, id=40, order=1)])
    events = [event("custom event")]
    await h.runtime.on_events(TEAM, events)
    assert h.errors.errors[39]["event"]["event"] == "custom event"
    assert h.storage.rows(40) == {"seen": '"custom event"'}
    assert "b" not in events[0]["properties"]  # on_event works on its own copy


async def test_a_changed_config_runs_the_new_version_and_tears_down_the_old_one():
    code = """
def process_event(event, meta):
    event["properties"]["greeting"] = meta.config["greeting"]
    return event

def teardown_plugin(meta):
    meta.storage.set("torn down", meta.config["greeting"])
"""
    schema = {"config": [{"key": "greeting", "type": "string"}]}
    h = make_runtime()
    await h.runtime.load([record(code, config={"greeting": "hello"}, plugin_json=schema)])
    (before,) = await h.runtime.process_events(TEAM, [event()])
    await h.runtime.load([record(code, config={"greeting": "bye"}, plugin_json=schema)])
    (after,) = await h.runtime.process_events(TEAM, [event()])
    assert (before["properties"]["greeting"], after["properties"]["greeting"]) == ("hello", "bye")
    # the old version's teardown ran on the old version, and the new one is still loaded
    assert json.loads(h.storage.rows(39)["torn down"]) == "hello"
    (again,) = await h.runtime.process_events(TEAM, [event()])
    assert again["properties"]["$plugins_failed"] == []
    assert again["properties"]["greeting"] == "bye"

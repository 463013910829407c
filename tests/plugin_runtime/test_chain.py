"""The process_event chain (spec 3.3, R1 and R56-R63)."""

from __future__ import annotations

import json

from tests.plugin_runtime.runtime_fixtures import TEAM, event, make_runtime, record

APPEND_ID = """
def process_event(event, meta):
    event["properties"].setdefault("plugins", []).append(meta.config["id"])
    return event
"""
ID_FIELD = {"config": [{"key": "id", "name": "id", "type": "string"}]}


async def test_plugin_result_carries_success_markers():
    h = make_runtime()
    code = """
def process_event(event, meta):
    event["properties"]["processed"] = True
    return event
"""
    await h.runtime.load([record(code)])
    (out,) = await h.runtime.process_events(TEAM, [event()])
    assert out["properties"]["processed"] is True
    assert out["properties"]["$plugins_succeeded"] == ["test-plugin (39)"]
    assert out["properties"]["$plugins_failed"] == []
    assert out["properties"]["$plugins_deferred"] == []


async def test_plugins_run_in_config_order():
    h = make_runtime()
    configs = [
        record(APPEND_ID, id=39, plugin_id=60, order=2, config={"id": "60"}, plugin_json=ID_FIELD),
        record(APPEND_ID, id=40, plugin_id=61, order=1, config={"id": "61"}, plugin_json=ID_FIELD),
        record(APPEND_ID, id=41, plugin_id=62, order=3, config={"id": "62"}, plugin_json=ID_FIELD),
    ]
    await h.runtime.load(configs)
    for _ in range(2):
        (out,) = await h.runtime.process_events(TEAM, [event()])
        assert out["properties"]["plugins"] == ["61", "60", "62"]


async def test_none_drops_event_and_skips_later_plugins():
    h = make_runtime()
    drop = "def process_event(event, meta):\n    return None\n"
    later = (
        "def process_event(event, meta):\n    meta.storage.set('called', True)\n    return event\n"
    )
    await h.runtime.load([record(drop, id=1, order=0), record(later, id=2, order=1)])
    assert await h.runtime.process_events(TEAM, [event(), event()]) == []
    assert h.storage.rows(2) == {}


async def test_mutating_without_returning_drops_the_event():
    h = make_runtime()
    code = "def process_event(event, meta):\n    event['properties']['x'] = 1\n"
    await h.runtime.load([record(code)])
    original = event()
    assert await h.runtime.process_events(TEAM, [original]) == []
    # plugin code works on its sandbox's copy; the worker's event is never touched
    assert "x" not in original["properties"]


async def test_exception_is_recorded_with_event_and_chain_continues():
    h = make_runtime()
    boom = """
def process_event(event, meta):
    event["properties"]["processed"] = "done"
    raise ValueError("boom in process")
"""
    after = (
        "def process_event(event, meta):\n    event['properties']['after'] = 1\n    return event\n"
    )
    await h.runtime.load([record(boom, id=39, order=0), record(after, id=40, order=1, name="b")])
    (out,) = await h.runtime.process_events(TEAM, [event()])
    assert out["properties"]["processed"] == "done"  # in-place changes survive
    assert out["properties"]["after"] == 1
    assert out["properties"]["$plugins_failed"] == ["test-plugin (39)"]
    assert out["properties"]["$plugins_succeeded"] == ["b (40)"]
    error = h.errors.errors[39]
    assert error["message"] == "boom in process"
    assert error["name"] == "ValueError"
    assert error["event"]["event"] == "$test"
    assert [e.message for e in h.logs.read_logs(39, source="PLUGIN")] == ["boom in process"]


async def test_changing_team_id_is_reset_and_counted_as_failure():
    h = make_runtime()
    code = """
def process_event(event, meta):
    event["team_id"] = 400
    event["x"] = 1
    return event
"""
    await h.runtime.load([record(code)])
    (out,) = await h.runtime.process_events(TEAM, [event()])
    assert out["team_id"] == TEAM
    assert out["x"] == 1
    assert out["properties"]["$plugins_failed"] == ["test-plugin (39)"]
    assert "team_id" in h.errors.errors[39]["message"]
    assert h.errors.errors[39]["name"] == "IllegalOperationError"


async def test_on_event_only_plugin_is_deferred():
    h = make_runtime()
    await h.runtime.load([record("def on_event(event, meta):\n    pass\n")])
    (out,) = await h.runtime.process_events(TEAM, [event()])
    assert out["properties"]["$plugins_deferred"] == ["test-plugin (39)"]
    assert out["properties"]["$plugins_succeeded"] == []


async def test_team_without_plugins_gets_events_unchanged():
    h = make_runtime()
    await h.runtime.load([record("def run_every_minute(meta):\n    pass\n")])
    original = event()
    assert await h.runtime.process_events(TEAM, [dict(original)]) == [original]
    assert await h.runtime.process_events(99, [dict(original)]) == [original]


async def test_process_event_batch_is_the_fallback():
    h = make_runtime()
    code = """
def process_event_batch(events, meta):
    for e in events:
        e["event"] = "changed event"
    return events
"""
    await h.runtime.load([record(code)])
    (out,) = await h.runtime.process_events(TEAM, [event()])
    assert out["event"] == "changed event"


async def test_each_on_event_plugin_gets_events_no_other_plugin_changed():
    h = make_runtime()
    changes = """
def on_event(event, meta):
    meta.storage.set("saw", sorted(event["properties"]))
    event["properties"]["changed_by_" + meta.config["id"]] = True
"""
    configs = [
        record(changes, id=39, plugin_id=60, order=1, config={"id": "a"}, plugin_json=ID_FIELD),
        record(changes, id=40, plugin_id=61, order=2, config={"id": "b"}, plugin_json=ID_FIELD),
        record(changes, id=41, plugin_id=62, order=3, config={"id": "c"}, plugin_json=ID_FIELD),
    ]
    await h.runtime.load(configs)
    stored = event()
    stored["properties"] = {"given": 1}
    await h.runtime.on_events(TEAM, [stored])
    seen = [json.loads(h.storage.rows(config_id)["saw"]) for config_id in (39, 40, 41)]
    assert seen == [["given"], ["given"], ["given"]]
    assert stored["properties"] == {"given": 1}  # nor the worker's

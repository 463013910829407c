"""`$snapshot` events (ingestion spec 3.5): a session recording, never an event row; no
`$ip`, no person property updates; `on_snapshot` instead of `on_event`, and no export."""

from __future__ import annotations

from pathlib import Path

from app.embedded import run_chain
from tests.app.pipeline_fixtures import capture, embedded

RECORDER = """
def on_snapshot(event, meta):
    meta.storage.set("snapshot", event["properties"]["$session_id"])

def on_event(event, meta):
    meta.storage.set("event", event["event"])
"""


async def test_a_snapshot_is_a_session_recording_and_not_an_event(tmp_path: Path) -> None:
    plugin = tmp_path / "recorder"
    plugin.mkdir()
    (plugin / "plugin.json").write_text('{"name": "recorder", "main": "plugin.py"}')
    (plugin / "plugin.py").write_text(RECORDER)
    async with embedded(tmp_path, [str(plugin)]) as resources:
        snapshot = {
            "$session_id": "s-1",
            "$window_id": "w-1",
            "$snapshot_data": {"type": 2, "data": {"source": 0}},
            "$set": {"should": "not apply"},
        }
        message = capture("$snapshot", snapshot, distinct_id="viewer", ip="89.160.20.128")
        await run_chain(resources.context, [message])
        events = await resources.context.events.read(1)
        (recording,) = await resources.context.events.read_recordings(1, "s-1")
        storage = resources.host.backends.storage
        config = resources.context.plugins.configs_with("on_snapshot")[0]
        seen, on_event = storage.get(config, "snapshot"), storage.get(config, "event")
        person = await resources.context.persons.by_distinct_id(1, "viewer")
    assert events == []
    assert on_event is None  # on_snapshot ran instead
    assert person is not None and "should" not in person.properties  # created, not updated
    assert recording["distinct_id"] == "viewer" and recording["window_id"] == "w-1"
    assert recording["snapshot_data"] == {"type": 2, "data": {"source": 0}}
    assert seen == '"s-1"'

"""`$snapshot` events (ingestion spec 3.5): a session recording, never an event row; no
`$ip`, no person property updates; `on_snapshot` instead of `on_event`, and no export."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson

from app.dev import open_local
from app.embedded import run_chain
from app.settings import load_settings

RECORDER = """
def on_snapshot(event, meta):
    meta.storage.set("snapshot", event["properties"]["$session_id"])

def on_event(event, meta):
    meta.storage.set("event", event["event"])
"""


def _message(event: str, properties: dict[str, object]) -> bytes:
    return orjson.dumps(
        {
            "distinct_id": "viewer",
            "team_id": 1,
            "ip": "89.160.20.128",
            "uuid": str(uuid.uuid4()),
            "now": "2026-11-23T10:00:00.000Z",
            "data": orjson.dumps({"event": event, "properties": properties}).decode(),
        }
    )


async def test_a_snapshot_is_a_session_recording_and_not_an_event(tmp_path: Path) -> None:
    plugin = tmp_path / "recorder"
    plugin.mkdir()
    (plugin / "plugin.json").write_text('{"name": "recorder", "main": "plugin.py"}')
    (plugin / "plugin.py").write_text(RECORDER)
    settings = load_settings(DATA_DIR=str(tmp_path / "data"))
    _settings, resources, _data_dir = await open_local(settings, [str(plugin)], {1})
    try:
        snapshot = {
            "$session_id": "s-1",
            "$window_id": "w-1",
            "$snapshot_data": {"type": 2, "data": {"source": 0}},
            "$set": {"should": "not apply"},
        }
        await run_chain(resources.context, [_message("$snapshot", snapshot)])
        events = await resources.context.events.read(1)
        (recording,) = await resources.context.events.read_recordings(1, "s-1")
        storage = resources.host.backends.storage
        seen = storage.get(resources.context.plugins.configs_with("on_snapshot")[0], "snapshot")
    finally:
        await resources.close()
    assert events == []
    assert recording["distinct_id"] == "viewer" and recording["window_id"] == "w-1"
    assert recording["snapshot_data"] == {"type": 2, "data": {"source": 0}}
    assert seen == '"s-1"'

"""When a request's storage writes are stored: after the team's turn (its next request
may run meanwhile, and reads them), and before the runtime call that made them returns."""

from __future__ import annotations

from sqlalchemy import create_engine

from plugin_runtime.backends.sql import SqlStorage
from schemas.tables import metadata
from tests.plugin_runtime.runtime_fixtures import TEAM, event, make_runtime, record

CODE = """
def process_event(event, meta):
    event["properties"]["last_seen"] = meta.storage.get("last", None)
    return event

def on_event(event, meta):
    meta.storage.set("last", event["properties"]["n"])
"""


async def test_on_event_writes_are_stored_when_delivery_returns(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/storage.db")
    metadata.create_all(engine)
    table = SqlStorage(engine)  # what another worker reads
    h = make_runtime(storage=SqlStorage(engine))
    await h.runtime.load([record(CODE, id=39)])
    try:
        await h.runtime.on_events(TEAM, [event(n=1), event(n=2)])
        assert table.get(39, "last") == "2"

        # the next request reads what the one before wrote
        kept = await h.runtime.process_events(TEAM, [event()])
        assert kept[0]["properties"]["last_seen"] == 2
    finally:
        await h.runtime.close()
        engine.dispose()

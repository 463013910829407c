"""Team rules of ingestion (spec 5.1): the first-event flag, and a team created after its
first events is seen without waiting for a cache to expire."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
from sqlalchemy import select

from app.dev import open_local
from app.embedded import run_chain
from app.settings import load_settings
from app.stores.plugin_configs import ensure_team
from schemas.tables import teams


def _message(team_id: int) -> bytes:
    return orjson.dumps(
        {
            "distinct_id": "u",
            "team_id": team_id,
            "uuid": str(uuid.uuid4()),
            "now": "2026-11-23T10:00:00.000Z",
            "data": orjson.dumps({"event": "$pageview"}).decode(),
        }
    )


async def test_the_first_stored_event_sets_ingested_event_and_a_late_team_is_seen(
    tmp_path: Path,
) -> None:
    settings = load_settings(DATA_DIR=str(tmp_path))
    _settings, resources, _data_dir = await open_local(settings, [], {1})
    try:
        async with resources.engine.connect() as conn:
            before = (
                await conn.execute(select(teams.c.ingested_event).where(teams.c.id == 1))
            ).scalar_one()
        await run_chain(resources.context, [_message(1)])
        late = await run_chain(resources.context, [_message(7)])  # team 7 does not exist yet
        await ensure_team(resources.engine, 7)
        await run_chain(resources.context, [_message(7)])
        async with resources.engine.connect() as conn:
            flags = dict((await conn.execute(select(teams.c.id, teams.c.ingested_event))).all())
    finally:
        await resources.close()
    assert before is False
    assert flags[1] is True and flags[7] is True
    assert len(late.dead_letters) == 1 and "team" in late.dead_letters[0].error

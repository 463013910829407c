"""Team rules of ingestion (spec 5.1): the first-event flag, and a team created after its
first events is seen without waiting for a cache to expire."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from app.embedded import run_chain
from app.stores.plugin_configs import ensure_team
from schemas.tables import teams
from tests.app.pipeline_fixtures import capture, embedded


async def test_the_first_stored_event_sets_ingested_event_and_a_late_team_is_seen(
    tmp_path: Path,
) -> None:
    async with embedded(tmp_path) as resources:
        async with resources.engine.connect() as conn:
            query = select(teams.c.ingested_event).where(teams.c.id == 1)
            before = (await conn.execute(query)).scalar_one()
        await run_chain(resources.context, [capture("$pageview")])
        late = await run_chain(resources.context, [capture("$pageview", team_id=7)])
        await ensure_team(resources.engine, 7)  # team 7 is created after its first event
        await run_chain(resources.context, [capture("$pageview", team_id=7)])
        async with resources.engine.connect() as conn:
            flags = dict((await conn.execute(select(teams.c.id, teams.c.ingested_event))).all())
    assert before is False
    assert flags[1] is True and flags[7] is True
    assert len(late.dead_letters) == 1 and "team" in late.dead_letters[0].error

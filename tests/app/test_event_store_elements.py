"""The Postgres pipeline keeps autocapture elements apart, by group, as the original did."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.pipeline.elements import elements_hash, elements_of
from app.stores.events import SqlEventStore
from schemas.tables import element_groups, elements

ELEMENTS = elements_of(
    [
        {"tag_name": "a", "nth_child": 1, "nth_of_type": "2", "attr__class": "btn btn-sm"},
        {"tag_name": "div", "nth_child": 1, "nth_of_type": 2, "$el_text": "💻"},
    ]
)


def _row(team_id: int, with_elements: bool) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "uuid": str(uuid.uuid4()),
        "team_id": team_id,
        "event": "$autocapture",
        "distinct_id": "u",
        "person_id": str(uuid.uuid4()),
        "properties": {},
        "elements_chain": "",
        "elements": ELEMENTS if with_elements else [],
        "elements_hash": elements_hash(ELEMENTS) if with_elements else None,
        "timestamp": now,
        "created_at": now,
    }


async def test_an_element_group_is_stored_once_per_team_with_its_elements(
    sql_engine: AsyncEngine,
) -> None:
    engine = sql_engine
    store = SqlEventStore(engine)
    await store.write([_row(1, True), _row(1, True), _row(1, False)])
    await store.write([_row(1, True), _row(2, True)])  # seen for team 1; new for team 2
    async with engine.connect() as conn:
        groups = (await conn.execute(select(element_groups.c.team_id, element_groups.c.hash))).all()
        count = (await conn.execute(select(func.count()).select_from(elements))).scalar_one()
        first = (await conn.execute(select(elements).where(elements.c.order == 0).limit(1))).first()
    digest = elements_hash(ELEMENTS)
    assert sorted(groups) == [(1, digest), (2, digest)]
    assert count == 4
    assert first is not None and first.tag_name == "a" and first.attr_class == ["btn", "btn-sm"]
    assert first.nth_of_type == 2  # stored as the column's number though the browser sent text


async def test_session_recordings_round_trip_and_a_rewrite_adds_nothing(
    sql_engine: AsyncEngine,
) -> None:
    engine = sql_engine
    store = SqlEventStore(engine)
    now = datetime.now(UTC)
    row = {
        "uuid": str(uuid.uuid4()),
        "team_id": 1,
        "distinct_id": "viewer",
        "session_id": "s-1",
        "window_id": None,
        "snapshot_data": {"type": 3, "data": {"x": 1}},
        "timestamp": now,
        "created_at": now,
    }
    await store.write_recordings([row])
    await store.write_recordings([row])  # a redelivered batch
    (stored,) = await store.read_recordings(1, "s-1")
    assert stored["uuid"] == row["uuid"] and stored["snapshot_data"] == {
        "type": 3,
        "data": {"x": 1},
    }

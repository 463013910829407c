"""Groups (ingestion spec 4.8), through the embedded pipeline."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from app.embedded import run_chain
from app.stores.groups import GroupStore
from tests.app.pipeline_fixtures import capture, embedded


async def test_group_types_get_indexes_events_carry_them_and_identify_stores_the_group(
    tmp_path: Path,
) -> None:
    async with embedded(tmp_path) as resources:
        ctx = resources.context
        identify = {"$group_type": "company", "$group_key": "acme", "$group_set": {"plan": "free"}}
        again = {**identify, "$group_set": {"seats": 3}}
        types = {f"type{i}": f"k{i}" for i in range(6)}  # one more than a team may have
        await run_chain(
            ctx,
            [
                capture("$groupidentify", identify),
                capture("$pageview", {"n": 1, "$groups": {"company": "acme", "project": "p1"}}),
                capture("$groupidentify", again),  # replaces, does not merge
                capture("$pageview", {"n": 3, "$groups": types}),
            ],
        )
        stored = {e["properties"].get("n"): e for e in await ctx.events.read(1)}
        groups = await ctx.groups.read(1)
    pageview, many = stored[1]["properties"], stored[3]["properties"]
    assert pageview["$group_0"] == "acme" and pageview["$group_1"] == "p1"
    assert [many.get(f"$group_{i}") for i in range(2, 5)] == ["k0", "k1", "k2"]
    assert "$group_5" not in many  # the sixth type of the team gets no index
    assert groups == [
        {"group_type_index": 0, "group_key": "acme", "group_properties": {"seats": 3}}
    ]


async def test_workers_seeing_new_group_types_at_once_agree_on_their_indexes(
    sql_engine: AsyncEngine,
) -> None:
    first, second = GroupStore(sql_engine), GroupStore(sql_engine)  # two workers
    same = await asyncio.gather(first.type_index(1, "company"), second.type_index(1, "company"))
    others = await asyncio.gather(first.type_index(1, "project"), second.type_index(1, "team"))
    assert same[0] == same[1] == 0
    assert sorted(others) == [1, 2]
    assert await first.type_index(2, "company") == 0  # another team counts from 0

"""Persons (ingestion spec 4): the merge rules, decided by the persons stage over the
store, on SQLite and on the real Postgres; the same persons whatever the batches; and
two workers merging the same persons at once."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from app.pipeline.context import PipelineContext
from app.pipeline.parse import parse_messages
from app.pipeline.persons import attach_persons, resolve_persons
from app.pipeline.write import write_events
from app.stores.definitions import DefinitionStore
from app.stores.delivery_marks import DeliveryMarks
from app.stores.events import SqlEventStore
from app.stores.groups import GroupStore
from app.stores.persons import Person, PersonStore
from app.stores.teams import TeamStore
from schemas.tables import teams

_team_ids = itertools.count(1)
START = datetime(2026, 11, 1, tzinfo=UTC)


def stores(engine: AsyncEngine) -> PipelineContext:
    """The stages' stores on `engine`; the tests here run no plugins."""
    return PipelineContext(
        teams=TeamStore(engine),
        persons=PersonStore(engine),
        events=SqlEventStore(engine),
        plugins=cast(Any, None),
        definitions=DefinitionStore(engine),
        groups=GroupStore(engine),
        delivered=DeliveryMarks(),
    )


async def new_team(engine: AsyncEngine) -> int:
    team_id = next(_team_ids) + 1000 * (id(engine) % 1000)
    async with engine.begin() as conn:
        await conn.execute(teams.insert().values(id=team_id, name=f"t{team_id}"))
    return team_id


def event(
    name: str, distinct_id: str, properties: dict[str, Any] | None = None, *, team_id: int = 1
) -> dict[str, Any]:
    """An event as the persons stage receives it."""
    return {
        "uuid": str(uuid.uuid4()),
        "event": name,
        "distinct_id": distinct_id,
        "team_id": team_id,
        "properties": dict(properties or {}),
        "timestamp": "2026-11-01T10:00:00.000Z",
    }


async def person(ctx: PipelineContext, team_id: int, distinct_id: str) -> Person:
    found = await ctx.persons.by_distinct_id(team_id, distinct_id)
    assert found is not None, distinct_id
    return found


# --- the rules, one batch each ---------------------------------------------------------


async def test_alias_of_two_new_ids_makes_one_person_current_first(sql_engine: AsyncEngine) -> None:
    ctx = stores(sql_engine)
    await attach_persons(ctx, [event("$create_alias", "user", {"alias": "anon"})])
    found = await person(ctx, 1, "anon")
    assert found.distinct_ids == ["user", "anon"] and not found.is_identified


async def test_alias_adds_the_missing_id_to_the_person_that_exists(sql_engine: AsyncEngine) -> None:
    ctx = stores(sql_engine)
    await attach_persons(ctx, [event("$pageview", "anon"), event("$pageview", "known")])
    await attach_persons(
        ctx,
        [
            event("$identify", "user", {"$anon_distinct_id": "anon"}),
            event("$create_alias", "known", {"alias": "other"}),
        ],
    )
    assert (await person(ctx, 1, "user")).distinct_ids == ["anon", "user"]
    assert (await person(ctx, 1, "user")).is_identified
    assert (await person(ctx, 1, "other")).distinct_ids == ["known", "other"]


async def test_merge_keeps_the_survivors_properties_the_earlier_creation_and_all_ids(
    sql_engine: AsyncEngine,
) -> None:
    ctx = stores(sql_engine)
    early = {**event("$pageview", "anon", {"$set": {"plan": "free", "seen": 1}})}
    early["timestamp"] = "2026-10-01T00:00:00.000Z"
    await attach_persons(ctx, [early, event("$pageview", "user", {"$set": {"plan": "paid"}})])
    await attach_persons(ctx, [event("$create_alias", "user", {"alias": "anon"})])
    merged = await person(ctx, 1, "anon")
    assert merged.distinct_ids == ["anon", "user"]  # rows keep their order when moved
    assert merged.properties == {"plan": "paid", "seen": 1}
    assert merged.created_at == datetime(2026, 10, 1, tzinfo=UTC)
    assert len(await ctx.persons.all(1)) == 1  # the absorbed person is gone


async def test_identify_never_absorbs_an_identified_person_but_marks_the_current_one(
    sql_engine: AsyncEngine,
) -> None:
    ctx = stores(sql_engine)
    await attach_persons(
        ctx,
        [
            event("$identify", "first", {"$anon_distinct_id": "a1"}),
            event("$pageview", "second"),
            event("$identify", "second", {"$anon_distinct_id": "first"}),
        ],
    )
    first, second = await person(ctx, 1, "first"), await person(ctx, 1, "second")
    assert first.id != second.id and first.distinct_ids == ["first", "a1"]
    assert first.is_identified and second.is_identified


async def test_identify_without_anon_id_and_generic_ids_merge_nothing(
    sql_engine: AsyncEngine,
) -> None:
    ctx = stores(sql_engine)
    await attach_persons(
        ctx,
        [
            event("$pageview", "a"),
            event("$identify", "b"),
            event("$create_alias", "anonymous", {"alias": "a"}),
        ],
    )
    assert not (await person(ctx, 1, "b")).is_identified
    assert (await person(ctx, 1, "a")).distinct_ids == ["a"]
    assert (await person(ctx, 1, "anonymous")).distinct_ids == ["anonymous"]


async def test_set_once_set_and_unset_apply_in_that_order(sql_engine: AsyncEngine) -> None:
    ctx = stores(sql_engine)
    await attach_persons(ctx, [event("$pageview", "u", {"$set": {"a": 1, "gone": True}})])
    batch = [
        event("$pageview", "u", {"$set_once": {"a": 2, "b": 2}, "$set": {"c": 3}}),
        event("$pageview", "u", {"$unset": ["gone", "never"]}),
        event("$groupidentify", "u", {"$set": {"group": "not for persons"}}),
    ]
    await attach_persons(ctx, batch)
    assert (await person(ctx, 1, "u")).properties == {"a": 1, "b": 2, "c": 3}
    assert [e["person"]["properties"] for e in batch] == [
        {"a": 1, "gone": True, "b": 2, "c": 3},
        {"a": 1, "b": 2, "c": 3},
        {"a": 1, "b": 2, "c": 3},
    ]


async def test_a_merge_in_the_same_batch_as_sets_keeps_the_survivors_value(
    sql_engine: AsyncEngine,
) -> None:
    ctx = stores(sql_engine)
    await attach_persons(
        ctx,
        [
            event("$pageview", "user", {"$set": {"plan": "paid"}}),
            event("$pageview", "anon", {"$set": {"plan": "free"}}),
            event("$identify", "user", {"$anon_distinct_id": "anon"}),
        ],
    )
    assert (await person(ctx, 1, "anon")).properties == {"plan": "paid"}


async def test_a_person_is_created_at_its_first_events_time(sql_engine: AsyncEngine) -> None:
    ctx = stores(sql_engine)
    first = event("$pageview", "new")
    first["timestamp"] = "2026-09-09T09:09:09.000Z"
    await attach_persons(ctx, [first, event("$pageview", "new")])
    assert (await person(ctx, 1, "new")).created_at == datetime(2026, 9, 9, 9, 9, 9, tzinfo=UTC)
    assert first["person"]["created_at"] == "2026-09-09T09:09:09.000Z"


# --- any batches, the same persons -----------------------------------------------------

# few ids and keys, so merges of persons with clashing properties are common
IDS = ["a", "b", "c", "anonymous"]
KEYS = ["k1", "k2"]
values = st.dictionaries(st.sampled_from(KEYS), st.integers(0, 2), min_size=1, max_size=2)
regular = st.builds(
    lambda d, set_, once, unset, groups: ("$pageview", d, {
        **({"$set": set_} if set_ else {}),
        **({"$set_once": once} if once else {}),
        **({"$unset": unset} if unset else {}),
        **({"$groups": groups} if groups else {}),
    }),
    st.sampled_from(IDS), values, values | st.just({}),
    st.lists(st.sampled_from(KEYS), max_size=2),
    st.dictionaries(st.sampled_from(["company", "project"]), st.sampled_from(["g1", "g2"])),
)  # fmt: skip
identify = st.builds(
    lambda d, anon, set_: ("$identify", d, {"$anon_distinct_id": anon, "$set": set_}),
    st.sampled_from(IDS), st.sampled_from(IDS), values,
)  # fmt: skip
alias = st.builds(
    lambda d, other: ("$create_alias", d, {"alias": other}),
    st.sampled_from(IDS), st.sampled_from(IDS),
)  # fmt: skip
group_identify = st.builds(
    lambda d, kind, key, set_: ("$groupidentify", d, {
        "$group_type": kind, "$group_key": key, "$group_set": set_, "$set": set_,
    }),
    st.sampled_from(IDS), st.sampled_from(["company", "project"]), st.sampled_from(["g1", "g2"]),
    values,
)  # fmt: skip
sequences = st.lists(
    st.one_of(regular, regular, identify, alias, group_identify), min_size=3, max_size=24
)


def capture_messages(
    team_id: int, sequence: Sequence[tuple[str, str, dict[str, Any]]]
) -> list[bytes]:
    """Capture messages for `sequence`, an hour apart but not in timestamp order."""
    messages = []
    for n, (name, distinct_id, properties) in enumerate(sequence):
        at = START + timedelta(hours=(n * 7) % 11)
        data = {"event": name, "properties": {**properties, "n": n}, "timestamp": at.isoformat()}
        messages.append(
            orjson.dumps(
                {
                    "distinct_id": distinct_id,
                    "team_id": team_id,
                    "uuid": str(uuid.uuid4()),
                    "now": "2026-12-01T00:00:00Z",
                    "data": orjson.dumps(data).decode(),
                }
            )
        )
    return messages


async def ingest(ctx: PipelineContext, messages: list[bytes], sizes: Sequence[int]) -> list[Any]:
    """Run `messages` through parse, persons and write in batches of `sizes` (cycled)."""
    seen: list[Any] = []
    start, cycle = 0, itertools.cycle(sizes)
    while start < len(messages):
        size = next(cycle)
        parsed = parse_messages(messages[start : start + size]).events
        start += size
        written = await write_events(ctx, (await resolve_persons(ctx, parsed)).events)
        seen.extend(written.events)
    return seen


async def outcome(ctx: PipelineContext, team_id: int, written: list[Any]) -> dict[str, Any]:
    """What was stored for the team, with the random uuids replaced by their order."""
    people = await ctx.persons.all(team_id)
    uuids: dict[str, int] = {}
    for e in written:
        uuids.setdefault(e["person"]["uuid"], len(uuids))
    events = sorted(await ctx.events.read(team_id), key=lambda e: e["properties"]["n"])
    return {
        "persons": [(p.distinct_ids, p.properties, p.is_identified, p.created_at) for p in people],
        "events": [
            (e["event"], e["distinct_id"], {k: v for k, v in e["properties"].items()})
            for e in events
        ],
        "event persons": [
            (uuids[e["person"]["uuid"]], e["person"]["properties"], e["person"]["created_at"])
            for e in written
        ],
        "groups": await ctx.groups.read(team_id),
    }


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=sequences, sizes=st.lists(st.integers(1, 8), min_size=1, max_size=5))
async def test_any_batches_store_the_same_as_one_event_at_a_time(
    sql_engine: AsyncEngine,
    sequence: list[tuple[str, str, dict[str, Any]]],
    sizes: list[int],
) -> None:
    ctx = stores(sql_engine)
    one, batched = await new_team(sql_engine), await new_team(sql_engine)
    alone = await ingest(ctx, capture_messages(one, sequence), [1])
    together = await ingest(ctx, capture_messages(batched, sequence), sizes)
    expected, actual = await outcome(ctx, one, alone), await outcome(ctx, batched, together)
    assert actual == expected


# --- two workers at once ---------------------------------------------------------------


@pytest.mark.integration
async def test_workers_merging_the_same_persons_at_once_lose_and_duplicate_no_id(
    sql_engine: AsyncEngine,
) -> None:
    if sql_engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer; the race is Postgres's")
    team = await new_team(sql_engine)
    ids = [f"p{i}" for i in range(12)]
    seed = stores(sql_engine)
    await attach_persons(seed, [event("$pageview", d, team_id=team) for d in ids])
    workers = [stores(sql_engine) for _ in range(4)]  # each its own PersonStore

    async def worker(n: int) -> None:
        # every worker joins the ids pairwise in its own order; batches overlap on purpose
        order = ids[n:] + ids[:n]
        for left, right in itertools.pairwise(order):
            batch = [
                event("$create_alias", left, {"alias": right}, team_id=team),
                event("$pageview", f"new-{n}-{left}", team_id=team),
                event("$create_alias", f"new-{n}-{left}", {"alias": left}, team_id=team),
            ]
            await attach_persons(workers[n], batch)

    await asyncio.gather(*(worker(n) for n in range(len(workers))))
    people = await seed.persons.all(team)
    mapped = [d for p in people for d in p.distinct_ids]
    created = {f"new-{n}-{d}" for n in range(4) for d in (ids[n:] + ids[:n])[:-1]}
    assert len(mapped) == len(set(mapped))  # no id twice
    assert set(mapped) == set(ids) | created  # none lost
    assert len(people) == 1  # every id joined into one person in the end

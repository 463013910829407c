"""How a stage's failures are handled: a bad event costs only itself, a server that is
down stalls the stage (both against the real Postgres)."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import asyncpg
import pytest

from app.pipeline import stalls
from app.pipeline.failures import is_infrastructure
from app.pipeline.output import StageOutput
from app.pipeline.retries import run_with_retries

pytestmark = pytest.mark.integration


def _dsn() -> str:
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:55432/plugin_server")
    return url.replace("postgresql://", "postgres://", 1)


def _events(n: int, bad: set[int]) -> list[dict[str, Any]]:
    return [
        {"uuid": str(uuid.uuid4()), "team_id": 1, "name": "nul\x00here" if i in bad else f"e{i}"}
        for i in range(n)
    ]


async def test_a_bad_event_in_a_batch_costs_only_itself() -> None:
    conn = await asyncpg.connect(_dsn())
    table = f"split_{uuid.uuid4().hex[:8]}"
    await conn.execute(f"CREATE TABLE {table} (uuid text primary key, name text)")
    try:

        async def write(events: list[dict[str, Any]]) -> StageOutput:
            # one statement for the batch, as the stores write: one bad row fails it all
            await conn.executemany(
                f"INSERT INTO {table} VALUES ($1, $2) ON CONFLICT DO NOTHING",
                [(e["uuid"], e["name"]) for e in events],
            )
            return StageOutput(events=events)

        events = _events(40, bad={7, 30})
        out = await run_with_retries("write", write, events)
        stored = {r["uuid"] for r in await conn.fetch(f"SELECT uuid FROM {table}")}
    finally:
        await conn.execute(f"DROP TABLE {table}")
        await conn.close()
    assert [e["uuid"] for e in out.events] == [
        e["uuid"] for i, e in enumerate(events) if i not in {7, 30}
    ]
    assert stored == {e["uuid"] for e in out.events}
    assert sorted(letter.event_uuid or "" for letter in out.dead_letters) == sorted(
        [events[7]["uuid"], events[30]["uuid"]]
    )
    assert all("0x00" in letter.error for letter in out.dead_letters)


async def test_a_server_that_does_not_answer_stalls_the_stage_and_dead_letters_nothing() -> None:
    attempts = 0

    async def write(events: list[dict[str, Any]]) -> StageOutput:
        nonlocal attempts
        attempts += 1
        # the first attempts reach a port nobody listens on: a refused connection
        dsn = _dsn() if attempts > 3 else "postgres://postgres@127.0.0.1:1/x"
        conn = await asyncpg.connect(dsn, timeout=2)
        await conn.close()
        return StageOutput(events=events)

    events = _events(10, bad=set())
    task = asyncio.ensure_future(run_with_retries("write", write, events, min_backoff=0.05))
    await asyncio.sleep(0.1)
    assert "write" in stalls.current()
    assert "ConnectionRefusedError" in stalls.current()["write"].reason
    out = await task
    assert out.events == events and out.dead_letters == []
    assert "write" not in stalls.current()


def test_connection_and_schema_errors_are_infrastructure_data_errors_are_not() -> None:
    assert is_infrastructure(ConnectionRefusedError())
    assert is_infrastructure(asyncpg.exceptions.UndefinedTableError("no table"))
    assert is_infrastructure(asyncpg.exceptions.CannotConnectNowError("starting"))
    assert not is_infrastructure(asyncpg.exceptions.UntranslatableCharacterError("nul"))
    assert not is_infrastructure(asyncpg.exceptions.UniqueViolationError("dup"))
    assert not is_infrastructure(ValueError("bad value"))
    wrapped = RuntimeError("store failed")
    wrapped.__cause__ = TimeoutError()
    assert is_infrastructure(wrapped)

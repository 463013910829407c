"""Which stages one agent runs (`PIPELINE_BREAKS`), and inserts sent together."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from app.pipeline.stages import STAGE_NAMES, run_after, run_between
from app.settings import SettingsError, load_settings
from app.stores.group_insert import GroupInsert

EVERY = set(STAGE_NAMES)


@pytest.mark.parametrize(
    ("breaks", "first", "expected"),
    [
        # the default: parse's agent runs to write, the exports agent the rest
        ({"exports"}, None, (["plugins", "persons", "write"], "exports")),
        ({"exports"}, "persons", (["persons", "write"], "exports")),
        ({"exports"}, "exports", (["exports"], None)),
        # no breaks: one agent, the whole chain
        (set(), None, (["plugins", "persons", "write", "exports"], None)),
        # every stage apart: each agent its own stage
        (EVERY, None, ([], "plugins")),
        (EVERY, "plugins", (["plugins"], "persons")),
        (EVERY, "write", (["write"], "exports")),
    ],
)
def test_an_agent_runs_its_stage_and_those_after_it_up_to_the_next_break(
    breaks: set[str], first: str | None, expected: tuple[list[str], str | None]
) -> None:
    assert run_between(first, breaks) == expected


def test_the_overflow_agent_goes_on_after_the_plugins_as_the_plugins_agent_would() -> None:
    assert run_after("plugins", {"exports"}) == (["persons", "write"], "exports")
    assert run_after("plugins", EVERY) == ([], "persons")
    assert run_after("plugins", set()) == (["persons", "write", "exports"], None)


def test_breaks_must_name_stages() -> None:
    assert load_settings(PIPELINE_BREAKS=" write , exports").pipeline_breaks == {
        "write",
        "exports",
    }
    assert load_settings(PIPELINE_BREAKS="").pipeline_breaks == frozenset()
    with pytest.raises(SettingsError, match=r"PIPELINE_BREAKS.*not stages: parse"):
        load_settings(PIPELINE_BREAKS="parse,write")


class SlowTable:
    """A blocking insert that takes a while and refuses rows marked bad."""

    def __init__(self) -> None:
        self.inserts: list[list[Any]] = []
        self.lock = threading.Lock()

    def insert(self, rows: list[tuple[Any, ...]]) -> None:
        threading.Event().wait(0.05)
        if any(row[0] == "bad" for row in rows):
            raise ValueError("refused a row")
        with self.lock:
            self.inserts.append([row[0] for row in rows])


async def test_writers_that_come_during_an_insert_share_the_next_one() -> None:
    table = SlowTable()
    insert = GroupInsert(table.insert)
    first = asyncio.create_task(insert([("a",)]))
    await asyncio.sleep(0.01)  # the first insert is in flight
    await asyncio.gather(first, insert([("b",)]), insert([("c",), ("d",)]))
    assert table.inserts == [["a"], ["b", "c", "d"]]


async def test_a_refused_row_fails_only_its_own_writer() -> None:
    table = SlowTable()
    insert = GroupInsert(table.insert)
    first = asyncio.create_task(insert([("a",)]))
    await asyncio.sleep(0.01)
    results = await asyncio.gather(
        first, insert([("b",)]), insert([("bad",), ("e",)]), insert([("f",)]),
        return_exceptions=True,
    )  # fmt: skip
    assert results[:2] == [None, None] and results[3] is None
    assert isinstance(results[2], ValueError)
    assert sorted(r for rows in table.inserts for r in rows) == ["a", "b", "f"]

"""A backend that fails while the worker serves a sandbox's calls costs that call only:
the request still gets its own answer, and the next request gets the next one."""

from __future__ import annotations

from typing import Any

import pytest

from tests.plugin_runtime.runtime_fixtures import TEAM, event, make_runtime, record

CODE = """
def process_event(event, meta):
    meta.cache.set("seen", event["properties"]["n"])  # a write nobody waits for
    event["properties"]["doubled"] = 2 * event["properties"]["n"]
    return event
"""


def _down(*_args: Any, **_kwargs: Any) -> None:
    raise ConnectionError("the server is down")


async def test_a_failed_write_whose_failure_cannot_be_recorded_keeps_requests_apart() -> None:
    h = make_runtime()
    await h.runtime.load([record(CODE, id=41)])
    try:
        # the write fails, and so does recording that it failed (both servers are down)
        h.cache.set = _down  # type: ignore[method-assign]
        h.errors.record = _down  # type: ignore[method-assign]
        first = await h.runtime.process_events(TEAM, [event(n=1)])
        assert [e["properties"]["doubled"] for e in first] == [2]

        for n in (2, 3):  # each request its own answer, not the one before it
            kept = await h.runtime.process_events(TEAM, [event(n=n)])
            assert [e["properties"]["doubled"] for e in kept] == [2 * n]
    finally:
        await h.runtime.close()


READS = """
def process_event(event, meta):
    event["properties"]["cached"] = meta.cache.get("seen", None)  # a call answered
    event["properties"]["doubled"] = 2 * event["properties"]["n"]
    return event
"""


class Interrupted(BaseException):
    """What no `except Exception` takes: serving stops with the answer still to come."""


async def test_a_request_given_up_before_its_answer_leaves_none_for_the_next() -> None:
    h = make_runtime()
    await h.runtime.load([record(READS, id=42)])
    try:
        served = h.cache.get

        def interrupted(*_args: Any, **_kwargs: Any) -> Any:
            raise Interrupted

        h.cache.get = interrupted  # type: ignore[method-assign]
        with pytest.raises(Interrupted):
            await h.runtime.process_events(TEAM, [event(n=1)])
        h.cache.get = served  # type: ignore[method-assign]

        for n in (2, 3):  # answers of their own, from a fresh sandbox
            kept = await h.runtime.process_events(TEAM, [event(n=n)])
            assert [e["properties"]["doubled"] for e in kept] == [2 * n]
    finally:
        await h.runtime.close()

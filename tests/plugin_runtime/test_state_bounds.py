"""Each plugin config's cache and storage are bounded per value and in total, in the
authoring kit and in the server's runtime alike, and the refusal says why."""

from __future__ import annotations

import pytest

from plugin_runtime.errors import StateLimitError
from plugin_runtime.sandbox.limits import Limits
from plugin_runtime.testing import PluginHarness
from plugin_runtime.types import PluginSource
from tests.plugin_runtime.runtime_fixtures import TEAM, event, make_runtime, record

TIGHT = Limits(
    cache_value_bytes=1_000,
    cache_total_bytes=4_000,
    storage_value_bytes=1_000,
    storage_total_bytes=4_000,
)


def _harness(body: str) -> PluginHarness:
    code = "def process_event(event, meta):\n" + "".join(
        f"    {line}\n" for line in body.splitlines()
    )
    code += "    return event\n"
    return PluginHarness(
        PluginSource(id=1, name="p", plugin_json={}, files={"plugin.py": code}), limits=TIGHT
    )


@pytest.mark.parametrize(
    "body",
    [
        'meta.cache.set("k", "x" * 2000)',
        'meta.cache.lpush("k", ["x" * 2000])',
        'meta.storage.set("k", "x" * 2000)',
    ],
)
def test_a_value_over_its_bound_is_refused_in_the_call(body: str) -> None:
    with _harness(body) as h, pytest.raises(StateLimitError, match="over the 1,000-byte bound"):
        h.process_event({"event": "x"})


@pytest.mark.parametrize("store", ["cache", "storage"])
async def test_a_config_cannot_hold_more_than_its_total(store: str) -> None:
    h = make_runtime(limits=TIGHT)
    code = f"""
def process_event(event, meta):
    n = event["properties"]["n"]
    meta.{store}.set("key-" + str(n), "x" * 900)
    return event
"""
    await h.runtime.load([record(code)])
    for n in range(10):
        await h.runtime.process_events(TEAM, [event(n=n)])
    held = h.cache.usage("@plugin-config/39/") if store == "cache" else h.storage.usage(39)
    assert held <= TIGHT.cache_total_bytes
    error = h.errors.errors[39]
    assert f"{store}.set failed: StateLimitError" in error["message"]
    assert "over its bound of 4,000 bytes" in error["message"]
    await h.runtime.close()


async def test_space_freed_by_deletes_can_be_used_again() -> None:
    h = make_runtime(limits=TIGHT)
    code = """
def process_event(event, meta):
    n = event["properties"]["n"]
    meta.storage.delete("key-" + str(n - 3))
    meta.storage.set("key-" + str(n), "x" * 900)
    return event
"""
    await h.runtime.load([record(code)])
    for n in range(12):
        await h.runtime.process_events(TEAM, [event(n=n)])
    assert 39 not in h.errors.errors
    assert sorted(h.storage.rows(39)) == ["key-10", "key-11", "key-9"]
    await h.runtime.close()

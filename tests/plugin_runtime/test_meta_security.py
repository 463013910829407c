"""Plugin code reaches nothing through `meta` but its own config's data."""

from __future__ import annotations

from typing import Any

from plugin_runtime.backends.memory import MemoryCache, MemoryStorage
from plugin_runtime.extensions.cache import Cache
from plugin_runtime.extensions.metrics import MetricValues
from plugin_runtime.extensions.storage import Storage
from plugin_runtime.meta import META_FIELDS, build_meta
from tests.plugin_runtime.runtime_fixtures import TEAM, event, make_runtime, record

BACKEND_TYPES = (
    "MemoryCache",
    "MemoryStorage",
    "MemoryLogSink",
    "MemoryJobQueue",
    "MemoryCaptureSink",
    "MemoryErrorSink",
    "HttpFixtures",
    "RuntimeBackends",
    "PluginRuntime",
    "PluginInstance",
)


def _public_graph(root: Any, depth: int = 4) -> list[Any]:
    """Every object reachable from `root` through attributes a plugin may name (no `_`)."""
    seen: dict[int, Any] = {}
    frontier = [root]
    for _ in range(depth):
        following = []
        for obj in frontier:
            if id(obj) in seen or isinstance(obj, str | int | float | bytes | type(None)):
                continue
            seen[id(obj)] = obj
            children = list(obj.values()) if isinstance(obj, dict) else []
            for name in dir(obj):
                if not name.startswith("_"):
                    try:
                        children.append(getattr(obj, name))
                    except Exception:
                        continue
            following.extend(children)
        frontier = following
    return list(seen.values())


def test_meta_exposes_exactly_the_documented_fields():
    h = make_runtime()
    meta = build_meta(record("x = 1"), h.backends, job_names=frozenset(), metrics=MetricValues({}))
    public = {n for n in dir(meta) if not n.startswith("_")}
    assert public == set(META_FIELDS)


def test_no_backend_is_reachable_from_meta():
    h = make_runtime()
    meta = build_meta(
        record("x = 1"), h.backends, job_names=frozenset({"j"}), metrics=MetricValues({"m": "sum"})
    )
    reachable = {type(obj).__name__ for obj in _public_graph(meta)}
    assert reachable.isdisjoint(BACKEND_TYPES)


async def test_plugin_code_cannot_name_private_attributes():
    h = make_runtime(attempts=1)
    code = """
def process_event(event, meta):
    event["properties"]["backend"] = str(meta.cache._backend)
    return event
"""
    await h.runtime.load([record(code)])
    assert 39 in h.runtime.failing_configs()  # refused at compile time
    assert await h.runtime.process_events(TEAM, [event()]) == [event()]


async def test_bound_methods_do_not_lead_to_backends():
    h = make_runtime(attempts=1)
    code = """
def process_event(event, meta):
    event["properties"]["self"] = str(meta.cache.get.__self__)
    return event
"""
    await h.runtime.load([record(code)])
    assert 39 in h.runtime.failing_configs()


async def test_configs_do_not_see_each_others_cache_storage_or_global():
    h = make_runtime()
    code = """
def process_event(event, meta):
    mine = meta.config["name"]
    event["properties"][mine] = {
        "cache": meta.cache.get("k"),
        "storage": meta.storage.get("k"),
        "global": meta.global_.get("k"),
    }
    meta.cache.set("k", mine)
    meta.storage.set("k", mine)
    meta.global_["k"] = mine
    return event
"""
    plugin_json = {"config": [{"key": "name", "name": "name"}]}
    configs = [
        record(code, id=39, order=0, config={"name": "a"}, plugin_json=plugin_json),
        record(code, id=40, order=1, config={"name": "b"}, plugin_json=plugin_json),
    ]
    await h.runtime.load(configs)
    (first,) = await h.runtime.process_events(TEAM, [event()])
    assert first["properties"]["b"] == {"cache": None, "storage": None, "global": None}
    (second,) = await h.runtime.process_events(TEAM, [event()])
    assert second["properties"]["a"] == {"cache": "a", "storage": "a", "global": "a"}
    assert second["properties"]["b"] == {"cache": "b", "storage": "b", "global": "b"}


def test_cache_and_storage_keys_of_two_configs_never_collide():
    cache, storage = MemoryCache(), MemoryStorage()
    for config in (1, 11, 111):
        Cache(cache, config).set("1/k", config)
        Storage(storage, config).set("k", config)
    assert [Cache(cache, c).get("1/k") for c in (1, 11, 111)] == [1, 11, 111]
    assert [Storage(storage, c).get("k") for c in (1, 11, 111)] == [1, 11, 111]
    assert len(cache.snapshot()) == 3


async def test_mutating_meta_config_does_not_change_the_stored_config():
    h = make_runtime()
    code = """
def process_event(event, meta):
    meta.config["name"] = "changed"
    return event
"""
    plugin_json = {"config": [{"key": "name", "name": "name"}]}
    config = record(code, config={"name": "kept"}, plugin_json=plugin_json)
    await h.runtime.load([config])
    await h.runtime.process_events(TEAM, [event()])
    assert config.config == {"name": "kept"}

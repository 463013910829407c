from pathlib import Path

from plugin_runtime.testing import PluginHarness, make_event

PLUGIN = Path(__file__).parents[1]


def test_greeting_comes_from_config():
    h = PluginHarness.from_path(PLUGIN, config={"greeting": "bonjour"})
    out = h.process_event({"event": "$pageview", "properties": {"$current_url": "/"}})
    assert out["properties"]["greeting"] == "bonjour"
    assert out["properties"]["$current_url"] == "/"


def test_greeting_defaults_to_hello():
    h = PluginHarness.from_path(PLUGIN)
    assert h.process_event(make_event(properties={}))["properties"]["greeting"] == "hello"


def test_counts_events_per_day_in_cache():
    h = PluginHarness.from_path(PLUGIN)
    for _ in range(3):
        h.process_event(make_event(properties={}, timestamp="2024-05-01T10:00:00Z"))
    out = h.process_event(make_event(properties={}, timestamp="2024-05-02T09:00:00Z"))
    assert out["properties"]["events_today"] == 1
    assert h.cache == {"events:2024-05-01": 3, "events:2024-05-02": 1}

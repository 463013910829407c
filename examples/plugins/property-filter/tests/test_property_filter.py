from pathlib import Path

import pytest

from plugin_runtime.errors import PluginConfigError
from plugin_runtime.testing import PluginHarness

PLUGIN = Path(__file__).parents[1]


def test_setup_parses_the_list_into_global():
    h = PluginHarness.from_path(PLUGIN, config={"properties": " $ip , email,$set.email,"})
    h.setup()
    assert h.global_["paths"] == [["$ip"], ["email"], ["$set", "email"]]


def test_configured_properties_are_removed_including_nested_ones():
    h = PluginHarness.from_path(PLUGIN, config={"properties": "$ip,email,$set.email"})
    out = h.process_event(
        {
            "event": "signed up",
            "properties": {
                "$ip": "1.2.3.4",
                "email": "a@example.com",
                "plan": "free",
                "$set": {"email": "a@example.com", "name": "A"},
            },
        }
    )
    assert out["properties"] == {"plan": "free", "$set": {"name": "A"}}


def test_missing_properties_are_ignored():
    h = PluginHarness.from_path(PLUGIN, config={"properties": "secret,$set.email"})
    out = h.process_event({"event": "x", "properties": {"$set": "not a dict"}})
    assert out["properties"] == {"$set": "not a dict"}


def test_config_without_properties_is_refused():
    with pytest.raises(PluginConfigError, match="'properties' is required"):
        PluginHarness.from_path(PLUGIN, config={})

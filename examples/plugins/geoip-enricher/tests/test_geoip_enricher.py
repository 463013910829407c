from pathlib import Path

from plugin_runtime.testing import PluginHarness

PLUGIN = Path(__file__).parents[1]

LONDON = {
    "city": {"names": {"en": "London"}},
    "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
    "continent": {"code": "EU", "names": {"en": "Europe"}},
    "location": {"latitude": 51.5, "longitude": -0.12, "time_zone": "Europe/London"},
    "postal": {"code": "EC1"},
    "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
}


def test_location_is_added_to_event_and_person():
    h = PluginHarness.from_path(PLUGIN, geoip={"81.2.69.142": LONDON})
    out = h.process_event({"event": "$pageview", "properties": {"$ip": "81.2.69.142"}})
    props = out["properties"]
    assert props["$geoip_city_name"] == "London"
    assert props["$geoip_country_code"] == "GB"
    assert props["$geoip_latitude"] == 51.5
    assert props["$geoip_subdivision_1_name"] == "England"
    assert props["$set"]["$geoip_country_name"] == "United Kingdom"
    assert props["$set_once"]["$initial_geoip_city_name"] == "London"
    assert props["$set_once"]["$initial_geoip_longitude"] == -0.12


def test_existing_set_properties_are_kept():
    h = PluginHarness.from_path(PLUGIN, geoip={"81.2.69.142": LONDON})
    out = h.process_event(
        {"event": "x", "ip": "81.2.69.142", "properties": {"$set": {"plan": "pro"}}}
    )
    assert out["properties"]["$set"]["plan"] == "pro"
    assert out["properties"]["$set"]["$geoip_city_name"] == "London"


def test_unknown_ip_and_disabled_lookup_leave_event_unchanged():
    h = PluginHarness.from_path(PLUGIN, geoip={"81.2.69.142": LONDON})
    assert h.process_event({"event": "x", "properties": {"$ip": "10.0.0.1"}})["properties"] == {
        "$ip": "10.0.0.1"
    }
    out = h.process_event(
        {"event": "x", "properties": {"$ip": "81.2.69.142", "$geoip_disable": True}}
    )
    assert "$geoip_city_name" not in out["properties"]


def test_without_geoip_database_events_pass_through():
    h = PluginHarness.from_path(PLUGIN, geoip=None)
    out = h.process_event({"event": "x", "properties": {"$ip": "81.2.69.142"}})
    assert out["properties"] == {"$ip": "81.2.69.142"}

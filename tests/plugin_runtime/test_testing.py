"""The authoring kit: PluginHarness and the `plugin test` command."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from plugin_runtime.authoring import run_plugin_test
from plugin_runtime.errors import FetchFixtureMissingError, UnknownJobError
from plugin_runtime.loading import source_from_files
from plugin_runtime.testing import PluginHarness

CODE = """
def setup_plugin(meta):
    meta.global_["setup"] = True
    meta.logger.info("set up")

def process_event(event, meta):
    if event["event"] == "drop me":
        return None
    posthog.capture("seen", {"of": event["event"]})
    meta.jobs.later({"n": 1}).run_in(minutes=5)
    return event

def call_api(meta):
    try:
        fetch("https://api.example.com/x")
    except Exception:
        meta.logger.error("swallowed")

def run_every_minute(meta):
    call_api(meta)

def later(payload, meta):
    meta.storage.set("job", payload)

jobs = {"later": later}
"""


def harness() -> PluginHarness:
    source = source_from_files({"plugin.json": json.dumps({"name": "kit"}), "plugin.py": CODE})
    return PluginHarness(source)


def test_harness_records_logs_captures_and_jobs():
    h = harness()
    out = h.process_event({"event": "$pageview"}, as_server=True)
    assert out["event"] == "$pageview" and out["team_id"] == 2
    assert h.process_event({"event": "drop me"}) is None
    assert h.global_ == {"setup": True}
    assert h.logs == [{"level": "info", "message": "set up"}]
    assert h.captures[0]["event"] == "seen"
    assert h.captures[0]["properties"]["of"] == "$pageview"
    assert [j["name"] for j in h.jobs] == ["later"]
    h.run_job("later", {"n": 1})
    assert h.storage == {"job": {"n": 1}}
    with pytest.raises(UnknownJobError):
        h.run_job("nope")


def test_request_without_fixture_fails_loudly_even_when_caught():
    h = harness()
    with pytest.raises(FetchFixtureMissingError, match=re.escape("GET https://api.example.com/x")):
        h.run_every_minute()
    h.http.add("GET", "https://api.example.com/x", json={"ok": True})
    h.run_every_minute()
    assert [r["url"] for r in h.requests] == ["https://api.example.com/x"] * 2


def test_plugin_test_command_prints_results_and_logs(tmp_path: Path):
    out = io.StringIO()
    events = tmp_path / "events.jsonl"
    events.write_text('{"event": "a", "properties": {"x": 1}}\n{"event": "b"}\n')
    hello = Path(__file__).parents[2] / "examples" / "plugins" / "hello-world"
    assert run_plugin_test(str(hello), str(events), out) == 0
    text = out.getvalue()
    assert "2 events, 0 failed call(s)" in text
    assert '"greeting": "hello"' in text


def test_plugin_test_command_reports_unusable_plugins(tmp_path: Path):
    out = io.StringIO()
    assert run_plugin_test(str(tmp_path), None, out) == 2
    assert "no plugin.json" in out.getvalue()


IGNORES = """
def process_event(event, meta):
    if event.get("event") != "wanted":
        return event
    event["properties"]["seen"] = meta.cache.get("seen", 0)
    return event
"""


def _harness(code: str, **options):
    from plugin_runtime.loading import source_from_files
    from plugin_runtime.testing import PluginHarness

    files = {"plugin.py": code, "plugin.json": '{"name": "t", "main": "plugin.py"}'}
    return PluginHarness(source_from_files(files, label="t"), **options)


def test_an_ignored_event_comes_back_exactly_as_given() -> None:
    from plugin_runtime.testing import make_event, make_pageview

    with _harness(IGNORES) as h:
        event = make_event(event="other", properties={"a": 1})
        assert h.process_event(event) == event
        assert h.process_event({"event": "other"}) == {"event": "other"}
        served = h.process_event({"event": "other"}, as_server=True)
        assert {"uuid", "timestamp", "team_id", "now"} <= set(served)
        assert make_pageview()["properties"]["$browser"] == "Chrome"
        assert make_event()["distinct_id"] == "007"


def test_cache_and_storage_are_live_and_reset_empties_them() -> None:
    with _harness(IGNORES) as h:
        h.cache["seen"] = 3
        assert h.process_event({"event": "wanted", "properties": {}})["properties"]["seen"] == 3
        h.cache.expire("seen")
        assert "seen" not in h.cache
        h.storage["k"] = {"x": 1}
        assert h.storage == {"k": {"x": 1}}
        del h.storage["k"]
        h.cache.set("t", "v", ttl_seconds=60)
        h.reset()
        assert dict(h.cache) == {} and dict(h.storage) == {} and h.logs == []


def test_an_attachment_not_uploaded_is_none_and_validation_can_wait() -> None:
    from plugin_runtime.errors import PluginConfigError
    from plugin_runtime.loading import source_from_files
    from plugin_runtime.testing import PluginHarness

    code = """
def setup_plugin(meta):
    if not meta.config.get("key"):
        raise ValueError("an API key is required")
    meta.global_["rules"] = meta.attachments["rules"]
"""
    plugin_json = (
        '{"name": "t", "main": "plugin.py", "config": ['
        '{"key": "key", "type": "string", "required": true},'
        '{"key": "rules", "type": "attachment"}]}'
    )
    source = source_from_files({"plugin.py": code, "plugin.json": plugin_json}, label="t")
    with pytest.raises(PluginConfigError, match="'key' is required"):
        PluginHarness(source)
    with PluginHarness(source, validate=False, attachments={"rules": None}) as h:
        with pytest.raises(PluginConfigError):
            h.validate()
        with pytest.raises(ValueError, match="an API key is required"):
            h.setup()
    with PluginHarness(source, config={"key": "k"}, attachments={"rules": None}) as h:
        h.setup()
        assert h.global_ == {"rules": None}


def test_without_a_geoip_database_locate_raises_the_documented_error() -> None:
    code = """
def process_event(event, meta):
    try:
        meta.geoip.locate("81.2.69.142")
    except Exception as error:
        event["properties"]["error"] = str(error)
    return event
"""
    with _harness(code) as h:
        out = h.process_event({"event": "e", "properties": {}})
    assert out["properties"]["error"].startswith("IP location capabilities are not available")


def test_captures_keep_the_timestamp_the_plugin_gave() -> None:
    code = """
def process_event(event, meta):
    posthog.capture("later", {"timestamp": "2020-02-23T02:15:00Z", "n": 1})
    posthog.capture("now", {"n": 2})
    return event
"""
    with _harness(code) as h:
        h.process_event({"event": "e", "properties": {}})
        later, now = h.captures
    assert later["properties"]["timestamp"] == "2020-02-23T02:15:00Z"
    assert later["properties"]["n"] == 1
    assert "timestamp" not in now["properties"]

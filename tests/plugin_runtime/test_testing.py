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
    out = h.process_event({"event": "$pageview"})
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

"""`fetch`, `posthog.capture` and `meta.geoip` (R50-R52, spec 2.8, 2.10)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from plugin_runtime.backends.geoip import shared_geoip
from plugin_runtime.backends.http import UrllibHttpClient
from plugin_runtime.backends.http_fixtures import HttpFixtures
from plugin_runtime.backends.memory import MemoryCaptureSink
from plugin_runtime.extensions.fetch import make_fetch
from plugin_runtime.extensions.geoip import build_geoip
from plugin_runtime.extensions.posthog import PostHog
from plugin_runtime.types import PluginConfigRef

REF = PluginConfigRef(plugin_config_id=39, team_id=2, plugin_id=60, plugin_name="test-plugin")


def test_capture_sends_a_capture_message_for_the_team():
    sink = MemoryCaptureSink()
    PostHog(sink, REF).capture("my-new-event", {"random": "properties"})
    (message,) = sink.messages
    data = json.loads(message["data"])
    assert (message["ip"], message["site_url"], message["team_id"]) == ("", "", 2)
    assert message["now"] == message["sent_at"] == data["timestamp"]
    assert message["uuid"] == data["uuid"]
    assert data["distinct_id"] == message["distinct_id"] == "test-plugin"
    assert data["event"] == "my-new-event"
    assert data["team_id"] == 2
    assert data["properties"]["$lib"] == "posthog-plugin-server"
    assert data["properties"]["random"] == "properties"
    assert data["properties"]["distinct_id"] == "test-plugin"
    assert "$lib_version" in data["properties"]


def test_capture_takes_timestamp_and_distinct_id_from_properties():
    sink = MemoryCaptureSink()
    poster = PostHog(sink, REF)
    poster.capture("e", {"timestamp": "2020-02-23T02:15:00Z"})
    poster.capture("e", {"distinct_id": "custom id"})
    first, second = (json.loads(m["data"]) for m in sink.messages)
    assert first["timestamp"] == "2020-02-23T02:15:00Z"
    assert "timestamp" not in first["properties"]
    assert second["distinct_id"] == second["properties"]["distinct_id"] == "custom id"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.send_response(201)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"echo": json.loads(body)}).encode())

    def do_GET(self) -> None:
        self.send_response(404)
        self.end_headers()
        self.wfile.write(b"nothing here")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    httpd = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_fetch_returns_status_headers_and_body(server):
    fetch = make_fetch(UrllibHttpClient(allowed_hosts=["127.0.0.1"]))
    response = fetch(server + "/hook", method="POST", body={"a": 1})
    assert (response.status, response.ok, response.status_text) == (201, True, "Created")
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"echo": {"a": 1}}
    missing = fetch(server + "/missing")
    assert (missing.status, missing.ok, missing.text()) == (404, False, "nothing here")


def test_fetch_network_failure_and_bad_url():
    fetch = make_fetch(UrllibHttpClient(allowed_hosts=["127.0.0.1"]))
    with pytest.raises(ConnectionError):
        fetch("http://127.0.0.1:1/")
    with pytest.raises(ValueError):
        fetch("not a url")
    with pytest.raises(ValueError):
        fetch("ftp://example.com/file")


def test_fixture_errors_match_the_real_client():
    fixtures = HttpFixtures()
    fixtures.add("GET", "https://x.example/a", error="network")
    fixtures.add("GET", "https://x.example/b", error="timeout")
    fetch = make_fetch(fixtures)
    with pytest.raises(ConnectionError):
        fetch("https://x.example/a")
    with pytest.raises(TimeoutError):
        fetch("https://x.example/b")
    with pytest.raises(AssertionError, match="no http fixture"):
        fetch("https://x.example/c")


def test_geoip_locates_public_addresses_with_the_bundled_database():
    geoip = build_geoip(shared_geoip())
    assert geoip is not None
    record = geoip.locate("81.2.69.142")
    assert record is not None
    assert record["country"]["iso_code"] == "GB"
    assert isinstance(record["location"]["latitude"], float)
    assert geoip.locate("127.0.0.1") is None
    assert geoip.locate("not an ip") is None
    assert shared_geoip() is shared_geoip()


def test_without_a_database_locate_raises_the_originals_error():
    from plugin_runtime.errors import GeoIPUnavailableError

    with pytest.raises(GeoIPUnavailableError, match="IP location capabilities are not available"):
        build_geoip(None).locate("81.2.69.142")

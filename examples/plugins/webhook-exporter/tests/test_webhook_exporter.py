import json
from pathlib import Path

import pytest

from plugin_runtime.errors import RetryError
from plugin_runtime.testing import PluginHarness

PLUGIN = Path(__file__).parents[1]
HOOK = "https://hooks.example.com/events"


def harness(**config):
    return PluginHarness.from_path(PLUGIN, config={"url": HOOK, **config})


def test_batch_is_posted_as_json_with_token():
    h = harness(authToken="s3cret")
    h.http.add("POST", HOOK, status=200, json={"ok": True})
    h.export_events([{"event": "a", "uuid": "u1"}, {"event": "b", "uuid": "u2"}])
    (request,) = h.requests
    assert request["headers"]["authorization"] == "Bearer s3cret"
    body = json.loads(request["body"])
    assert [e["event"] for e in body["batch"]] == ["a", "b"]
    assert h.metrics == {"batches_sent": 1, "largest_batch": 2}
    assert h.logs == [{"level": "info", "message": "sent 2 events"}]


def test_server_error_asks_for_retry():
    h = harness()
    h.http.add("POST", HOOK, status=503)
    with pytest.raises(RetryError, match="503"):
        h.export_events([{"event": "a"}])


def test_network_failure_asks_for_retry():
    h = harness()
    h.http.add("POST", HOOK, error="network")
    with pytest.raises(RetryError, match="unreachable"):
        h.export_events([{"event": "a"}])


def test_client_error_fails_without_retry():
    h = harness()
    h.http.add("POST", HOOK, status=400, text="bad payload")
    with pytest.raises(ValueError, match="400 bad payload"):
        h.export_events([{"event": "a"}])


def test_recovering_webhook_takes_the_retried_batch():
    h = harness()
    h.http.add("POST", HOOK, status=502)
    h.http.add("POST", HOOK, status=200)
    with pytest.raises(RetryError):
        h.export_events([{"event": "a"}])
    h.export_events([{"event": "a"}])
    assert len(h.requests) == 2
    assert h.metrics["batches_sent"] == 1

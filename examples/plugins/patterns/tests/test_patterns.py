"""Ports of index.test.ts of PostHog/posthog-patterns-app, in its order.

jest-fetch-mock's default answer (200, empty body) becomes an `h.http` fixture; each test
builds its own harness, as each built its own meta after `fetchMock.resetMocks()`.
"""

import json
from pathlib import Path

from plugin_runtime.testing import PluginHarness, make_event

PLUGIN = Path(__file__).parents[1]

test_webhook_url = "https://api-staging.patterns.app/api/app/webhooks/wh1234"


def harness(config):
    h = PluginHarness.from_path(PLUGIN, config=config)
    h.http.add("POST", test_webhook_url, status=200)
    return h


def test_on_event_called_for_event():
    """Port of "onEvent called for event" (PostHog/posthog-patterns-app, index.test.ts)."""
    h = harness({"webhookUrl": test_webhook_url})
    h.setup()
    event1 = make_event(event="$pageView")

    h.on_event(event1)

    assert len(h.requests) == 1
    assert h.requests[0]["url"] == test_webhook_url
    # our fetch lower-cases header names, so "Content-Type" is recorded as "content-type"
    assert h.requests[0] == {
        "method": "POST",
        "url": test_webhook_url,
        "headers": {"content-type": "application/json"},
        "body": json.dumps([event1]),
    }


def test_on_event_called_for_allowed_event():
    """Port of "onEvent called for allowed event" (PostHog/posthog-patterns-app, index.test.ts)."""
    h = harness(
        {
            "webhookUrl": test_webhook_url,
            "allowedEventTypes": "$pageView, $autoCapture, $customEvent1",
        }
    )
    h.setup()

    event = make_event(event="$pageView")
    h.on_event(event)
    assert len(h.requests) == 1
    assert h.requests[0]["url"] == test_webhook_url
    assert h.requests[0] == {
        "method": "POST",
        "url": test_webhook_url,
        "headers": {"content-type": "application/json"},
        "body": json.dumps([event]),
    }

    event2 = make_event(event="$pageLeave")
    h.on_event(event2)
    assert len(h.requests) == 1

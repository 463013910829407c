"""Patterns App: sends each stored event to a patterns.app webhook.

A Python port of PostHog/posthog-patterns-app (index.ts).
"""

# `fetch` and `RetryError` are sandbox globals the server provides:
# ruff: noqa: F821

import json


def setup_plugin(meta):
    # parsed once here rather than on every event
    if meta.config.get("allowedEventTypes"):
        allowed_event_types = meta.config["allowedEventTypes"].split(",")
        allowed_event_types = [event_type.strip() for event_type in allowed_event_types]
        meta.global_["allowedEventTypesSet"] = set(allowed_event_types)


def on_event(event, meta):
    allowed = meta.global_.get("allowedEventTypesSet")
    # no list configured: every event is sent
    if allowed is not None and event.get("event") not in allowed:
        return

    response = fetch(
        meta.config["webhookUrl"],
        method="POST",
        headers={"Content-Type": "application/json"},
        # a list of one event, the shape the webhook takes for a batch
        body=json.dumps([event]),
    )

    if response.status != 200:
        data = response.json()
        raise RetryError("Export events failed: " + json.dumps(data, separators=(",", ":")))

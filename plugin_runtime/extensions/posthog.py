"""The `posthog` sandbox global: `posthog.capture(event, properties=None)`.

It sends a new event into the start of the pipeline for the plugin config's team, as a
capture message of the input topic's format (ingestion spec 1.1).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from plugin_runtime.backends import CaptureSink
from plugin_runtime.types import PluginConfigRef

LIB_NAME = "posthog-plugin-server"
LIB_VERSION = "0.1.0"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def capture_message(
    ref: PluginConfigRef, event: str, properties: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The capture message `posthog.capture` sends (the input topic's format)."""
    props = dict(properties or {})
    distinct_id = props.pop("distinct_id", None) or ref.plugin_name or f"plugin-id-{ref.plugin_id}"
    now = _now_iso()
    # the event's time: the plugin's, or now; the message's own times are always now, so
    # a given timestamp is kept as it is (no skew between now and sent_at to correct)
    timestamp = props.pop("timestamp", None) or now
    event_uuid = str(uuid.uuid4())
    data = {
        "distinct_id": distinct_id,
        "event": event,
        "timestamp": timestamp,
        "properties": {
            "$lib": LIB_NAME,
            "$lib_version": LIB_VERSION,
            "distinct_id": distinct_id,
            **props,
        },
        "team_id": ref.team_id,
        "uuid": event_uuid,
    }
    return {
        "distinct_id": distinct_id,
        "ip": "",
        "site_url": "",
        "data": json.dumps(data, default=str),
        "team_id": ref.team_id,
        "now": now,
        "sent_at": now,
        "uuid": event_uuid,
    }


class PostHog:
    __slots__ = ("_ref", "_sink")

    def __init__(self, sink: CaptureSink, ref: PluginConfigRef) -> None:
        self._sink, self._ref = sink, ref

    def capture(self, event: str, properties: Mapping[str, Any] | None = None) -> None:
        """Send `event` for this plugin config's team; `distinct_id` defaults to the plugin
        name and `timestamp` to now, both overridable through `properties`."""
        if not isinstance(event, str) or not event:
            raise ValueError("posthog.capture: the event name must be a non-empty string")
        self._sink.capture(capture_message(self._ref, event, properties))

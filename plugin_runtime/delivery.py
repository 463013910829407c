"""Handing stored events to `on_event` (`on_snapshot` for `$snapshot`), each plugin its own
copy, and the copy itself."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from plugin_runtime.instance import PluginInstance

SNAPSHOT_EVENT = "$snapshot"  # goes to on_snapshot instead of on_event


def copy_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A deep copy of the events, so plugins cannot see each other's changes.

    Events are JSON data, and an orjson round trip copies them several times faster than
    `copy.deepcopy`; anything orjson cannot encode falls back to deepcopy.
    """
    try:
        copied: list[dict[str, Any]] = orjson.loads(
            orjson.dumps(events, option=orjson.OPT_PASSTHROUGH_DATETIME)
        )
    except TypeError:
        return copy.deepcopy(events)
    return copied


def deliver(instance: PluginInstance, events: list[dict[str, Any]]) -> None:
    """Each event to the plugin's on_event (on_snapshot); an error costs only its call."""
    for event in events:
        function = "on_snapshot" if event.get("event") == SNAPSHOT_EVENT else "on_event"
        if instance.has(function):
            # a plain try, not `contextlib.suppress`: this runs once per event and plugin
            try:  # noqa: SIM105
                instance.call(function, event, event=event)
            except Exception:  # the call stack has recorded it against the plugin config
                pass

"""Recording a plugin's error against its plugin config, with the event that caused it.

The error goes to the ErrorSink (plugin_configs.error in SQL) and, as a PLUGIN ERROR
entry, to the plugin's log, so it is visible where operators and authors look.
"""

from __future__ import annotations

import copy
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from plugin_runtime.backends import ErrorSink, LogSink
from plugin_runtime.extensions.logger import write_log
from plugin_runtime.types import PluginConfigRef

MAX_STACK_CHARS = 8_000  # enough for the plugin frames; the runtime's own frames are noise


def error_record(exc: BaseException, event: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`{message, name, time, stack, event?}` for `exc`, as plugin_configs.error holds it."""
    record: dict[str, Any] = {
        "message": str(exc) or type(exc).__name__,
        "name": type(exc).__name__,
        "time": datetime.now(UTC).isoformat(),
        "stack": "".join(traceback.format_exception(exc))[-MAX_STACK_CHARS:],
    }
    if event is not None:
        record["event"] = copy.deepcopy(dict(event))
    return record


class ErrorRecorder:
    def __init__(self, errors: ErrorSink, logs: LogSink) -> None:
        self._errors = errors
        self._logs = logs

    def record(
        self, ref: PluginConfigRef, exc: BaseException, event: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Record `exc` for the plugin config; returns what was stored."""
        record = error_record(exc, event)
        self._errors.record(ref.plugin_config_id, record)
        write_log(self._logs, ref, "error", record["message"], source="PLUGIN")
        return record

    def clear(self, ref: PluginConfigRef) -> None:
        self._errors.clear(ref.plugin_config_id)

    def disable(self, ref: PluginConfigRef) -> None:
        self._errors.disable(ref.plugin_config_id)

    def system(self, ref: PluginConfigRef, level: str, message: str) -> None:
        """A SYSTEM log entry: what the runtime did with the plugin config."""
        write_log(self._logs, ref, level, message, source="SYSTEM")

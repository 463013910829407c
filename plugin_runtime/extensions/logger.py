"""`meta.logger`: `debug`, `info`, `warning` (alias `warn`), `error`, one log entry each.

Entries carry the plugin config's identity and go to the `LogSink` (plugin_logs in SQL),
so they are readable per plugin config.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from plugin_runtime.backends import LogEntry, LogSink
from plugin_runtime.types import PluginConfigRef

MAX_MESSAGE_CHARS = 10_000  # per entry; a plugin logging whole payloads should not bloat logs


def format_message(args: tuple[Any, ...]) -> str:
    """Arguments joined by spaces, as the original console did: dicts and lists as JSON,
    exceptions as `<Class>: <message>`, everything else with str()."""
    parts: list[str] = []
    for arg in args:
        if isinstance(arg, BaseException):
            parts.append(f"{type(arg).__name__}: {arg}")
        elif isinstance(arg, dict | list):
            parts.append(json.dumps(arg, separators=(",", ":"), ensure_ascii=False, default=str))
        else:
            parts.append(str(arg))
    return " ".join(parts)[:MAX_MESSAGE_CHARS]


def write_log(
    sink: LogSink, ref: PluginConfigRef, level: str, message: str, *, source: str
) -> None:
    sink.write(
        LogEntry(
            team_id=ref.team_id,
            plugin_id=ref.plugin_id,
            plugin_config_id=ref.plugin_config_id,
            timestamp=datetime.now(UTC),
            source=source,
            level=level,
            message=message,
        )
    )


class Logger:
    __slots__ = ("_ref", "_sink")

    def __init__(self, sink: LogSink, ref: PluginConfigRef) -> None:
        self._sink, self._ref = sink, ref

    def _log(self, level: str, args: tuple[Any, ...]) -> None:
        # CONSOLE, as the original's console lines: the plugin's own words, apart from the
        # PLUGIN entries the runtime writes for its errors
        write_log(self._sink, self._ref, level, format_message(args), source="CONSOLE")

    def debug(self, *args: Any) -> None:
        self._log("debug", args)

    def info(self, *args: Any) -> None:
        self._log("info", args)

    def warning(self, *args: Any) -> None:
        self._log("warning", args)

    def warn(self, *args: Any) -> None:
        self._log("warning", args)

    def error(self, *args: Any) -> None:
        self._log("error", args)

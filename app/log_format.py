"""Log lines as JSON objects (`LOG_FORMAT=json`), for log pipelines that index fields.

Each line holds `time` (ISO 8601, UTC), `level`, `logger` and `message`, the exception
when there is one, and the context a call passed with `extra=` where it applies:
`team_id`, `plugin_config_id`, `event_uuid`, `stage`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson

CONTEXT_FIELDS = ("team_id", "plugin_config_id", "event_uuid", "stage")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def use_format(log_format: str) -> None:
    """Give every handler of the root logger the format (`text` leaves them as they are;
    without a handler yet, one on standard error is added)."""
    if log_format != "json":
        return
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())

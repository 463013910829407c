"""LOG_FORMAT=json: one JSON object a line, with the context a call gave."""

from __future__ import annotations

import io
import logging

import orjson

from app.log_format import JsonFormatter


def test_a_json_line_holds_the_message_and_the_context_given() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(
            "write failed on one event: %s", "boom",
            extra={"stage": "write", "team_id": 2, "event_uuid": "u-1"},
        )  # fmt: skip
        try:
            raise ValueError("inner")
        except ValueError:
            logger.exception("with a traceback")
    finally:
        logger.removeHandler(handler)
    first, second = (
        orjson.loads(line) for line in stream.getvalue().splitlines() if line[:1] == "{"
    )
    assert first["message"] == "write failed on one event: boom"
    assert (first["level"], first["logger"]) == ("warning", "test.json")
    assert (first["stage"], first["team_id"], first["event_uuid"]) == ("write", 2, "u-1")
    assert "plugin_config_id" not in first and first["time"].endswith("+00:00")
    assert "ValueError: inner" in second["exception"]

"""Running capture messages through the embedded pipeline, for the ingestion rule tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson

from app.dev import open_local
from app.resources import Resources
from app.settings import load_settings


def capture(
    event: str,
    properties: dict[str, Any] | None = None,
    *,
    team_id: int = 1,
    distinct_id: str = "u",
    ip: str | None = None,
) -> bytes:
    """A capture message as the input topic carries it."""
    message: dict[str, Any] = {
        "distinct_id": distinct_id,
        "team_id": team_id,
        "uuid": str(uuid.uuid4()),
        "now": "2026-11-23T10:00:00.000Z",
        "data": orjson.dumps({"event": event, "properties": properties or {}}).decode(),
    }
    if ip is not None:
        message["ip"] = ip
    return orjson.dumps(message)


@asynccontextmanager
async def embedded(tmp_path: Path, plugins: Sequence[str] = ()) -> AsyncIterator[Resources]:
    """The embedded mode's resources (SQLite and chDB in `tmp_path`), team 1 with `plugins`."""
    settings = load_settings(DATA_DIR=str(tmp_path / "data"))
    _settings, resources, _data_dir = await open_local(settings, list(plugins), {1})
    try:
        yield resources
    finally:
        await resources.close()

"""Worker liveness through Redis, as the original did it: a running worker refreshes a
ping key every few seconds, and `--healthcheck` passes while the key exists."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import version

import redis.asyncio as aioredis

from app.settings import Settings

PING_KEY = "@posthog-plugin-server/ping"
VERSION_KEY = "@posthog-plugin-server/version"
PING_INTERVAL_SECONDS = 5.0
PING_TTL_SECONDS = 60  # a dead worker fails the healthcheck within a minute


def server_version() -> str:
    return version("plugin-server")


async def write_ping(settings: Settings) -> None:
    client = aioredis.from_url(settings.REDIS_URL)
    try:
        await client.set(PING_KEY, datetime.now(UTC).isoformat(), ex=PING_TTL_SECONDS)
        await client.set(VERSION_KEY, server_version())
    finally:
        await client.aclose()


async def check(settings: Settings) -> tuple[bool, str]:
    """(healthy, what was found): healthy while a worker's ping is in Redis."""
    client = aioredis.from_url(settings.REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
    try:
        ping = await client.get(PING_KEY)
    except Exception as exc:
        return False, f"cannot read {PING_KEY} from {settings.REDIS_URL}: {exc}"
    finally:
        await client.aclose()
    if ping is None:
        return False, f"no worker has pinged in the last {PING_TTL_SECONDS} s"
    return True, f"last ping {ping.decode() if isinstance(ping, bytes) else ping}"

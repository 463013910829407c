"""Worker liveness through Redis, as the original did it: a running worker refreshes a
ping key every few seconds, and `--healthcheck` passes while the key exists."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from importlib.metadata import version

import redis.asyncio as aioredis

from app.connections import async_redis
from app.settings import Settings

log = logging.getLogger(__name__)

PING_KEY = "@posthog-plugin-server/ping"
VERSION_KEY = "@posthog-plugin-server/version"
PING_INTERVAL_SECONDS = 5.0
PING_TTL_SECONDS = 60  # a dead worker fails the healthcheck within a minute


def server_version() -> str:
    return version("plugin-server")


async def write_ping(settings: Settings) -> bool:
    """Refresh the ping key; False (and a warning) when Redis does not answer. Redis being
    down must not stop a worker: the ping is for `--healthcheck`, not for ingestion."""
    client = async_redis(settings)
    try:
        await client.set(PING_KEY, datetime.now(UTC).isoformat(), ex=PING_TTL_SECONDS)
        await client.set(VERSION_KEY, server_version())
    except (aioredis.RedisError, OSError) as exc:
        log.warning("could not write the health ping to Redis: %s", exc)
        return False
    finally:
        await client.aclose()
    return True


async def check(settings: Settings) -> tuple[bool, str]:
    """(healthy, what was found): healthy while a worker's ping is in Redis."""
    client = async_redis(settings)
    try:
        ping = await client.get(PING_KEY)
    except Exception as exc:
        return False, f"cannot read {PING_KEY} from {settings.REDIS_URL}: {exc}"
    finally:
        await client.aclose()
    if ping is None:
        return False, f"no worker has pinged in the last {PING_TTL_SECONDS} s"
    return True, f"last ping {ping.decode() if isinstance(ping, bytes) else ping}"

"""Live plugin reloads: a change made with the CLI reaches every running worker.

The CLI announces each change on the Redis channel `PLUGINS_RELOAD_PUBSUB_CHANNEL` (the
original's mechanism and setting) after its transaction committed; every worker listens
and loads the enabled configs again (`PluginRuntime.load` keeps unchanged configs, sets
up new and changed ones, then tears down the old). A message is only a nudge: what to
run is always read from the database. Pub/sub delivers to whoever is subscribed at that
moment, so a worker also compares a fingerprint of the plugin tables every
`RELOAD_CHECK_SECONDS`, and reloads after reconnecting to Redis: a missed message costs
seconds, never a stale plugin. Why not a compacted topic: `docs/decisions/plugin-reloads.md`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.connections import async_redis
from app.settings import Settings
from schemas.tables import plugin_attachments, plugin_configs, plugins

log = logging.getLogger(__name__)

RELOAD_CHECK_SECONDS = 10.0
RECONNECT_SECONDS = 2.0
RELOAD_MESSAGE = "reload"


async def announce(settings: Settings) -> bool:
    """Tell running workers to reload; False (with nothing raised) when Redis is away:
    they pick the change up at their next fingerprint check."""
    client = async_redis(settings)
    try:
        await client.publish(settings.PLUGINS_RELOAD_PUBSUB_CHANNEL, RELOAD_MESSAGE)
        return True
    except (RedisError, OSError) as exc:
        log.warning("could not announce the reload on Redis: %s", exc)
        return False
    finally:
        await client.aclose()


async def fingerprint(engine: AsyncEngine) -> tuple[object, ...]:
    """Changes whenever a plugin, a config or an attachment is added, changed or removed."""
    async with engine.connect() as conn:
        configs = (
            await conn.execute(
                select(func.count(), func.max(plugin_configs.c.updated_at)).select_from(
                    plugin_configs
                )
            )
        ).one()
        installed = (
            await conn.execute(
                select(func.count(), func.max(plugins.c.updated_at)).select_from(plugins)
            )
        ).one()
        files = (
            await conn.execute(
                select(func.count(), func.max(plugin_attachments.c.id)).select_from(
                    plugin_attachments
                )
            )
        ).one()
    return (*configs, *installed, *files)


class Reloader:
    """Runs `reload` when told to or when the plugin tables changed; one at a time, and
    once more after a running one if asked meanwhile."""

    def __init__(self, engine: AsyncEngine, reload: Callable[[], Awaitable[None]]) -> None:
        self._engine, self._reload = engine, reload
        self._wanted = asyncio.Event()
        self._seen: tuple[object, ...] | None = None

    def request(self) -> None:
        self._wanted.set()

    async def run(self) -> None:
        """Reload whenever requested, for ever."""
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            try:
                seen = await fingerprint(self._engine)
                await self._reload()
                self._seen = seen
            except Exception:
                log.exception("plugin reload failed; trying again at the next check")

    async def check(self) -> None:
        """Request a reload if the plugin tables changed since the last one."""
        try:
            now = await fingerprint(self._engine)
        except Exception as exc:
            log.warning("could not read the plugin tables' fingerprint: %s", exc)
            return
        if self._seen is None:
            self._seen = now
        elif now != self._seen:
            self.request()

    async def listen(self, settings: Settings) -> None:
        """Subscribe to the reload channel, for ever; reconnect when Redis goes away."""
        channel = settings.PLUGINS_RELOAD_PUBSUB_CHANNEL
        while True:
            client = async_redis(settings)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(channel)
                self.request()  # what was announced while we were not subscribed
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self.request()
            except (RedisError, OSError) as exc:
                log.warning("reload channel %r unavailable: %s", channel, exc)
            finally:
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                    await client.aclose()
                except (RedisError, OSError):
                    pass
            await asyncio.sleep(RECONNECT_SECONDS)

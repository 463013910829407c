"""Plugin administration: install a plugin, configure it for a team, list configs with
their state, read a config's logs.

Every change bumps the config's (or plugin's) `updated_at` and is announced on the
reload channel by the CLI (`app/reloads.py`), so running workers load it within a second
or two; the config is checked against the plugin's plugin.json before it is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.admin.errors import AdminError
from app.stores.plugin_configs import put_attachments
from plugin_runtime.authoring import read_attachment_files
from plugin_runtime.backends import LogEntry
from plugin_runtime.backends.sql import log_entries, logs_query
from plugin_runtime.capabilities import python_name
from plugin_runtime.config_validation import redact_config, validate_config
from plugin_runtime.errors import PluginError
from plugin_runtime.loading import load_plugin, plugin_capabilities
from plugin_runtime.types import Attachment, PluginSource
from schemas.tables import plugin_attachments, plugin_configs, plugins, teams

LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class InstalledPlugin:
    id: int
    name: str
    capabilities: list[str]


@dataclass(frozen=True)
class ConfigRow:
    id: int
    team_id: int
    plugin_id: int
    plugin_name: str
    enabled: bool
    order: int
    config: dict[str, Any]  # secrets redacted
    error: Mapping[str, Any] | None
    budget: Mapping[str, Any] | None = None  # {"state", "reason", "since", "until"?}

    @property
    def state(self) -> str:
        """disabled, paused or degraded (by its budget), failing, or enabled."""
        if not self.enabled:
            return "disabled"
        if self.budget and self.budget.get("state") in ("paused", "degraded"):
            return str(self.budget["state"])
        return "failing" if self.error else "enabled"


def read_source(path: str) -> PluginSource:
    try:
        return load_plugin(path)
    except PluginError as exc:
        raise AdminError(str(exc)) from None


async def install(engine: AsyncEngine, path: str, *, replace: int | None = None) -> InstalledPlugin:
    """Store the plugin at `path` (folder, zip or tar.gz): a new plugin, or a new version
    of plugin `replace` (every config of it then runs the new code)."""
    source = read_source(path)
    capabilities = plugin_capabilities(source)
    # the names a Python author wrote (the runtime also accepts the original's camelCase)
    names = sorted({python_name(c) for c in (*capabilities.methods, *capabilities.scheduled_tasks)})
    names += [f"job {job}" for job in capabilities.jobs]
    values = {
        "name": source.name,
        "description": str(source.plugin_json.get("description", "")),
        "url": str(source.plugin_json.get("url", "")),
        "plugin_json": source.plugin_json,
        "source": source.files,
        "capabilities": names,
        "updated_at": datetime.now(UTC),
    }
    async with engine.begin() as conn:
        if replace is None:
            plugin_id = (
                await conn.execute(insert(plugins).values(values).returning(plugins.c.id))
            ).scalar_one()
        else:
            changed = await conn.execute(
                update(plugins).where(plugins.c.id == replace).values(values)
            )
            if changed.rowcount == 0:
                raise AdminError(f"no plugin with id {replace}")
            plugin_id = replace
            await _check_configs_still_valid(conn, replace, source)
    return InstalledPlugin(int(plugin_id), source.name, names)


async def _check_configs_still_valid(
    conn: AsyncConnection, plugin_id: int, source: PluginSource
) -> None:
    rows = await conn.execute(
        select(plugin_configs.c.id, plugin_configs.c.config).where(
            plugin_configs.c.plugin_id == plugin_id
        )
    )
    for row in rows:
        uploaded = await _attachments(conn, row.id)
        try:
            validate_config(source.plugin_json, dict(row.config or {}), uploaded)
        except PluginError as exc:
            raise AdminError(
                f"the new version does not accept plugin config {row.id}'s settings: {exc}"
            ) from None


async def _attachments(conn: AsyncConnection, config_id: int) -> dict[str, Attachment]:
    rows = await conn.execute(
        select(plugin_attachments).where(plugin_attachments.c.plugin_config_id == config_id)
    )
    return {
        r.key: Attachment(file_name=r.file_name, content_type=r.content_type, contents=r.contents)
        for r in rows
    }


def read_attachments(pairs: list[str]) -> dict[str, Attachment]:
    """`key=FILE` pairs into attachments read from the files."""
    try:
        return read_attachment_files(pairs)
    except ValueError as exc:
        raise AdminError(str(exc)) from None


def parse_settings(pairs: list[str]) -> dict[str, str | None]:
    """`key=value` pairs; `key=` (nothing after the `=`) removes the key."""
    values: dict[str, str | None] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise AdminError(f"expected key=value, got {pair!r}")
        values[key] = value if value != "" else None
    return values


async def configure(
    engine: AsyncEngine,
    team_id: int,
    plugin_id: int,
    *,
    settings: Mapping[str, str | None] | None = None,
    attachments: Mapping[str, Attachment] | None = None,
    enabled: bool | None = None,
    order: int | None = None,
) -> ConfigRow:
    """Create or change the team's config of the plugin; checked against plugin.json."""
    async with engine.begin() as conn:
        if (await conn.execute(select(teams.c.id).where(teams.c.id == team_id))).first() is None:
            raise AdminError(f"no team with id {team_id}")
        plugin = (await conn.execute(select(plugins).where(plugins.c.id == plugin_id))).first()
        if plugin is None:
            raise AdminError(f"no plugin with id {plugin_id}")
        existing = (
            await conn.execute(
                select(plugin_configs).where(
                    plugin_configs.c.team_id == team_id, plugin_configs.c.plugin_id == plugin_id
                )
            )
        ).first()
        config = dict(existing.config or {}) if existing is not None else {}
        for key, value in (settings or {}).items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        uploaded = await _attachments(conn, existing.id) if existing is not None else {}
        uploaded.update(attachments or {})
        plugin_json = dict(plugin.plugin_json)
        try:
            validate_config(plugin_json, config, uploaded)
        except PluginError as exc:
            raise AdminError(str(exc)) from None
        values: dict[str, Any] = {"config": config, "updated_at": datetime.now(UTC)}
        if enabled is not None:
            values["enabled"] = enabled
        if order is not None:
            values["order"] = order
        if existing is None:
            values.setdefault("enabled", True)
            values.setdefault("order", await _next_order(conn, team_id))
            config_id = (
                await conn.execute(
                    insert(plugin_configs)
                    .values(team_id=team_id, plugin_id=plugin_id, **values)
                    .returning(plugin_configs.c.id)
                )
            ).scalar_one()
        else:
            config_id = existing.id
            if enabled:
                # enabling again starts from a clean slate: no error, a full budget
                values["error"] = None
                values["budget"] = None
            await conn.execute(
                update(plugin_configs).where(plugin_configs.c.id == config_id).values(values)
            )
        await put_attachments(conn, config_id, team_id, attachments or {})
    (row,) = [c for c in await list_configs(engine, team_id=team_id) if c.id == config_id]
    return row


async def _next_order(conn: AsyncConnection, team_id: int) -> int:
    last = (
        await conn.execute(
            select(func.max(plugin_configs.c.order)).where(plugin_configs.c.team_id == team_id)
        )
    ).scalar()
    return 0 if last is None else int(last) + 1


async def list_configs(engine: AsyncEngine, *, team_id: int | None = None) -> list[ConfigRow]:
    query = (
        select(plugin_configs, plugins.c.name, plugins.c.plugin_json)
        .join(plugins, plugins.c.id == plugin_configs.c.plugin_id)
        .order_by(plugin_configs.c.team_id, plugin_configs.c.order, plugin_configs.c.id)
    )
    if team_id is not None:
        query = query.where(plugin_configs.c.team_id == team_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        ConfigRow(
            id=r.id,
            team_id=r.team_id,
            plugin_id=r.plugin_id,
            plugin_name=r.name,
            enabled=bool(r.enabled),
            order=r.order,
            config=redact_config(dict(r.plugin_json), dict(r.config or {})),
            error=r.error,
            budget=r.budget,
        )
        for r in rows
    ]


async def list_plugins(engine: AsyncEngine) -> list[InstalledPlugin]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(plugins).order_by(plugins.c.id))).all()
    return [InstalledPlugin(r.id, r.name, list(r.capabilities or [])) for r in rows]


async def read_logs(
    engine: AsyncEngine,
    config_id: int,
    *,
    level: str | None = None,
    since: datetime | None = None,
    after_id: str | None = None,
    limit: int = 1000,
) -> list[LogEntry]:
    """The config's log entries, oldest first: at `level` or above, from `since`, after
    the entry `after_id` (ids sort in write order), at most the last `limit`."""
    if level is not None and level not in LOG_LEVELS:
        raise AdminError(f"unknown log level {level!r}; one of {', '.join(LOG_LEVELS)}")
    levels = LOG_LEVELS[LOG_LEVELS.index(level) :] if level is not None else None
    query = logs_query(config_id, levels=levels, since=since, after_id=after_id, limit=limit)
    async with engine.connect() as conn:
        return log_entries((await conn.execute(query)).all())


async def config_exists(engine: AsyncEngine, config_id: int) -> bool:
    async with engine.connect() as conn:
        found = await conn.execute(
            select(plugin_configs.c.id).where(plugin_configs.c.id == config_id)
        )
        return found.first() is not None

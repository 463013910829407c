"""Installed plugins and each team's configs of them, as the runtime loads them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from plugin_runtime.types import Attachment, PluginConfigRecord, PluginSource
from schemas.tables import plugin_attachments, plugin_configs, plugins, teams


async def ensure_team(
    engine: AsyncEngine, team_id: int, *, name: str = "", api_token: str | None = None
) -> None:
    """Create the team if it does not exist yet."""
    async with engine.begin() as conn:
        found = await conn.execute(select(teams.c.id).where(teams.c.id == team_id))
        if found.first() is None:
            await conn.execute(
                insert(teams).values(
                    id=team_id, name=name or f"team {team_id}", api_token=api_token
                )
            )


async def install_plugin(
    engine: AsyncEngine,
    source: PluginSource,
    *,
    team_id: int,
    config: dict[str, Any] | None = None,
    order: int = 0,
    attachments: dict[str, Attachment] | None = None,
) -> int:
    """Store the plugin and enable it for the team; returns the plugin config id."""
    async with engine.begin() as conn:
        plugin_id = (
            await conn.execute(
                insert(plugins)
                .values(
                    name=source.name,
                    description=str(source.plugin_json.get("description", "")),
                    url=str(source.plugin_json.get("url", "")),
                    plugin_json=source.plugin_json,
                    source=source.files,
                )
                .returning(plugins.c.id)
            )
        ).scalar_one()
        config_id = (
            await conn.execute(
                insert(plugin_configs)
                .values(
                    team_id=team_id,
                    plugin_id=plugin_id,
                    enabled=True,
                    order=order,
                    config=config or {},
                )
                .returning(plugin_configs.c.id)
            )
        ).scalar_one()
        await put_attachments(conn, config_id, team_id, attachments or {})
    return int(config_id)


async def put_attachments(
    conn: AsyncConnection, config_id: int, team_id: int, attachments: Mapping[str, Attachment]
) -> None:
    """Store the config's attachments, each replacing one of the same key."""
    for key, attachment in attachments.items():
        await conn.execute(
            delete(plugin_attachments).where(
                plugin_attachments.c.plugin_config_id == config_id,
                plugin_attachments.c.key == key,
            )
        )
        await conn.execute(
            insert(plugin_attachments).values(
                plugin_config_id=config_id,
                team_id=team_id,
                key=key,
                content_type=attachment.content_type,
                file_name=attachment.file_name,
                contents=attachment.contents,
            )
        )


async def enabled_configs(engine: AsyncEngine) -> list[PluginConfigRecord]:
    """Every enabled plugin config of every team, with its plugin and attachments."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(plugin_configs, plugins.c.name, plugins.c.plugin_json, plugins.c.source)
                .join(plugins, plugins.c.id == plugin_configs.c.plugin_id)
                .where(plugin_configs.c.enabled.is_(True))
                .order_by(plugin_configs.c.team_id, plugin_configs.c.order, plugin_configs.c.id)
            )
        ).all()
        files = await conn.execute(select(plugin_attachments))
        attachments: dict[int, dict[str, Attachment]] = {}
        for a in files:
            attachments.setdefault(a.plugin_config_id, {})[a.key] = Attachment(
                file_name=a.file_name, content_type=a.content_type, contents=a.contents
            )
    return [
        PluginConfigRecord(
            id=row.id,
            team_id=row.team_id,
            plugin=PluginSource(
                id=row.plugin_id,
                name=row.name,
                plugin_json=dict(row.plugin_json),
                files=dict(row.source),
            ),
            order=row.order,
            enabled=row.enabled,
            config=dict(row.config or {}),
            attachments=attachments.get(row.id, {}),
            budget_state=(row.budget or {}).get("state"),
        )
        for row in rows
    ]

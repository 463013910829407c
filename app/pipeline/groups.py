"""Groups on events (ingestion spec 4.8): `properties.$groups` (type -> key) becomes
`$group_<index>` properties, and `$groupidentify` creates the group or replaces its
properties. Applied in the write stage, in event order, so the last `$groupidentify` of
a batch wins as it would one event at a time."""

from __future__ import annotations

from typing import Any

from app.pipeline.context import PipelineContext

GROUP_IDENTIFY = "$groupidentify"


async def apply_groups(ctx: PipelineContext, event: dict[str, Any]) -> None:
    """Set the event's `$group_<i>` properties, and store the group it identifies."""
    properties = event["properties"]
    team_id = event["team_id"]
    named = properties.get("$groups")
    if isinstance(named, dict):
        for group_type, key in named.items():
            index = await ctx.groups.type_index(team_id, str(group_type))
            if index is not None:
                properties[f"$group_{index}"] = key
    if event["event"] == GROUP_IDENTIFY:
        group_type, key = properties.get("$group_type"), properties.get("$group_key")
        if group_type and key:
            index = await ctx.groups.type_index(team_id, str(group_type))
            if index is not None:
                group_set = properties.get("$group_set")
                await ctx.groups.identify(
                    team_id, index, str(key), group_set if isinstance(group_set, dict) else {}
                )

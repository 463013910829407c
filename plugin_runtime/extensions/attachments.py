"""`meta.attachments`: name -> attachment (contents, file_name, content_type) or None."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plugin_runtime.types import Attachment
from schemas.plugin_json import config_fields


def build_attachments(
    attachments: Mapping[str, Attachment], plugin_json: Mapping[str, Any]
) -> dict[str, Attachment | None]:
    """Every declared attachment field is a key (None when nothing was uploaded), plus any
    uploaded one. `Attachment` is frozen, so plugin code cannot alter the stored file."""
    out: dict[str, Attachment | None] = {
        str(f["key"]): None for f in config_fields(plugin_json) if f.get("type") == "attachment"
    }
    out.update(attachments)
    return out

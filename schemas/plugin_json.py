"""The `plugin.json` contract: a JSON Schema for editors and other tools, and the
normalised view of its config fields that the runtime validates team configs against.

The runtime does not depend on a JSON Schema library; `plugin_runtime.loading` checks the
same rules in Python so that every error names the plugin and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FIELD_TYPES = ("string", "json", "choice", "attachment")
METRIC_TYPES = ("sum", "max", "min")

PLUGIN_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "plugin.json",
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "url": {"type": "string"},
        "main": {"type": "string", "pattern": r"^[^/\\].*\.py$"},
        "metrics": {
            "type": "object",
            "additionalProperties": {"enum": list(METRIC_TYPES)},
        },
        "config": {
            "oneOf": [
                {"type": "array", "items": {"$ref": "#/$defs/field"}},
                {"type": "object", "additionalProperties": {"$ref": "#/$defs/field"}},
            ]
        },
    },
    "$defs": {
        "field": {
            "type": "object",
            "properties": {
                "key": {"type": "string", "minLength": 1},
                "name": {"type": "string"},
                "type": {"enum": list(FIELD_TYPES)},
                "default": {"type": "string"},
                "required": {"type": "boolean"},
                "secret": {"type": "boolean"},
                "hint": {"type": "string"},
                "markdown": {"type": "string"},
                "order": {"type": "number"},
                "choices": {"type": "array", "items": {"type": "string"}},
            },
        }
    },
}


def config_fields(plugin_json: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The config fields of a plugin.json, as a list with `key` set on each.

    `config` may be a list of fields or an object keyed by field key; entries that only
    carry `markdown` are UI text blocks, not fields, and are left out.
    """
    schema = plugin_json.get("config") or []
    if isinstance(schema, Mapping):
        raw = [{**v, "key": v.get("key", k)} for k, v in schema.items() if isinstance(v, Mapping)]
    elif isinstance(schema, list):
        raw = [dict(f) for f in schema if isinstance(f, Mapping)]
    else:
        raw = []
    return [f for f in raw if f.get("key")]

"""Checking a team's config of a plugin against its plugin.json, and hiding secrets.

A config is checked when a team installs or changes it; the error names the plugin, the
key and the problem. Anything that logs a config goes through `redact_config`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from plugin_runtime.errors import PluginConfigError
from plugin_runtime.types import Attachment
from schemas.plugin_json import config_fields

REDACTED = "********"
# runtime keys every export plugin accepts (spec 1.2) although its plugin.json need not list them
RUNTIME_KEYS = frozenset(
    {"exportEventsBufferBytes", "exportEventsBufferSeconds", "exportEventsToIgnore"}
)


def validate_config(
    plugin_json: Mapping[str, Any],
    config: Mapping[str, Any],
    attachments: Mapping[str, Attachment] | None = None,
) -> dict[str, Any]:
    """The config with declared defaults filled in. Raises PluginConfigError when a
    required key is missing, a value has the wrong type, a choice is not one of the
    choices, a json field does not parse, or a key is not declared."""
    name = plugin_json.get("name", "plugin")
    fields = {str(f["key"]): f for f in config_fields(plugin_json)}
    uploaded = attachments or {}
    out: dict[str, Any] = {}
    for key in config:
        if key not in fields and key not in RUNTIME_KEYS:
            raise PluginConfigError(f"plugin {name!r}: config key {key!r} is not declared")
        if key in fields and fields[key].get("type") == "attachment":
            raise PluginConfigError(
                f"plugin {name!r}: config key {key!r} is an attachment; upload it as a file"
            )
    for key, field in fields.items():
        kind = field.get("type", "string")
        if kind == "attachment":
            if field.get("required") and key not in uploaded:
                raise PluginConfigError(f"plugin {name!r}: attachment {key!r} is required")
            continue
        value = config.get(key, field.get("default"))
        if value is None or value == "":
            if field.get("required"):
                raise PluginConfigError(f"plugin {name!r}: config key {key!r} is required")
            continue
        out[key] = _checked(name, key, kind, field, value)
    out.update({k: v for k, v in config.items() if k in RUNTIME_KEYS})
    return out


def _checked(name: str, key: str, kind: str, field: Mapping[str, Any], value: Any) -> Any:
    if kind == "json":
        if isinstance(value, str):
            try:
                json.loads(value)
            except ValueError as exc:
                raise PluginConfigError(
                    f"plugin {name!r}: config key {key!r} is not valid JSON: {exc}"
                ) from None
        return value
    if not isinstance(value, str):
        raise PluginConfigError(
            f"plugin {name!r}: config key {key!r} must be a string, got {type(value).__name__}"
        )
    if kind == "choice" and value not in field.get("choices", []):
        raise PluginConfigError(
            f"plugin {name!r}: config key {key!r} must be one of "
            f"{', '.join(field.get('choices', []))}; got {value!r}"
        )
    return value


def secret_keys(plugin_json: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(str(f["key"]) for f in config_fields(plugin_json) if f.get("secret"))


def redact_config(plugin_json: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `config` safe to log: values of secret fields replaced by asterisks."""
    secrets = secret_keys(plugin_json)
    return {k: REDACTED if k in secrets and v not in (None, "") else v for k, v in config.items()}

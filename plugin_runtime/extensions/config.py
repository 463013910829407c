"""`meta.config`: the config values as stored, with `json` fields parsed."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Mapping
from typing import Any

from schemas.plugin_json import config_fields


def build_config(values: Mapping[str, Any], plugin_json: Mapping[str, Any]) -> dict[str, Any]:
    """A private copy of the config, so a plugin mutating it cannot change the stored one.

    Fields declared `json` arrive as JSON text and are handed over parsed; the config was
    validated on install, so text that no longer parses is passed through unchanged.
    """
    config = copy.deepcopy(dict(values))
    for field in config_fields(plugin_json):
        key = str(field["key"])
        if field.get("type") == "json" and isinstance(config.get(key), str):
            with contextlib.suppress(ValueError):
                config[key] = json.loads(config[key])
    return config

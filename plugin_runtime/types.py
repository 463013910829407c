"""What the app hands the runtime: a plugin's source and a team's config of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class PluginSource:
    """A plugin as installed: its plugin.json and its files (path -> text)."""

    id: int
    name: str
    plugin_json: dict[str, Any]
    files: dict[str, str]

    @property
    def main(self) -> str:
        return str(self.plugin_json.get("main") or "plugin.py")


@dataclass(frozen=True)
class Attachment:
    file_name: str
    content_type: str
    contents: bytes


@dataclass(frozen=True)
class PluginConfigRecord:
    """One team's installation of one plugin, as stored in `plugin_configs`."""

    id: int
    team_id: int
    plugin: PluginSource
    order: int = 0
    enabled: bool = True
    config: dict[str, Any] = field(default_factory=dict)
    attachments: dict[str, Attachment] = field(default_factory=dict)
    # the stored budget state (None: healthy, or an operator enabled it again)
    budget_state: str | None = None


@dataclass(frozen=True)
class PluginConfigRef:
    """Who a `meta` helper, a log line or an error belongs to."""

    plugin_config_id: int
    team_id: int
    plugin_id: int
    plugin_name: str

    @classmethod
    def of(cls, record: PluginConfigRecord) -> PluginConfigRef:
        return cls(record.id, record.team_id, record.plugin.id, record.plugin.name)

    @property
    def label(self) -> str:
        """The `<plugin name> (<plugin config id>)` form of the `$plugins_*` markers."""
        return f"{self.plugin_name} ({self.plugin_config_id})"


@dataclass(frozen=True)
class JobOutcome:
    """What one run of a job came to: `done`, `retry` after `delay`, or `failed`."""

    state: str
    error: str | None = None
    delay: timedelta | None = None

    @classmethod
    def done(cls) -> JobOutcome:
        return cls("done")

    @classmethod
    def again(cls, delay: timedelta, error: str) -> JobOutcome:
        return cls("retry", error, delay)

    @classmethod
    def failed(cls, error: str) -> JobOutcome:
        return cls("failed", error)

    @classmethod
    def later(cls, delay: timedelta, reason: str) -> JobOutcome:
        """Not run, for a reason that is not the job's: try again after `delay`, the
        attempt not counted."""
        return cls("later", reason, delay)

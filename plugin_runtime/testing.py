"""The authoring kit: run a plugin exactly as the server does, in a test.

`PluginHarness` loads the plugin into a sandbox process exactly as the server does (the
same compiler, sandbox globals, `meta`, limits and process boundary), on in-memory
backends, and records what the plugin did (logs, HTTP requests, captured events, jobs).
Plugin errors are raised to the test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plugin_runtime.backends import RuntimeBackends
from plugin_runtime.backends.http_fixtures import HttpFixtures
from plugin_runtime.backends.memory import (
    MemoryCache,
    MemoryCaptureSink,
    MemoryErrorSink,
    MemoryJobQueue,
    MemoryLogSink,
    MemoryStorage,
    StaticGeoIP,
)
from plugin_runtime.config_validation import validate_config
from plugin_runtime.errors import FetchFixtureMissingError, UnknownJobError
from plugin_runtime.extensions.cache import cache_prefix
from plugin_runtime.loading import load_plugin
from plugin_runtime.sandbox.limits import Limits
from plugin_runtime.sandboxed import SandboxedInstance, SandboxTeam
from plugin_runtime.types import Attachment, PluginConfigRecord, PluginSource

AttachmentSpec = Attachment | tuple[str, str, bytes]
DEFAULT_TEAM_ID = 2
DEFAULT_CONFIG_ID = 1


def _attachment(spec: AttachmentSpec) -> Attachment:
    if isinstance(spec, Attachment):
        return spec
    file_name, content_type, contents = spec
    return Attachment(file_name=file_name, content_type=content_type, contents=contents)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PluginHarness:
    def __init__(
        self,
        source: PluginSource,
        *,
        config: Mapping[str, Any] | None = None,
        attachments: Mapping[str, AttachmentSpec] | None = None,
        geoip: Mapping[str, Mapping[str, Any]] | None = None,
        team_id: int = DEFAULT_TEAM_ID,
        plugin_config_id: int = DEFAULT_CONFIG_ID,
        limits: Limits | None = None,
    ) -> None:
        """Compile the plugin for one config. Raises PluginConfigError for a config the
        plugin.json refuses, PluginLoadError/ForbiddenImportError for bad code.

        `geoip` maps ip -> city record for `meta.geoip.locate`; None: no database."""
        files = {k: _attachment(v) for k, v in (attachments or {}).items()}
        validate_config(source.plugin_json, dict(config or {}), files)
        self.record = PluginConfigRecord(
            id=plugin_config_id,
            team_id=team_id,
            plugin=source,
            config=dict(config or {}),
            attachments=files,
        )
        self.http = HttpFixtures()
        self._cache = MemoryCache()
        self._storage = MemoryStorage()
        self._logs = MemoryLogSink()
        self._jobs = MemoryJobQueue()
        self._captures = MemoryCaptureSink()
        self.errors = MemoryErrorSink()
        backends = RuntimeBackends(
            cache=self._cache,
            storage=self._storage,
            logs=self._logs,
            jobs=self._jobs,
            captures=self._captures,
            http=self.http,
            errors=self.errors,
            geoip=StaticGeoIP(geoip) if geoip is not None else None,
        )
        self._team = SandboxTeam(team_id, backends, limits=limits or Limits())
        self.instance: SandboxedInstance = self._team.load(self.record)
        self._set_up = False

    def close(self) -> None:
        """End the plugin's sandbox process (it also ends when the harness is collected)."""
        self._team.close()

    def __enter__(self) -> PluginHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def sandbox_layers(self) -> list[str]:
        """The kernel-enforced layers in force around the plugin's process."""
        return list(self._team.process.layers)

    @classmethod
    def from_path(cls, path: str | Path, **options: Any) -> PluginHarness:
        """The plugin in a folder, zip or tar.gz; options as for the constructor."""
        return cls(load_plugin(path), **options)

    # -- calling the plugin --------------------------------------------------------

    def _call(self, function: str, *args: Any) -> Any:
        if not self.instance.current:
            # the sandbox was killed or crashed on an earlier call: a fresh one, set up again
            self.instance = self._team.load(self.record)
            if self._set_up and self.instance.has("setup_plugin") and function != "setup_plugin":
                self.instance.call("setup_plugin")
        if not self.instance.has(function):
            raise AttributeError(f"plugin {self.record.plugin.name!r} defines no {function}")
        try:
            return self.instance.call(function, *args)
        finally:
            if self.http.unmatched:
                missing, self.http.unmatched = self.http.unmatched, []
                raise FetchFixtureMissingError(
                    "requests without an h.http fixture: " + ", ".join(missing)
                )

    def _ensure_setup(self) -> None:
        if not self._set_up:
            self.setup()

    def setup(self) -> None:
        """Run `setup_plugin` (if defined); raises what it raises."""
        self._set_up = True
        if self.instance.has("setup_plugin"):
            self._call("setup_plugin")

    def teardown(self) -> None:
        if self.instance.has("teardown_plugin"):
            self._call("teardown_plugin")

    def event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """`event` with the fields the pipeline always sets filled in."""
        now = _now_iso()
        full: dict[str, Any] = {
            "event": "$pageview",
            "distinct_id": "distinct-id-1",
            "properties": {},
            "timestamp": now,
            "team_id": self.record.team_id,
            "uuid": str(uuid.uuid4()),
            "ip": None,
            "site_url": "",
            "now": now,
            "sent_at": None,
        }
        full.update(json.loads(json.dumps(event)))
        return full

    def process_event(self, event: Mapping[str, Any]) -> dict[str, Any] | None:
        """What `process_event` returns for `event` (None: dropped)."""
        self._ensure_setup()
        result: dict[str, Any] | None = self._call("process_event", self.event(event)) or None
        return result

    def on_event(self, event: Mapping[str, Any]) -> None:
        self._ensure_setup()
        self._call("on_event", self.event(event))

    def export_events(self, events: list[Mapping[str, Any]]) -> None:
        """Call `export_events` with one batch; a RetryError is raised to the test."""
        self._ensure_setup()
        self._call("export_events", [self.event(e) for e in events])

    def run_every_minute(self) -> Any:
        self._ensure_setup()
        return self._call("run_every_minute")

    def run_every_hour(self) -> Any:
        self._ensure_setup()
        return self._call("run_every_hour")

    def run_every_day(self) -> Any:
        self._ensure_setup()
        return self._call("run_every_day")

    def run_job(self, name: str, payload: Any = None) -> Any:
        self._ensure_setup()
        if name not in self.instance.jobs:
            raise UnknownJobError(f"plugin {self.record.plugin.name!r} defines no job {name!r}")
        return self.instance.call_job(name, payload)

    # -- what the plugin did ---------------------------------------------------------

    @property
    def logs(self) -> list[dict[str, str]]:
        """The plugin's log lines, in order: `{"level", "message"}`."""
        return [
            {"level": e.level, "message": e.message}
            for e in self._logs.entries
            if e.source == "PLUGIN"
        ]

    @property
    def requests(self) -> list[dict[str, Any]]:
        """`fetch` requests, in order: `{"method", "url", "headers", "body"}`."""
        return list(self.http.requests)

    @property
    def captures(self) -> list[dict[str, Any]]:
        """`posthog.capture` calls, in order: `{"event", "properties"}`."""
        out = []
        for message in self._captures.messages:
            data = json.loads(message["data"])
            out.append({"event": data["event"], "properties": data["properties"]})
        return out

    @property
    def capture_messages(self) -> list[dict[str, Any]]:
        """The raw capture messages `posthog.capture` sent to the pipeline."""
        return [dict(m) for m in self._captures.messages]

    @property
    def jobs(self) -> list[dict[str, Any]]:
        """Jobs the plugin enqueued: `{"name", "payload", "run_at"}`."""
        return [{"name": j.name, "payload": j.payload, "run_at": j.run_at} for j in self._jobs.jobs]

    @property
    def cache(self) -> dict[str, Any]:
        """The plugin's cache: key -> value (lists as lists of strings)."""
        prefix = cache_prefix(self.record.id)
        out: dict[str, Any] = {}
        for key, raw in self._cache.snapshot().items():
            if key.startswith(prefix):
                out[key[len(prefix) :]] = raw if isinstance(raw, list) else _json_or_text(raw)
        return out

    @property
    def storage(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._storage.rows(self.record.id).items()}

    @property
    def global_(self) -> dict[str, Any]:
        value: dict[str, Any] = self.instance.global_()
        return value

    @property
    def metrics(self) -> dict[str, float]:
        return self.instance.metrics.snapshot()


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw

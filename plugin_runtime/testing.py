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
from plugin_runtime.extensions.posthog import LIB_NAME, LIB_VERSION
from plugin_runtime.harness_state import CacheView, StorageView
from plugin_runtime.loading import load_plugin
from plugin_runtime.sandbox.limits import Limits
from plugin_runtime.sandboxed import SandboxedInstance, SandboxTeam
from plugin_runtime.types import Attachment, PluginConfigRecord, PluginSource

AttachmentSpec = Attachment | tuple[str, str, bytes] | None
DEFAULT_TEAM_ID = 2
DEFAULT_CONFIG_ID = 1


def _attachment(spec: AttachmentSpec) -> Attachment | None:
    if spec is None or isinstance(spec, Attachment):
        return spec
    file_name, content_type, contents = spec
    return Attachment(file_name=file_name, content_type=content_type, contents=contents)


# plugin-scaffold's `createEvent` defaults, so ported tests build the same events
_SCAFFOLD_EVENT: dict[str, Any] = {
    "distinct_id": "007",
    "ip": "127.128.129.130",
    "site_url": "http://localhost:8000/",
    "team_id": 13,
    "now": "2020-11-26T12:58:57.367Z",
    "event": "EVENT_TYPE",
    "sent_at": "2020-11-26T12:58:58.453Z",
    "timestamp": "2020-11-26T12:58:58.453Z",
    "uuid": "",
}
_SCAFFOLD_PAGEVIEW_PROPERTIES: dict[str, Any] = {
    "$os": "Mac OS X",
    "$lib": "web",
    "$host": "localhost:8000",
    "$time": 1606383312.494,
    "token": "mre13a_SMBv9EwHAtdtTyutyy6AfO00OTPwaalaHPGgKLS",
    "$browser": "Chrome",
    "$user_id": "3erf45reXthrGser675waeHFAsbv4AsadfR",
    "$pathname": "/instance/status",
    "$device_id": "17554768afe5cb-0fc915d2a583cf-166f6152-1ea000-175543686ffdc5",
    "$insert_id": "hgu2p36uvlc1b9dg",
    "distinct_id": "scbbAqF7uyrMmamV4QBzcA1rrm9wHNISdFweZz-mQ0",
    "$current_url": "http://localhost:8000/instance/status",
    "$lib_version": "1.7.0-beta.1",
    "$screen_width": 1790,
    "$screen_height": 1120,
    "posthog_version": "1.17.0",
    "$browser_version": 86,
    "$initial_referrer": "$direct",
    "has_slack_webhook": False,
    "$active_feature_flags": ["navigation-1775", "session-recording-player"],
    "$initial_referring_domain": "$direct",
}


def make_event(**fields: Any) -> dict[str, Any]:
    """plugin-scaffold's `createEvent(fields)`: its default event, `fields` over it."""
    return {**json.loads(json.dumps(_SCAFFOLD_EVENT)), **fields}


def make_pageview(**fields: Any) -> dict[str, Any]:
    """plugin-scaffold's `createPageview()`: a `$pageview` with a browser's properties."""
    properties = json.loads(json.dumps(_SCAFFOLD_PAGEVIEW_PROPERTIES))
    return make_event(event="$pageview", properties=properties, **fields)


def make_identify(**fields: Any) -> dict[str, Any]:
    """plugin-scaffold's `createIdentify()`: an `$identify` that sets person properties."""
    person = {"$os": "Mac OS X", "email": "test@posthog.com", "$browser": "Chrome",
              "$browser_version": 86, "$initial_referrer": "$direct",
              "$initial_referring_domain": "$direct"}  # fmt: skip
    return make_event(event="$identify", **{"$set": person, **fields})


def _plain(value: Any) -> Any:
    """A deep copy as JSON data: what crosses into the sandbox anyway."""
    return json.loads(json.dumps(value))


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
        validate: bool = True,
    ) -> None:
        """Compile the plugin for one config. Raises PluginConfigError for a config the
        plugin.json refuses (unless `validate=False`: then `setup_plugin` runs without a
        required key, and `h.validate()` says what is wrong), PluginLoadError or
        ForbiddenImportError for bad code.

        `attachments`: key -> Attachment, (file_name, content_type, bytes) or None (not
        uploaded). `geoip` maps ip -> city record for `meta.geoip.locate`; None: no
        database."""
        given = {k: _attachment(v) for k, v in (attachments or {}).items()}
        files = {k: a for k, a in given.items() if a is not None}
        if validate:
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

    def validate(self) -> None:
        """Check the config against plugin.json as the server does; raises
        PluginConfigError naming the key."""
        validate_config(self.record.plugin.plugin_json, self.record.config, self.record.attachments)

    def reset(self) -> None:
        """Empty the cache, storage, logs, requests, captures and jobs, as `resetMeta()`
        did (the plugin's `global_` stays: it is the sandbox's)."""
        self.cache.clear()
        self.storage.clear()
        self._logs.entries.clear()
        self.http.requests.clear()
        self._captures.messages.clear()
        self._jobs.jobs.clear()

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
        """`event` with the fields the pipeline always sets filled in (what `as_server`
        hands the plugin; `docs/writing-plugins.md` lists them)."""
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

    def _given(self, event: Mapping[str, Any], as_server: bool) -> dict[str, Any]:
        return self.event(event) if as_server else dict(_plain(event))

    def process_event(
        self, event: Mapping[str, Any], *, as_server: bool = False
    ) -> dict[str, Any] | None:
        """What `process_event` returns for exactly `event` (None: dropped); with
        `as_server`, for `event` filled in as the pipeline fills it."""
        self._ensure_setup()
        result: dict[str, Any] | None = self._call("process_event", self._given(event, as_server))
        return result

    def on_event(self, event: Mapping[str, Any], *, as_server: bool = False) -> None:
        self._ensure_setup()
        self._call("on_event", self._given(event, as_server))

    def export_events(self, events: list[Mapping[str, Any]], *, as_server: bool = False) -> None:
        """Call `export_events` with one batch; a RetryError is raised to the test."""
        self._ensure_setup()
        self._call("export_events", [self._given(e, as_server) for e in events])

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
        """What the plugin logged with `meta.logger`, in order: `{"level", "message"}`
        (errors it raised are in `h.errors`, not here, as a console spy would see it)."""
        return [
            {"level": e.level, "message": e.message}
            for e in self._logs.entries
            if e.source == "CONSOLE"
        ]

    @property
    def requests(self) -> list[dict[str, Any]]:
        """`fetch` requests, in order: `{"method", "url", "headers", "body"}`."""
        return list(self.http.requests)

    @property
    def captures(self) -> list[dict[str, Any]]:
        """`posthog.capture` calls, in order, as the plugin made them: `{"event",
        "properties"}` without what the server adds to every captured event (`$lib`,
        `$lib_version`, the default `distinct_id`; `capture_messages` has them)."""
        default_id = self.record.plugin.name or f"plugin-id-{self.record.plugin.id}"
        out = []
        for message in self._captures.messages:
            data = json.loads(message["data"])
            properties = dict(data["properties"])
            for key, added in (("$lib", LIB_NAME), ("$lib_version", LIB_VERSION)):
                if properties.get(key) == added:
                    del properties[key]
            if properties.get("distinct_id") == default_id:
                del properties["distinct_id"]
            if data.get("timestamp") != message.get("now"):
                properties["timestamp"] = data["timestamp"]  # the plugin gave it
            out.append({"event": data["event"], "properties": properties})
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
    def cache(self) -> CacheView:
        """The plugin's cache, live: read, set (`h.cache.set(k, v, ttl_seconds)`), delete,
        clear, `h.cache.expire(k)`; lists as lists of strings."""
        return CacheView(self._cache, self.record.id)

    @property
    def storage(self) -> StorageView:
        """The plugin's storage, live: read, write, delete, clear."""
        return StorageView(self._storage, self.record.id)

    @property
    def global_(self) -> dict[str, Any]:
        value: dict[str, Any] = self.instance.global_()
        return value

    @property
    def metrics(self) -> dict[str, float]:
        return self.instance.metrics.snapshot()

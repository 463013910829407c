"""The `meta` object handed to every plugin function, and the sandbox globals.

Public attributes are exactly the documented meta API; nothing reachable from them leads
to a backend, another plugin config, or the runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plugin_runtime.backends import RuntimeBackends
from plugin_runtime.errors import RetryError
from plugin_runtime.extensions.attachments import build_attachments
from plugin_runtime.extensions.cache import Cache
from plugin_runtime.extensions.config import build_config
from plugin_runtime.extensions.cursor import Cursor, Utils
from plugin_runtime.extensions.fetch import make_fetch
from plugin_runtime.extensions.geoip import GeoIP, build_geoip
from plugin_runtime.extensions.global_ import build_global
from plugin_runtime.extensions.jobs import Jobs
from plugin_runtime.extensions.logger import Logger
from plugin_runtime.extensions.metrics import Metrics, MetricValues
from plugin_runtime.extensions.posthog import PostHog
from plugin_runtime.extensions.storage import Storage
from plugin_runtime.types import Attachment, PluginConfigRecord, PluginConfigRef

META_FIELDS = (
    "config",
    "attachments",
    "global_",
    "cache",
    "storage",
    "jobs",
    "geoip",
    "logger",
    "metrics",
    "utils",
)


@dataclass(frozen=True, slots=True)
class Meta:
    """What plugin functions receive as `meta`."""

    config: dict[str, Any]
    attachments: dict[str, Attachment | None]
    global_: dict[str, Any]
    cache: Cache
    storage: Storage
    jobs: Jobs
    geoip: GeoIP
    logger: Logger
    metrics: Metrics
    utils: Utils

    def __getitem__(self, name: str) -> Any:
        # `meta["global"]`, for ported plugins (`global` is a Python keyword)
        field = "global_" if name == "global" else name
        if field not in META_FIELDS:
            raise KeyError(name)
        return getattr(self, field)


def build_meta(
    record: PluginConfigRecord,
    backends: RuntimeBackends,
    *,
    job_names: frozenset[str],
    metrics: MetricValues,
) -> Meta:
    ref = PluginConfigRef.of(record)
    return Meta(
        config=build_config(record.config, record.plugin.plugin_json),
        attachments=build_attachments(record.attachments, record.plugin.plugin_json),
        global_=build_global(),
        cache=Cache(backends.cache, record.id),
        storage=Storage(backends.storage, record.id),
        jobs=Jobs(backends.jobs, ref, job_names),
        geoip=build_geoip(backends.geoip),
        logger=Logger(backends.logs, ref),
        metrics=Metrics(metrics),
        utils=Utils(Cursor(backends.cache, record.id)),
    )


def sandbox_globals(record: PluginConfigRecord, backends: RuntimeBackends) -> Mapping[str, Any]:
    """The names plugin modules see besides builtins: `fetch`, `RetryError`, `posthog`."""
    return {
        "fetch": make_fetch(backends.http),
        "RetryError": RetryError,
        "posthog": PostHog(backends.captures, PluginConfigRef.of(record)),
    }

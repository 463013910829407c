"""Keeping the plugins' `meta.metrics`: what the runtime counted, merged into the SQL
store every `FLUSH_SECONDS` (and when the embedded mode ends), and the stored values on
`/metrics` as `plugin_server.plugin.metric`."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from sqlalchemy.exc import SQLAlchemyError

from app.stores.plugin_metrics import MetricDelta, PluginMetricStore
from plugin_runtime import telemetry as plugin_telemetry
from plugin_runtime.runtime import PluginRuntime
from plugin_runtime.types import PluginConfigRef

log = logging.getLogger(__name__)

FLUSH_SECONDS = 10.0


class MetricsFlusher:
    def __init__(self, runtime: PluginRuntime, store: PluginMetricStore) -> None:
        self._runtime = runtime
        self._store = store
        # the stored values as of the last merge, with the config they belong to
        self.stored: dict[tuple[int, str], tuple[PluginConfigRef, float]] = {}
        _flushers.add(self)

    async def flush(self) -> None:
        """Merge what was counted since the last flush. A database that cannot be used
        keeps the counts for the next flush."""
        taken = self._runtime.take_metrics()
        refs = {ref.plugin_config_id: ref for ref, _kinds, _values in taken}
        deltas = [
            MetricDelta(ref.plugin_config_id, name, kinds.get(name, "sum"), value)
            for ref, kinds, values in taken
            for name, value in values.items()
        ]
        try:
            totals = await self._store.merge(deltas)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("plugin metrics wait: the database cannot be used: %s", exc)
            self._runtime.give_back_metrics(taken)
            return
        for (config_id, name), value in totals.items():
            self.stored[(config_id, name)] = (refs[config_id], value)


_flushers: weakref.WeakSet[MetricsFlusher] = weakref.WeakSet()  # gone with their resources


def _stored(_options: CallbackOptions) -> Iterator[Observation]:
    for flusher in list(_flushers):
        for (_config, name), (ref, value) in list(flusher.stored.items()):
            yield Observation(value, {**plugin_telemetry.attributes(ref), "metric": name})


metrics.get_meter("plugin_server").create_observable_gauge(
    "plugin_server.plugin.metric",
    callbacks=[_stored],
    unit="1",
    description="the plugins' own meta.metrics as stored for the cluster (as of this "
    "worker's last merge: take the max across workers, not the sum)",
)

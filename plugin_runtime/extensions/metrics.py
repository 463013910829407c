"""`meta.metrics`: the plugin's declared metrics (`sum`, `max`, `min`).

Declared in plugin.json `metrics` (or a module-level `metrics` dict, as in the original):
`{"name": "sum" | "max" | "min"}`. `meta.metrics["name"]` (or `meta.metrics.name`) has
exactly one method, named after its kind: `increment`, `max` or `min`. Values accumulate
per plugin config in `MetricValues` until the runtime reads (and clears) them.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from plugin_runtime.errors import IllegalOperationError, PluginLoadError

METRIC_KINDS = ("sum", "max", "min")
# what the export machinery counts for every export_events plugin (spec 1.7)
EXPORT_METRICS = (
    "events_seen",
    "events_delivered_successfully",
    "undelivered_events",
    "retry_errors",
    "other_errors",
)


def declared_metrics(plugin_name: str, *declarations: Any, exports: bool = False) -> dict[str, str]:
    """Merge metric declarations (lower-cased kinds); raises PluginLoadError on a bad kind."""
    out: dict[str, str] = {}
    for declared in declarations:
        if declared is None:
            continue
        if not isinstance(declared, Mapping):
            raise PluginLoadError(f"plugin {plugin_name!r}: `metrics` must map names to kinds")
        for name, kind in declared.items():
            if not isinstance(kind, str) or kind.lower() not in METRIC_KINDS:
                raise PluginLoadError(
                    f"plugin {plugin_name!r}: metric {name!r} has kind {kind!r}; "
                    f"use one of {', '.join(METRIC_KINDS)}"
                )
            out[str(name)] = kind.lower()
    if exports:
        out.update(dict.fromkeys(EXPORT_METRICS, "sum"))
    return out


class MetricValues:
    """Accumulated values of one plugin config; safe to update from plugin threads."""

    def __init__(self, kinds: Mapping[str, str]) -> None:
        self.kinds = dict(kinds)
        self._values: dict[str, float] = {}
        self._lock = threading.Lock()

    def update(self, name: str, value: float) -> None:
        kind = self.kinds[name]
        with self._lock:
            current = self._values.get(name)
            if current is None:
                self._values[name] = value
            elif kind == "sum":
                self._values[name] = current + value
            elif kind == "max":
                self._values[name] = max(current, value)
            else:
                self._values[name] = min(current, value)

    def snapshot(self, *, clear: bool = False) -> dict[str, float]:
        with self._lock:
            values = dict(self._values)
            if clear:
                self._values.clear()
        return values


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IllegalOperationError(f"metrics take numbers only, got {value!r}")
    return value


class SumMetric:
    __slots__ = ("_name", "_values")

    def __init__(self, values: MetricValues, name: str) -> None:
        self._values, self._name = values, name

    def increment(self, value: float = 1) -> None:
        self._values.update(self._name, _number(value))


class MaxMetric:
    __slots__ = ("_name", "_values")

    def __init__(self, values: MetricValues, name: str) -> None:
        self._values, self._name = values, name

    def max(self, value: float) -> None:
        self._values.update(self._name, _number(value))


class MinMetric:
    __slots__ = ("_name", "_values")

    def __init__(self, values: MetricValues, name: str) -> None:
        self._values, self._name = values, name

    def min(self, value: float) -> None:
        self._values.update(self._name, _number(value))


_UPDATERS: dict[str, type[SumMetric | MaxMetric | MinMetric]] = {
    "sum": SumMetric,
    "max": MaxMetric,
    "min": MinMetric,
}


class Metrics:
    """What `meta.metrics` is."""

    __slots__ = ("_values",)

    def __init__(self, values: MetricValues) -> None:
        self._values = values

    def __getitem__(self, name: str) -> SumMetric | MaxMetric | MinMetric:
        kind = self._values.kinds.get(name)
        if kind is None:
            declared = ", ".join(sorted(self._values.kinds)) or "none"
            raise IllegalOperationError(
                f"metric {name!r} is not declared; declare it in plugin.json `metrics` "
                f"(declared: {declared})"
            )
        return _UPDATERS[kind](self._values, name)

    def __getattr__(self, name: str) -> SumMetric | MaxMetric | MinMetric:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

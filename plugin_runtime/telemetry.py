"""What the plugin runtime records with the OpenTelemetry metrics API.

The instruments come from the global meter provider, which the process that hosts the
runtime sets up (`app/telemetry.py`); without one they record nothing and cost next to
nothing. Attributes name the plugin config (`plugin_config_id`, `plugin`, `team_id`);
an error's class is `error.type`, as OpenTelemetry's conventions name it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any, Protocol

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from plugin_runtime.types import PluginConfigRef

_meter = metrics.get_meter("plugin_runtime")

CALLS = _meter.create_counter(
    "plugin_server.plugin.calls",
    unit="{call}",
    description="plugin function calls (one per event for process_event and on_event)",
)
FAILED_CALLS = _meter.create_counter(
    "plugin_server.plugin.failed_calls", unit="{call}", description="plugin calls that raised"
)
ERRORS = _meter.create_counter(
    "plugin_server.plugin.errors",
    unit="{error}",
    description="errors recorded against a plugin config, by error.type (a timeout is "
    "PluginTimeoutError)",
)
DURATION = _meter.create_histogram(
    "plugin_server.plugin.duration",
    unit="s",
    description="plugin time of one request to a team's sandbox (a batch of calls), per "
    "config, as the worker measures it",
)


def attributes(ref: PluginConfigRef) -> dict[str, str | int]:
    return {
        "plugin_config_id": ref.plugin_config_id,
        "plugin": ref.plugin_name,
        "team_id": ref.team_id,
    }


BUDGET_STATES = ("healthy", "degraded", "paused", "disabled")


class Observed(Protocol):
    """What a runtime shows of its loaded configs when the metrics are collected."""

    def observed_configs(self) -> Iterable[tuple[PluginConfigRef, str]]:
        """(config, budget state) of each."""
        ...


_runtimes: weakref.WeakSet[Any] = weakref.WeakSet()


def watch(runtime: Observed) -> None:
    """Report `runtime`'s configs in the gauges below while it lives."""
    _runtimes.add(runtime)


def _configs() -> Iterable[tuple[PluginConfigRef, str]]:
    for runtime in list(_runtimes):
        yield from runtime.observed_configs()


def _budget_states(_options: CallbackOptions) -> Iterable[Observation]:
    for ref, state in _configs():
        yield Observation(BUDGET_STATES.index(state), {**attributes(ref), "state": state})


_meter.create_observable_gauge(
    "plugin_server.plugin.budget.state",
    callbacks=[_budget_states],
    unit="1",
    description="each loaded config's budget: 0 healthy, 1 degraded, 2 paused, 3 disabled "
    "(and the state's name as an attribute)",
)

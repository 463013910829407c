"""One plugin config loaded: its compiled module, its `meta`, and how to call it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from plugin_runtime.backends import RuntimeBackends
from plugin_runtime.calls import PluginCall, Proceed
from plugin_runtime.capabilities import Capabilities, capabilities_of
from plugin_runtime.export_buffer import BufferSettings, ExportBuffer
from plugin_runtime.extensions.metrics import MetricValues, declared_metrics
from plugin_runtime.meta import Meta, build_meta, sandbox_globals
from plugin_runtime.sandbox.compiler import CompiledPlugin, compile_plugin
from plugin_runtime.sandbox.limits import Limits
from plugin_runtime.types import PluginConfigRecord, PluginConfigRef

PLUGIN_FUNCTIONS = (
    "setup_plugin",
    "teardown_plugin",
    "process_event",
    "process_event_batch",
    "on_event",
    "on_snapshot",
    "export_events",
    "run_every_minute",
    "run_every_hour",
    "run_every_day",
)


class PluginInstance:
    """A compiled plugin config. `call` runs one of its functions through the call stack;
    it blocks, so the runtime runs it on a plugin thread."""

    def __init__(
        self,
        record: PluginConfigRecord,
        compiled: CompiledPlugin,
        meta: Meta,
        metrics: MetricValues,
        proceed: Proceed,
    ) -> None:
        self.record = record
        self.ref = PluginConfigRef.of(record)
        self.meta = meta
        self.metrics = metrics
        self._proceed = proceed
        self.functions = _functions(compiled)
        self.jobs: dict[str, Callable[..., Any]] = dict(compiled.jobs)
        self.capabilities: Capabilities = capabilities_of(self.functions, self.jobs)
        self.export_buffer: ExportBuffer | None = None
        if "export_events" in self.functions:
            self.export_buffer = ExportBuffer(BufferSettings.from_config(record.config))

    def has(self, function: str) -> bool:
        return function in self.functions

    def call(
        self,
        function: str,
        *args: Any,
        event: Mapping[str, Any] | None = None,
        expected: tuple[type[BaseException], ...] = (),
    ) -> Any:
        """Call `function(*args, meta)`; raises what the plugin raised (after recording it)."""
        fn = self.functions[function]
        return self._proceed(
            PluginCall(self.ref, function, fn, (*args, self.meta), event, expected)
        )

    def call_job(
        self, name: str, payload: Any, *, expected: tuple[type[BaseException], ...] = ()
    ) -> Any:
        return self._proceed(
            PluginCall(
                self.ref, f"job:{name}", self.jobs[name], (payload, self.meta), None, expected
            )
        )


def _functions(compiled: CompiledPlugin) -> dict[str, Callable[..., Any]]:
    found = {n: f for n, f in compiled.functions.items() if n in PLUGIN_FUNCTIONS and callable(f)}
    for name in PLUGIN_FUNCTIONS:
        value = compiled.namespace.get(name)
        if name not in found and callable(value):
            found[name] = value
    if "process_event" not in found and "process_event_batch" in found:
        found["process_event"] = _from_batch(found["process_event_batch"])
    return found


def _from_batch(batch: Callable[..., Any]) -> Callable[..., Any]:
    # the original's fallback: a one-event batch, element 0 of the result (none: dropped)
    def process_event(event: dict[str, Any], meta: Meta) -> Any:
        result = batch([event], meta)
        return result[0] if result else None

    return process_event


def build_instance(
    record: PluginConfigRecord,
    backends: RuntimeBackends,
    *,
    limits: Limits,
    proceed: Proceed,
    metric_values: Callable[[dict[str, str]], MetricValues] = MetricValues,
) -> PluginInstance:
    """Compile the plugin for this config and build its meta (`metric_values` makes the
    store of its metric values from the declared kinds).

    Raises PluginLoadError (bad code, bad metric declarations), ForbiddenImportError or
    PluginTimeoutError (module body too slow).
    """
    plugin = record.plugin
    compiled = compile_plugin(
        plugin.files,
        main=plugin.main,
        plugin_name=plugin.name,
        sandbox_globals=sandbox_globals(record, backends),
        limits=limits,
    )
    exports = "export_events" in compiled.functions or callable(
        compiled.namespace.get("export_events")
    )
    kinds = declared_metrics(
        plugin.name,
        plugin.plugin_json.get("metrics"),
        compiled.namespace.get("metrics"),
        exports=exports,
    )
    metrics = metric_values(kinds)
    meta = build_meta(record, backends, job_names=frozenset(compiled.jobs), metrics=metrics)
    return PluginInstance(record, compiled, meta, metrics, proceed)

"""`PluginRuntime`: the plugin configs of this process and every way the app calls them.

The app hands it the configs to run (`load`), batches of events (`process_events`,
`on_events`, `export_events`), scheduled ticks and jobs. Plugin code runs on the
executor's threads; calls go through one middleware stack (statistics, error recording,
time and memory limits) built here.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

from plugin_runtime.backends import RuntimeBackends
from plugin_runtime.calls import CallMiddleware, CallStats, RecordErrors, bounded_invoke, call_stack
from plugin_runtime.capabilities import EXPORT_RETRY_JOB, METHODS, SCHEDULED, python_name
from plugin_runtime.chain import run_chain_batch, runs_in_chain
from plugin_runtime.error_recording import ErrorRecorder
from plugin_runtime.errors import UnknownJobError
from plugin_runtime.exports import ExportFailure, export_with_retry, new_payload
from plugin_runtime.extensions.posthog import PostHog
from plugin_runtime.instance import PluginInstance
from plugin_runtime.isolation import PluginExecutor
from plugin_runtime.lifecycle import ConfigSlot, Loader, same_plugin
from plugin_runtime.sandbox.limits import Limits
from plugin_runtime.setup_retry import SetupRetryPolicy
from plugin_runtime.types import PluginConfigRecord

log = logging.getLogger(__name__)

EXPORT_TICK_SECONDS = 1.0  # how often waiting export batches are checked for their time limit
SNAPSHOT_EVENT = "$snapshot"  # goes to on_snapshot instead of on_event
PLUGIN_METRICS_EVENT = "$$plugin_metrics"

ExportFailureHook = Callable[[ExportFailure], Awaitable[None] | None]


class PluginRuntime:
    def __init__(
        self,
        *,
        backends: RuntimeBackends,
        limits: Limits,
        executor: PluginExecutor,
        setup_retry: SetupRetryPolicy | None = None,
        on_export_failure: ExportFailureHook | None = None,
        middlewares: Sequence[CallMiddleware] = (),
        export_tick_seconds: float = EXPORT_TICK_SECONDS,
    ) -> None:
        """`middlewares` wrap every plugin call, outermost first, inside the runtime's own
        statistics and error recording. `on_export_failure` receives every batch that
        export_events did not take (exhausted retries or another error)."""
        self.backends = backends
        self._executor = executor
        self._recorder = ErrorRecorder(backends.errors, backends.logs)
        self.stats = CallStats()
        proceed = call_stack(
            [self.stats, RecordErrors(self._recorder), *middlewares], bounded_invoke(limits)
        )
        self._loader = Loader(
            backends=backends,
            limits=limits,
            executor=executor,
            proceed=proceed,
            recorder=self._recorder,
            policy=setup_retry or SetupRetryPolicy(),
            is_current=lambda slot: self._slots.get(slot.record.id) is slot,
        )
        self._on_export_failure = on_export_failure
        self._export_tick_seconds = export_tick_seconds
        self._slots: dict[int, ConfigSlot] = {}
        self._teams: dict[int, list[ConfigSlot]] = {}
        self._ticker: asyncio.Task[None] | None = None

    # -- loading -------------------------------------------------------------------

    async def load(self, configs: Sequence[PluginConfigRecord]) -> None:
        """Run exactly these configs (disabled ones are left out). New and changed configs
        are compiled and set up (a failed setup retries in the background); removed and
        changed ones are torn down after the switch. Unchanged ones keep their instance."""
        slots: dict[int, ConfigSlot] = {}
        fresh: list[ConfigSlot] = []
        for record in configs:
            if not record.enabled:
                continue
            old = self._slots.get(record.id)
            if old is not None and same_plugin(old.record, record):
                old.record = record
                slots[record.id] = old
            else:
                slots[record.id] = ConfigSlot(record)
                fresh.append(slots[record.id])
        await asyncio.gather(*(self._loader.attempt(slot) for slot in fresh))
        gone = [s for cid, s in self._slots.items() if slots.get(cid) is not s]
        self._slots = slots
        self._teams = _by_team(slots.values())
        await asyncio.gather(*(self._loader.unload(s, self._flush_instance) for s in gone))

    def _instances(self, team_id: int) -> list[PluginInstance]:
        return [s.instance for s in self._teams.get(team_id, ()) if s.instance is not None]

    def _instance(self, plugin_config_id: int) -> PluginInstance | None:
        slot = self._slots.get(plugin_config_id)
        return slot.instance if slot is not None else None

    # -- events --------------------------------------------------------------------

    async def process_events(
        self, team_id: int, events: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The team's process_event chain over a batch; dropped events are left out."""
        chain = [i for i in self._instances(team_id) if runs_in_chain(i)]
        if not chain or not events:
            return events
        storage = self.backends.storage

        def work() -> list[dict[str, Any]]:
            with storage.batch():
                return run_chain_batch(chain, events, self._recorder)

        return await self._executor.run(work)

    async def on_events(self, team_id: int, events: list[dict[str, Any]]) -> None:
        """Every plugin's on_event (on_snapshot for `$snapshot`), plugins side by side; each
        gets its own copy of the events, so none sees another's changes."""
        storage = self.backends.storage

        def deliver(instance: PluginInstance) -> None:
            with storage.batch():
                _deliver(instance, copy_events(events))

        calls = [
            self._executor.run(functools.partial(deliver, instance))
            for instance in self._instances(team_id)
            if instance.has("on_event") or instance.has("on_snapshot")
        ]
        await asyncio.gather(*calls)

    async def export_events(self, team_id: int, events: list[dict[str, Any]]) -> None:
        """Add the events to the team's export buffers; full batches are exported now,
        the rest when their time is up (or on `flush_exports`)."""
        for instance in self._instances(team_id):
            if instance.export_buffer is None:
                continue
            for event in events:
                for batch in instance.export_buffer.add(copy_events([event])[0]):
                    await self._export(instance, batch)
        self._ensure_ticker()

    async def flush_exports(self) -> None:
        """Export every waiting batch now."""
        for slot in list(self._slots.values()):
            if slot.instance is not None:
                await self._flush_instance(slot.instance)

    async def _flush_instance(self, instance: PluginInstance) -> None:
        if instance.export_buffer is not None:
            batch = instance.export_buffer.drain()
            if batch:
                await self._export(instance, batch)

    async def _export(self, instance: PluginInstance, batch: list[dict[str, Any]]) -> None:
        await self._export_payload(instance, new_payload(batch))

    async def _export_payload(self, instance: PluginInstance, payload: dict[str, Any]) -> None:
        failure = await self._executor.run(
            lambda: export_with_retry(
                instance, payload, jobs=self.backends.jobs, recorder=self._recorder
            )
        )
        if failure is None:
            return
        if self._on_export_failure is None:
            log.error(
                "export of %d events by plugin config %s failed: %s",
                len(failure.events),
                failure.plugin_config_id,
                failure.error,
            )
            return
        try:
            result = self._on_export_failure(failure)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception(
                "export failure hook failed for plugin config %s", failure.plugin_config_id
            )

    def _ensure_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.create_task(self._tick_exports())

    async def _tick_exports(self) -> None:
        while True:
            await asyncio.sleep(self._export_tick_seconds)
            for slot in list(self._slots.values()):
                instance = slot.instance
                buffer = instance.export_buffer if instance is not None else None
                if instance is not None and buffer is not None and buffer.due():
                    await self._flush_instance(instance)

    # -- schedules and jobs ----------------------------------------------------------

    def scheduled_tasks(self) -> list[tuple[int, str]]:
        """(plugin config id, `runEveryMinute` | `runEveryHour` | `runEveryDay`) pairs."""
        return [
            (cid, task)
            for cid, slot in sorted(self._slots.items())
            if slot.instance is not None
            for task in slot.instance.capabilities.scheduled_tasks
        ]

    def configs_with(self, capability: str) -> list[int]:
        """Ids of loaded configs whose plugin has `capability` (`processEvent` or
        `process_event`, a scheduled task, or a job name)."""
        wanted = {capability, METHODS.get(capability), SCHEDULED.get(capability)}
        out = []
        for cid, slot in sorted(self._slots.items()):
            caps = slot.instance.capabilities if slot.instance is not None else None
            if caps and wanted & {*caps.methods, *caps.scheduled_tasks, *caps.jobs}:
                out.append(cid)
        return out

    async def run_scheduled(self, plugin_config_id: int, task: str) -> None:
        """Run `run_every_minute/hour/day` (either spelling) of one config; a failure is
        recorded against the config, the next run is unaffected."""
        instance = self._instance(plugin_config_id)
        function = python_name(task)
        if instance is None or function not in SCHEDULED or not instance.has(function):
            log.warning("no scheduled task %r for plugin config %s", task, plugin_config_id)
            return
        await self._executor.run(lambda: _quietly(instance.call, function))

    async def run_job(self, plugin_config_id: int, name: str, payload: Any) -> None:
        """Run job `name` of one config with `payload`; a failure is recorded, not retried
        (`exportEventsWithRetry` is the export machinery's own job)."""
        instance = self._instance(plugin_config_id)
        if instance is None:
            log.warning("job %r for plugin config %s, which is not loaded", name, plugin_config_id)
            return
        if name == EXPORT_RETRY_JOB and instance.export_buffer is not None:
            await self._export_payload(instance, dict(payload or {}))
            return
        if name not in instance.jobs:
            error = UnknownJobError(f"plugin {instance.ref.plugin_name!r} defines no job {name!r}")
            await self._executor.run(lambda: self._recorder.record(instance.ref, error))
            return
        await self._executor.run(lambda: _quietly(instance.call_job, name, payload))

    # -- state the app reads -----------------------------------------------------------

    def metrics(self, plugin_config_id: int) -> dict[str, float]:
        """The accumulated metric values of one config (since the last `send_metrics`)."""
        instance = self._instance(plugin_config_id)
        return instance.metrics.snapshot() if instance is not None else {}

    async def send_metrics(self) -> None:
        """Capture `$$plugin_metrics` for every config with accumulated metrics, then clear
        them (the original did this every 30 minutes)."""
        for slot in list(self._slots.values()):
            instance = slot.instance
            values = instance.metrics.snapshot(clear=True) if instance is not None else {}
            if instance is not None and values:
                properties = {
                    **values,
                    "plugin_name": instance.ref.plugin_name,
                    "plugin_id": instance.ref.plugin_id,
                }
                poster = PostHog(self.backends.captures, instance.ref)
                await self._executor.run(
                    functools.partial(poster.capture, PLUGIN_METRICS_EVENT, properties)
                )

    def failing_configs(self) -> dict[int, str]:
        """Configs that gave up loading, with their last error."""
        return {cid: s.failing for cid, s in self._slots.items() if s.failing is not None}

    def capabilities(self, plugin_config_id: int) -> dict[str, list[str]] | None:
        instance = self._instance(plugin_config_id)
        return instance.capabilities.as_json() if instance is not None else None

    async def close(self) -> None:
        """Export what is waiting, then tear every config down."""
        if self._ticker is not None:
            self._ticker.cancel()
        slots, self._slots, self._teams = list(self._slots.values()), {}, {}
        await asyncio.gather(*(self._loader.unload(s, self._flush_instance) for s in slots))


def _by_team(slots: Any) -> dict[int, list[ConfigSlot]]:
    teams: dict[int, list[ConfigSlot]] = {}
    for slot in slots:
        teams.setdefault(slot.record.team_id, []).append(slot)
    for team in teams.values():
        team.sort(key=lambda s: (s.record.order, s.record.id))
    return teams


def copy_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A deep copy of the events, so plugins cannot see each other's changes.

    Events are JSON data, and an orjson round trip copies them several times faster than
    `copy.deepcopy`; anything orjson cannot encode falls back to deepcopy.
    """
    try:
        copied: list[dict[str, Any]] = orjson.loads(
            orjson.dumps(events, option=orjson.OPT_PASSTHROUGH_DATETIME)
        )
    except TypeError:
        return copy.deepcopy(events)
    return copied


def _quietly(fn: Callable[..., Any], *args: Any) -> None:
    # the call stack has recorded the error against the plugin config already
    with contextlib.suppress(Exception):
        fn(*args)


def _deliver(instance: PluginInstance, events: list[dict[str, Any]]) -> None:
    for event in events:
        function = "on_snapshot" if event.get("event") == SNAPSHOT_EVENT else "on_event"
        if instance.has(function):
            _quietly(lambda e=event, f=function: instance.call(f, e, event=e))

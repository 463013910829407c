"""`PluginRuntime`: the plugin configs of this process and every way the app calls them.

The app hands it the configs to run (`load`), batches of events (`process_events`,
`on_events`, `export_events`), scheduled ticks and jobs. Plugin code runs in one sandbox
process per team (`sandboxed.py`), driven from the executor's threads; a sandbox that
crashes or is killed costs its team's running call, is recorded against the plugin
config that was running, and is replaced with the team's configs loaded again.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from plugin_runtime import telemetry
from plugin_runtime.backends import RuntimeBackends
from plugin_runtime.budgets import DISABLED, HEALTHY, BudgetChange, BudgetPolicy, Budgets
from plugin_runtime.capabilities import EXPORT_RETRY_JOB, METHODS, SCHEDULED, python_name
from plugin_runtime.chain import runs_in_chain
from plugin_runtime.delivery import copy_events
from plugin_runtime.error_recording import ErrorRecorder
from plugin_runtime.errors import RetryError, UnknownJobError
from plugin_runtime.exports import (
    EXPORT_MAX_RETRIES,
    ExportFailure,
    export_with_retry,
    new_payload,
    retry_delay,
)
from plugin_runtime.isolation import PluginExecutor
from plugin_runtime.lifecycle import ConfigSlot, Loader, same_plugin
from plugin_runtime.sandbox.limits import Limits
from plugin_runtime.sandbox.supervisor import SandboxCrashed
from plugin_runtime.sandboxed import (
    DEFAULT_MAX_PROCESSES,
    SandboxedInstance,
    SandboxPool,
    SandboxTeam,
)
from plugin_runtime.setup_retry import SetupRetryPolicy
from plugin_runtime.types import JobOutcome, PluginConfigRecord, PluginConfigRef

log = logging.getLogger(__name__)
T = TypeVar("T")

BUDGET_JOB_WAIT = timedelta(seconds=60)  # a job of a paused config is tried again after
EXPORT_TICK_SECONDS = 1.0  # how often waiting export batches are checked for their time limit

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
        export_tick_seconds: float = EXPORT_TICK_SECONDS,
        max_sandboxes: int = DEFAULT_MAX_PROCESSES,
        budget: BudgetPolicy | None = None,
    ) -> None:
        """`on_export_failure` receives every batch that export_events did not take
        (exhausted retries or another error); `max_sandboxes` caps the live sandbox
        processes (one per team in use)."""
        self.backends = backends
        self._executor = executor
        self._limits = limits
        self._recorder = ErrorRecorder(backends.errors, backends.logs)
        self._sandboxes: dict[int, SandboxTeam] = {}
        self._sandboxes_lock = threading.Lock()
        self.pool = SandboxPool(max_sandboxes)
        self._loader = Loader(
            executor=executor,
            team=self.sandbox,
            recorder=self._recorder,
            policy=setup_retry or SetupRetryPolicy(),
            is_current=lambda slot: self._slots.get(slot.record.id) is slot,
        )
        self._on_export_failure = on_export_failure
        self._export_tick_seconds = export_tick_seconds
        self._slots: dict[int, ConfigSlot] = {}
        self._teams: dict[int, list[ConfigSlot]] = {}
        self._ticker: asyncio.Task[None] | None = None
        self.budgets = Budgets(budget, on_change=self._budget_changed)
        self._writes: set[asyncio.Future[None]] = set()
        telemetry.watch(self)

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
                if record.budget_state is None and old.record.budget_state is not None:
                    self.budgets.reset(record.id)  # an operator enabled it again
                old.record = record
                slots[record.id] = old
            else:
                slots[record.id] = ConfigSlot(record)
                fresh.append(slots[record.id])
        await asyncio.gather(*(self._loader.attempt(slot) for slot in fresh))
        gone = [s for cid, s in self._slots.items() if slots.get(cid) is not s]
        for slot in gone:
            self.budgets.reset(slot.record.id)
        self._slots = slots
        self._teams = _by_team(slots.values())
        await asyncio.gather(*(self._loader.unload(s, self._flush_instance) for s in gone))
        # a team left with no configs gives its process back
        for team_id in [t for t in self._sandboxes if t not in self._teams]:
            await self._executor.run(self._sandboxes.pop(team_id).close)

    async def _in_sandbox(self, team_id: int, work: Callable[[], T]) -> T:
        """Run `work` (requests to the team's sandbox) on a plugin thread, one at a time
        per team (`PluginExecutor.run_in_turn`). A team's sandbox answers one request at
        a time anyway; its queued requests wait without a thread, so a slow team holds
        one thread at a time and leaves the others to the other teams, and each starts
        as soon as the one before it ends (handed on by the plugin thread, not through
        the event loop).

        The storage writes of chain and deliver requests are held when the request
        ends and stored after the team's turn: the team's next request runs meanwhile
        (and reads them), instead of its sandbox waiting on the database."""
        try:
            return await self._executor.run_in_turn(team_id, work)
        finally:
            # nothing held: this request's writes (if any) are stored already, and a
            # request that wrote nothing (most `process_event`s) skips a thread hop
            if self.backends.storage.holding():
                await self._executor.run(self.backends.storage.write_held)

    def sandbox(self, team_id: int) -> SandboxTeam:
        """The team's sandbox (its process starts with the first request)."""
        with self._sandboxes_lock:  # plugin threads load a team's configs side by side
            team = self._sandboxes.get(team_id)
            if team is None:
                team = self._sandboxes[team_id] = SandboxTeam(
                    team_id, self.backends, limits=self._limits, pool=self.pool
                )
                team.on_spent = self._spent
            return team

    def _instances(self, team_id: int) -> list[SandboxedInstance]:
        return [s.instance for s in self._teams.get(team_id, ()) if s.instance is not None]

    def _instance(self, plugin_config_id: int) -> SandboxedInstance | None:
        slot = self._slots.get(plugin_config_id)
        return slot.instance if slot is not None else None

    async def _current(self, team_id: int) -> list[SandboxedInstance]:
        """The team's instances, loading again those whose sandbox process has ended."""
        stale = [
            s
            for s in self._teams.get(team_id, ())
            if s.instance is not None and not s.instance.current
        ]
        for slot in stale:
            slot.instance = None
            await self._loader.attempt(slot, again=True)
        return self._instances(team_id)

    async def _crashed(self, crash: SandboxCrashed) -> None:
        slot = self._slots.get(crash.plugin_config_id or -1)
        if slot is not None:
            ref = slot.ref
            await self._executor.run(lambda: self._recorder.record(ref, crash))

    # -- events --------------------------------------------------------------------

    async def process_events(
        self, team_id: int, events: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The team's process_event chain over a batch; dropped events are left out.

        When the sandbox dies during the batch, the plugin config that was running is
        recorded as failed and the batch runs again without it in a fresh sandbox (the
        events carry it in `$plugins_failed`), at most once per config of the team.
        """
        if not events:
            return events
        failed: list[str] = []
        for _ in range(len(self._teams.get(team_id, ())) + 1):
            skipped = set(failed)
            chain = [
                i
                for i in self._within_budget(await self._current(team_id), len(events))
                if runs_in_chain(i) and i.ref.label not in skipped
            ]
            if not chain:
                return _marked(events, failed)
            team = self.sandbox(team_id)
            try:
                kept = await self._in_sandbox(team_id, functools.partial(team.chain, chain, events))
            except SandboxCrashed as crash:
                await self._crashed(crash)
                culprit = self._instance(crash.plugin_config_id or -1)
                if culprit is None:
                    # it died outside any plugin call: every plugin of the batch failed
                    return _marked(events, [*failed, *(i.ref.label for i in chain)])
                failed.append(culprit.ref.label)
                continue
            return _marked(kept, failed)
        return _marked(events, failed)

    async def on_events(self, team_id: int, events: list[dict[str, Any]]) -> None:
        """Every plugin's on_event (on_snapshot for `$snapshot`); each plugin gets its own
        copy of the events, so none sees another's changes."""
        receivers = [
            i
            for i in self._within_budget(await self._current(team_id), len(events))
            if i.has("on_event") or i.has("on_snapshot")
        ]
        if not receivers or not events:
            return
        team = self.sandbox(team_id)
        try:
            await self._in_sandbox(team_id, functools.partial(team.deliver, receivers, events))
        except SandboxCrashed as crash:
            await self._crashed(crash)

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

    async def flush_exports(self, team_id: int | None = None) -> None:
        """Export every waiting batch now (of one team's configs, with `team_id`)."""
        slots = self._slots.values() if team_id is None else self._teams.get(team_id, ())
        for slot in list(slots):
            if slot.instance is not None:
                await self._flush_instance(slot.instance)

    async def _flush_instance(self, instance: SandboxedInstance) -> None:
        if instance.export_buffer is not None:
            batch = instance.export_buffer.drain()
            if batch:
                await self._export(instance, batch)

    async def _export(self, instance: SandboxedInstance, batch: list[dict[str, Any]]) -> None:
        await self._export_payload(instance, new_payload(batch))

    async def _export_payload(self, instance: SandboxedInstance, payload: dict[str, Any]) -> None:
        if not instance.current:
            await self._current(instance.ref.team_id)
            current = self._instance(instance.ref.plugin_config_id)
            instance = current if current is not None else instance
        failure = await self._in_sandbox(
            instance.ref.team_id,
            lambda: export_with_retry(
                instance, payload, jobs=self.backends.jobs, recorder=self._recorder
            ),
        )
        if failure is None:
            return
        if self._on_export_failure is None:
            log.error(
                "export of %d events by plugin config %s failed: %s",
                len(failure.events),
                failure.plugin_config_id,
                failure.error,
                extra={"plugin_config_id": failure.plugin_config_id},
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

    async def run_scheduled(
        self, plugin_config_id: int, task: str, period: datetime | None = None
    ) -> bool:
        """Run `run_every_minute/hour/day` (either spelling) of one config, once; False when
        it failed (the error is recorded against the config) or the config has no such
        task. Each run leaves a SYSTEM log line with its outcome, duration and `period`
        (when the period it runs for began)."""
        instance = await self._current_instance(plugin_config_id)
        function = python_name(task)
        if instance is None or function not in SCHEDULED or not instance.has(function):
            log.warning("no scheduled task %r for plugin config %s", task, plugin_config_id)
            return False
        ref = instance.ref
        if not self.budgets.allows(plugin_config_id):
            state = self.budgets.state(plugin_config_id)
            await self._executor.run(
                lambda: self._recorder.system(ref, "info", f"{function} skipped: {state}")
            )
            return False
        which = f" for the period from {period:%Y-%m-%d %H:%M:%S} UTC" if period else ""

        def run() -> bool:
            started = time.monotonic()
            try:
                instance.call(function)
            except Exception as exc:
                if isinstance(exc, SandboxCrashed):
                    self._recorder.record(ref, exc)  # a plugin error records itself
                self._recorder.system(
                    ref, "warning", f"{function}{which} failed: {type(exc).__name__}"
                )
                return False
            took = time.monotonic() - started
            self._recorder.system(ref, "info", f"{function}{which} ran in {took:.3f} s")
            return True

        return await self._in_sandbox(ref.team_id, run)

    async def _current_instance(self, plugin_config_id: int) -> SandboxedInstance | None:
        slot = self._slots.get(plugin_config_id)
        if slot is None:
            return None
        await self._current(slot.record.team_id)
        return self._instance(plugin_config_id)

    async def run_job(
        self, plugin_config_id: int, name: str, payload: Any, *, retries_so_far: int = 0
    ) -> JobOutcome:
        """Run job `name` of one config with `payload`, once.

        A `RetryError` asks for the job again after the exports' backoff (6 s, 12 s, ...)
        until `EXPORT_MAX_RETRIES` retries were made; any other error is recorded against
        the config and ends the job. An export retry (`exportEventsWithRetry`) schedules
        its own next attempt and dead-letters its batch itself, so it is done once tried.
        """
        instance = await self._current_instance(plugin_config_id)
        if instance is None:
            log.warning("job %r for plugin config %s, which is not loaded", name, plugin_config_id)
            return JobOutcome.failed(f"plugin config {plugin_config_id} is not loaded")
        if name == EXPORT_RETRY_JOB and instance.export_buffer is not None:
            await self._export_payload(instance, dict(payload or {}))
            return JobOutcome.done()
        if not self.budgets.allows(plugin_config_id):
            state = self.budgets.state(plugin_config_id)
            return JobOutcome.later(BUDGET_JOB_WAIT, f"plugin config {state} by its budget")
        if name not in instance.jobs:
            error = UnknownJobError(f"plugin {instance.ref.plugin_name!r} defines no job {name!r}")
            await self._executor.run(lambda: self._recorder.record(instance.ref, error))
            return JobOutcome.failed(str(error))
        ref = instance.ref
        try:
            await self._in_sandbox(
                ref.team_id, lambda: instance.call_job(name, payload, expected=(RetryError,))
            )
        except RetryError as exc:
            if retries_so_far < EXPORT_MAX_RETRIES:
                return JobOutcome.again(retry_delay(retries_so_far), f"RetryError: {exc}")
            exhausted = exc
            await self._executor.run(lambda: self._recorder.record(ref, exhausted))
            return JobOutcome.failed(f"RetryError after {retries_so_far + 1} attempts: {exc}")
        except SandboxCrashed as crash:
            await self._crashed(crash)
            return JobOutcome.failed(f"{type(crash).__name__}: {crash}")
        except Exception as exc:
            # the call stack recorded it against the config; jobs are not retried for it
            return JobOutcome.failed(f"{type(exc).__name__}: {exc}")
        return JobOutcome.done()

    # -- budgets -----------------------------------------------------------------------

    def _within_budget(
        self, instances: list[SandboxedInstance], events: int
    ) -> list[SandboxedInstance]:
        """The instances whose budget lets them run; the others pass `events` untouched."""
        allowed = []
        for instance in instances:
            if self.budgets.allows(instance.ref.plugin_config_id):
                allowed.append(instance)
            else:
                self.budgets.passed(instance.ref.plugin_config_id, events)
        return allowed

    def _spent(self, spent: dict[int, tuple[float, int, int]]) -> None:
        for plugin_config_id, (seconds, failures, calls) in spent.items():
            self.budgets.charge(plugin_config_id, seconds, failures)
            slot = self._slots.get(plugin_config_id)
            if slot is not None:
                labels = telemetry.attributes(slot.ref)
                telemetry.DURATION.record(seconds, labels)
                telemetry.CALLS.add(calls, labels)
                if failures:
                    telemetry.FAILED_CALLS.add(failures, labels)

    def observed_configs(self) -> list[tuple[PluginConfigRef, str]]:
        """Each loaded config and its budget state."""
        return [(slot.ref, self.budgets.state(cid)) for cid, slot in list(self._slots.items())]

    def _budget_changed(self, change: BudgetChange) -> None:
        slot = self._slots.get(change.plugin_config_id)
        if slot is None:
            return
        ref = slot.ref

        def write() -> None:
            level = "info" if change.state == HEALTHY else "warning"
            self._recorder.system(ref, level, f"budget: {change.state}: {change.reason}")
            state = None
            if change.state != HEALTHY:
                state = {"state": change.state, "reason": change.reason, "since": _now_iso()}
                if change.until is not None:
                    state["until"] = _iso(change.until)
            self.backends.errors.budget(ref.plugin_config_id, state)
            if change.state == DISABLED:
                self._recorder.disable(ref)

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            write()  # on a plugin thread: the stores may block it
            return
        # on the event loop (a pause ended): the stores are written from a plugin thread
        task = loop.create_task(self._executor.run(write))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    # -- state the app reads -----------------------------------------------------------

    def metrics(self, plugin_config_id: int) -> dict[str, float]:
        """The metric values one config counted since they were last taken."""
        instance = self._instance(plugin_config_id)
        return instance.metrics.snapshot() if instance is not None else {}

    def take_metrics(self) -> list[tuple[PluginConfigRef, dict[str, str], dict[str, float]]]:
        """Each loaded config's metric kinds and the values counted since the last take
        (which start again from nothing)."""
        taken = []
        for slot in list(self._slots.values()):
            instance = slot.instance
            values = instance.metrics.snapshot(clear=True) if instance is not None else {}
            if instance is not None and values:
                taken.append((instance.ref, dict(instance.metrics.kinds), values))
        return taken

    def give_back_metrics(
        self, taken: list[tuple[PluginConfigRef, dict[str, str], dict[str, float]]]
    ) -> None:
        """Count again what `take_metrics` gave and could not be kept."""
        for ref, _kinds, values in taken:
            instance = self._instance(ref.plugin_config_id)
            if instance is None:
                continue
            for name, value in values.items():
                if name in instance.metrics.kinds:
                    instance.metrics.update(name, value)

    def not_loaded(self) -> list[tuple[PluginConfigRecord, str]]:
        """Configs without a running instance, each with why: given up (disabled) or
        still retrying, with the last error."""
        out = []
        for slot in self._slots.values():
            if slot.instance is not None or slot.last_error is None:
                continue
            state = "disabled" if slot.failing is not None else "retrying"
            out.append((slot.record, f"{slot.last_error} ({state})"))
        return out

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
        sandboxes, self._sandboxes = list(self._sandboxes.values()), {}
        for team in sandboxes:
            await self._executor.run(team.close)


def _by_team(slots: Any) -> dict[int, list[ConfigSlot]]:
    teams: dict[int, list[ConfigSlot]] = {}
    for slot in slots:
        teams.setdefault(slot.record.team_id, []).append(slot)
    for team in teams.values():
        team.sort(key=lambda s: (s.record.order, s.record.id))
    return teams


def _marked(events: list[dict[str, Any]], failed: list[str]) -> list[dict[str, Any]]:
    # plugins whose sandbox died on this batch count as failed for each of its events
    if failed:
        for event in events:
            properties = event.setdefault("properties", {})
            if isinstance(properties, dict):
                properties["$plugins_failed"] = [*properties.get("$plugins_failed", []), *failed]
    return events


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

"""Loading and unloading one plugin config: compile + `setup_plugin` with retries, and
`teardown_plugin` (after flushing its export buffer), with SYSTEM log entries for each.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from plugin_runtime.config_validation import validate_config
from plugin_runtime.error_recording import ErrorRecorder
from plugin_runtime.errors import PluginConfigError
from plugin_runtime.isolation import PluginExecutor
from plugin_runtime.sandboxed import SandboxedInstance, SandboxTeam
from plugin_runtime.setup_retry import SetupRetryPolicy
from plugin_runtime.types import PluginConfigRecord, PluginConfigRef

TEARDOWN_TIMEOUT_SECONDS = 5.0  # an unload never waits longer on a plugin's teardown


@dataclass
class ConfigSlot:
    """One plugin config in the runtime: its record, its instance once set up, and where
    its load stands (attempts so far, a pending retry, or given up)."""

    record: PluginConfigRecord
    instance: SandboxedInstance | None = None
    attempts: int = 0
    failing: str | None = None
    last_error: str | None = None  # of the latest failed load attempt
    retry: asyncio.Task[None] | None = None

    @property
    def ref(self) -> PluginConfigRef:
        return PluginConfigRef.of(self.record)


def same_plugin(old: PluginConfigRecord, new: PluginConfigRecord) -> bool:
    """Whether `new` can keep `old`'s instance: same code, config and attachments (the
    order may differ: it only moves the plugin in its team's chain)."""

    def bare(r: PluginConfigRecord) -> PluginConfigRecord:
        return dataclasses.replace(r, order=0, budget_state=None)

    return bare(old) == bare(new)


class Loader:
    def __init__(
        self,
        *,
        executor: PluginExecutor,
        team: Callable[[int], SandboxTeam],
        recorder: ErrorRecorder,
        policy: SetupRetryPolicy,
        is_current: Callable[[ConfigSlot], bool],
    ) -> None:
        self._executor = executor
        self._team = team
        self._recorder = recorder
        self._policy = policy
        self._is_current = is_current

    def _build_and_setup(self, record: PluginConfigRecord) -> SandboxedInstance:
        validate_config(record.plugin.plugin_json, record.config, record.attachments)
        team = self._team(record.team_id)
        instance = team.load(record)
        if instance.has("setup_plugin"):
            try:
                # recorded once, by the failure handler, not also by the call stack
                instance.call("setup_plugin", expected=(Exception,))
            except BaseException:
                team.unload(instance)
                raise
        return instance

    async def attempt(self, slot: ConfigSlot, *, again: bool = False) -> None:
        """One load attempt; on failure, schedules the next (or gives up). `again`: the
        config's sandbox ended, so the error that ended it stays on record."""
        slot.attempts += 1
        try:
            instance = await self._executor.run(lambda: self._build_and_setup(slot.record))
        except Exception as exc:
            error = exc
            delay = await self._executor.run(lambda: self._failed(slot, error))
            if delay is not None:
                slot.retry = asyncio.create_task(self._retry_later(slot, delay))
            return
        slot.instance, slot.failing = instance, None
        await self._executor.run(lambda: self._loaded(slot, again))

    def _loaded(self, slot: ConfigSlot, again: bool) -> None:
        if again:
            message = f"plugin {slot.ref.plugin_name} loaded again in a fresh sandbox"
        else:
            self._recorder.clear(slot.ref)
            message = f"plugin {slot.ref.plugin_name} loaded"
        self._recorder.system(slot.ref, "info", message)

    def _failed(self, slot: ConfigSlot, exc: Exception) -> float | None:
        ref = slot.ref
        message = f"{type(exc).__name__}: {exc}"
        slot.last_error = message
        self._recorder.record(ref, exc)
        self._recorder.system(ref, "error", message)
        # a config the plugin cannot take will not improve by waiting: no retries
        delay = (
            None if isinstance(exc, PluginConfigError) else self._policy.delay_after(slot.attempts)
        )
        if delay is None:
            slot.failing = message
            self._recorder.disable(ref)
            self._recorder.system(
                ref, "error", f"plugin disabled after {slot.attempts} failed load attempt(s)"
            )
            return None
        self._recorder.system(
            ref,
            "error",
            f"plugin failed to load (attempt {slot.attempts}); retrying in {delay:g} s",
        )
        return delay

    async def _retry_later(self, slot: ConfigSlot, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._is_current(slot):
            await self.attempt(slot)

    async def unload(
        self, slot: ConfigSlot, flush: Callable[[SandboxedInstance], Awaitable[None]]
    ) -> None:
        """Cancel a pending retry, flush the export buffer, then `teardown_plugin`."""
        if slot.retry is not None:
            slot.retry.cancel()
        instance, slot.instance = slot.instance, None
        if instance is None:
            return
        try:
            await asyncio.wait_for(self._teardown(instance, flush), TEARDOWN_TIMEOUT_SECONDS)
        except Exception as exc:
            await self._executor.run(lambda: instance.team.unload(instance))
            message = f"plugin failed to unload: {type(exc).__name__}: {exc}"
            await self._executor.run(lambda: self._recorder.system(slot.ref, "error", message))
        else:
            await self._executor.run(
                lambda: self._recorder.system(slot.ref, "info", "plugin unloaded")
            )

    async def _teardown(
        self, instance: SandboxedInstance, flush: Callable[[SandboxedInstance], Awaitable[None]]
    ) -> None:
        await flush(instance)
        if instance.has("teardown_plugin") and instance.current:
            await self._executor.run(lambda: instance.call("teardown_plugin"))
        await self._executor.run(lambda: instance.team.unload(instance))

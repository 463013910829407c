"""The `process_event` chain of one team (spec 3.3, ingestion 1.4).

Plugins run in their config order, each on the previous one's output. `None` drops the
event and later plugins do not run; an exception is recorded against the plugin config
(with the event as it was passed in) and the chain goes on with the last good event,
including changes the plugin made in place; a changed `team_id` is put back and counts
as a failure. The event then carries `$plugins_succeeded`, `$plugins_failed` and
`$plugins_deferred` (plugins with `on_event`), each a list of `<name> (<config id>)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from plugin_runtime.error_recording import ErrorRecorder
from plugin_runtime.errors import IllegalOperationError
from plugin_runtime.export_buffer import ExportBuffer
from plugin_runtime.types import PluginConfigRef


class ChainMember(Protocol):
    """A loaded plugin config as the chain sees it (in the sandbox and in the worker)."""

    ref: PluginConfigRef
    export_buffer: ExportBuffer | None

    def has(self, function: str) -> bool: ...

    def call(
        self,
        function: str,
        *args: Any,
        event: Any = ...,
        expected: tuple[type[BaseException], ...] = ...,
    ) -> Any: ...


_PLAIN = (dict, list, str, int, float, bool, type(None))
MARKERS = ("$plugins_succeeded", "$plugins_failed", "$plugins_deferred")


def runs_in_chain(instance: ChainMember) -> bool:
    """Whether the plugin takes part in the chain (runs, or is deferred to on_event)."""
    return instance.has("process_event") or _deferred(instance)


def _deferred(instance: ChainMember) -> bool:
    return (
        instance.has("on_event")
        or instance.has("on_snapshot")
        or instance.export_buffer is not None
    )


@dataclass(frozen=True, slots=True)
class _Step:
    """What the chain needs of one plugin, worked out once per batch."""

    instance: ChainMember
    label: str
    processes: bool
    deferred: bool


def _steps(instances: Sequence[ChainMember]) -> list[_Step]:
    return [
        _Step(i, i.ref.label, i.has("process_event"), _deferred(i))
        for i in instances
        if i.has("process_event") or _deferred(i)
    ]


def run_chain(
    instances: Sequence[ChainMember], event: dict[str, Any], recorder: ErrorRecorder
) -> dict[str, Any] | None:
    """The event after every plugin of the team, or None when one dropped it. Blocks."""
    return _run(_steps(instances), event, recorder)


def _run(
    steps: list[_Step], event: dict[str, Any], recorder: ErrorRecorder
) -> dict[str, Any] | None:
    team_id = event.get("team_id")
    current = event
    succeeded: list[str] = []
    failed: list[str] = []
    deferred: list[str] = []
    for step in steps:
        if step.processes:
            try:
                result = step.instance.call("process_event", current, event=current)
            except Exception:
                failed.append(step.label)  # recorded by the call stack
            else:
                # exact types only: a value of the plugin's own class never gets its
                # methods run here (results are plain data in the sandbox already)
                if type(result) in _PLAIN and not result:
                    return None  # None, {} or another falsy value drops the event
                if _accepted(step.instance, result, team_id, recorder):
                    succeeded.append(step.label)
                else:
                    failed.append(step.label)
                if type(result) is dict:
                    current = result
        if step.deferred:
            deferred.append(step.label)
    if succeeded or failed or deferred:
        properties = current.get("properties")
        if type(properties) is not dict:
            properties = current["properties"] = {}
        properties["$plugins_succeeded"] = succeeded
        properties["$plugins_failed"] = failed
        properties["$plugins_deferred"] = deferred
    return current


def _accepted(instance: ChainMember, result: Any, team_id: Any, recorder: ErrorRecorder) -> bool:
    if type(result) is not dict:
        error = IllegalOperationError(
            f"process_event must return the event dict or None, not {type(result).__name__}"
        )
        recorder.record(instance.ref, error)
        return False
    changed = result.get("team_id")
    if type(changed) is not type(team_id) or changed != team_id:
        result["team_id"] = team_id
        shown = (
            changed
            if type(changed) in (int, str, float, bool, type(None))
            else type(changed).__name__
        )
        recorder.record(
            instance.ref,
            IllegalOperationError(
                f"process_event may not change event.team_id (from {team_id!r} to {shown!r})"
            ),
            result,
        )
        return False
    return True


def run_chain_batch(
    instances: Sequence[ChainMember], events: Sequence[dict[str, Any]], recorder: ErrorRecorder
) -> list[dict[str, Any]]:
    """The kept events of a batch, in order. Blocks (runs on a plugin thread)."""
    steps = _steps(instances)
    kept = []
    for event in events:
        result = _run(steps, event, recorder)
        if result is not None:
            kept.append(result)
    return kept

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


def run_chain(
    instances: Sequence[ChainMember], event: dict[str, Any], recorder: ErrorRecorder
) -> dict[str, Any] | None:
    """The event after every plugin of the team, or None when one dropped it. Blocks."""
    team_id = event.get("team_id")
    current = event
    succeeded: list[str] = []
    failed: list[str] = []
    deferred: list[str] = []
    for instance in instances:
        if instance.has("process_event"):
            label = instance.ref.label
            try:
                result = instance.call("process_event", current, event=current)
            except Exception:
                failed.append(label)  # recorded by the call stack
            else:
                if not result:
                    return None
                if _accepted(instance, result, team_id, recorder):
                    succeeded.append(label)
                else:
                    failed.append(label)
                if isinstance(result, dict):
                    current = result
        if _deferred(instance):
            deferred.append(instance.ref.label)
    if succeeded or failed or deferred:
        properties = current.get("properties")
        current["properties"] = {
            **(properties if isinstance(properties, dict) else {}),
            "$plugins_succeeded": succeeded,
            "$plugins_failed": failed,
            "$plugins_deferred": deferred,
        }
    return current


def _accepted(instance: ChainMember, result: Any, team_id: Any, recorder: ErrorRecorder) -> bool:
    if not isinstance(result, dict):
        error = IllegalOperationError(
            f"process_event must return the event dict or None, not {type(result).__name__}"
        )
        recorder.record(instance.ref, error)
        return False
    if result.get("team_id") != team_id:
        changed = result.get("team_id")
        result["team_id"] = team_id
        recorder.record(
            instance.ref,
            IllegalOperationError(
                f"process_event may not change event.team_id (from {team_id!r} to {changed!r})"
            ),
            result,
        )
        return False
    return True


def run_chain_batch(
    instances: Sequence[ChainMember], events: Sequence[dict[str, Any]], recorder: ErrorRecorder
) -> list[dict[str, Any]]:
    """The kept events of a batch, in order. Blocks (runs on a plugin thread)."""
    kept = []
    for event in events:
        result = run_chain(instances, event, recorder)
        if result is not None:
            kept.append(result)
    return kept

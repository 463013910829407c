"""Which plugin functions a plugin defines, in the original's names (they are data: the
UI and the database hold `processEvent`, `runEveryMinute`, ...).

`detect_capabilities` reads the module's syntax without running it, so a plugin's
capabilities are known at install time; a loaded instance reports the same from its
compiled namespace.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from plugin_runtime.errors import PluginLoadError

# python name -> the original's name, in the original's reporting order
METHODS = {
    "setup_plugin": "setupPlugin",
    "teardown_plugin": "teardownPlugin",
    "export_events": "exportEvents",
    "on_event": "onEvent",
    "on_snapshot": "onSnapshot",
    "process_event": "processEvent",
}
SCHEDULED = {
    "run_every_minute": "runEveryMinute",
    "run_every_hour": "runEveryHour",
    "run_every_day": "runEveryDay",
}
EXPORT_RETRY_JOB = "exportEventsWithRetry"
# an export plugin always has these: the runtime feeds its buffer and flushes it on teardown
_EXPORT_IMPLIED = ("setup_plugin", "teardown_plugin", "export_events", "on_event")


@dataclass(frozen=True)
class Capabilities:
    methods: tuple[str, ...]
    scheduled_tasks: tuple[str, ...]
    jobs: tuple[str, ...]

    def as_json(self) -> dict[str, list[str]]:
        return {
            "methods": list(self.methods),
            "scheduled_tasks": list(self.scheduled_tasks),
            "jobs": list(self.jobs),
        }


def capabilities_of(functions: Iterable[str], jobs: Iterable[str]) -> Capabilities:
    """Capabilities from the names of the defined plugin functions and jobs."""
    names = set(functions)
    if "process_event_batch" in names:
        names.add("process_event")
    if "export_events" in names:
        names.update(_EXPORT_IMPLIED)
    job_names = list(jobs)
    if "export_events" in names and EXPORT_RETRY_JOB not in job_names:
        job_names.append(EXPORT_RETRY_JOB)
    return Capabilities(
        methods=tuple(js for py, js in METHODS.items() if py in names),
        scheduled_tasks=tuple(js for py, js in SCHEDULED.items() if py in names),
        jobs=tuple(job_names),
    )


def detect_capabilities(files: Mapping[str, str], main: str, plugin_name: str) -> Capabilities:
    """Capabilities from the main module's top-level `def`s and its `jobs` dict literal.

    Raises PluginLoadError when the module is not valid Python.
    """
    try:
        tree = ast.parse(files[main], filename=f"{plugin_name}/{main}")
    except SyntaxError as exc:
        raise PluginLoadError(
            f"plugin {plugin_name!r}: {main} line {exc.lineno}: {exc.msg}"
        ) from None
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    return capabilities_of(functions, _job_names(tree))


def _job_names(tree: ast.Module) -> list[str]:
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "jobs" for t in node.targets)
            and isinstance(node.value, ast.Dict)
        ):
            keys: list[Any] = [k.value for k in node.value.keys if isinstance(k, ast.Constant)]
            return [str(k) for k in keys]
    return []


def python_name(capability: str) -> str:
    """`processEvent` or `process_event` -> `process_event`."""
    for table in (METHODS, SCHEDULED):
        for py, js in table.items():
            if capability in (py, js):
                return py
    return capability

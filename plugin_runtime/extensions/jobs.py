"""`meta.jobs`: `meta.jobs.<name>(payload).run_now() / .run_in(...) / .run_at(datetime)`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from plugin_runtime.backends import JobQueue
from plugin_runtime.errors import IllegalOperationError, UnknownJobError
from plugin_runtime.types import PluginConfigRef

# `run_in(n, unit)` units of the original, for ported plugins; a month is 30 weeks there
# (a quirk kept for compatibility, spec R38)
_UNITS: dict[str, timedelta] = {
    "milliseconds": timedelta(milliseconds=1),
    "seconds": timedelta(seconds=1),
    "minutes": timedelta(minutes=1),
    "hours": timedelta(hours=1),
    "days": timedelta(days=1),
    "weeks": timedelta(weeks=1),
    "months": timedelta(weeks=30),
    "quarters": timedelta(weeks=13),
    "years": timedelta(days=365),
}


def _unit(name: str) -> timedelta:
    plural = name if name.endswith("s") else name + "s"
    if plural not in _UNITS:
        raise IllegalOperationError(
            f"run_in: unknown unit {name!r}; use one of {', '.join(_UNITS)}"
        )
    return _UNITS[plural]


class JobRun:
    """One job ready to be enqueued; nothing happens until a `run_*` method is called."""

    __slots__ = ("_name", "_payload", "_queue", "_ref")

    def __init__(self, queue: JobQueue, ref: PluginConfigRef, name: str, payload: Any) -> None:
        self._queue, self._ref, self._name, self._payload = queue, ref, name, payload

    def run_now(self) -> None:
        self.run_at(datetime.now(UTC))

    def run_in(
        self,
        duration: float | None = None,
        unit: str | None = None,
        *,
        seconds: float = 0,
        minutes: float = 0,
        hours: float = 0,
        days: float = 0,
    ) -> None:
        """Enqueue after a delay: `run_in(seconds=30)` or the original's `run_in(30, "seconds")`."""
        delay = timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days)
        if duration is not None:
            delay += _unit(unit or "seconds") * duration
        self.run_at(datetime.now(UTC) + delay)

    def run_at(self, when: datetime) -> None:
        if not isinstance(when, datetime):
            raise IllegalOperationError(f"run_at takes a datetime, got {when!r}")
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        self._queue.enqueue(
            plugin_config_id=self._ref.plugin_config_id,
            team_id=self._ref.team_id,
            name=self._name,
            payload=self._payload,
            run_at=when,
        )


class JobStarter:
    """`meta.jobs.<name>`: calling it with a payload gives the `run_*` methods."""

    __slots__ = ("_name", "_queue", "_ref")

    def __init__(self, queue: JobQueue, ref: PluginConfigRef, name: str) -> None:
        self._queue, self._ref, self._name = queue, ref, name

    def __call__(self, payload: Any = None) -> JobRun:
        return JobRun(self._queue, self._ref, self._name, payload)


class Jobs:
    """What `meta.jobs` is: one attribute per job the plugin defines."""

    __slots__ = ("_names", "_queue", "_ref")

    def __init__(self, queue: JobQueue, ref: PluginConfigRef, names: frozenset[str]) -> None:
        self._queue, self._ref, self._names = queue, ref, names

    def __getattr__(self, name: str) -> JobStarter:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._names:
            known = ", ".join(sorted(self._names)) or "none"
            raise UnknownJobError(
                f"job {name!r} is not defined by plugin {self._ref.plugin_name!r}; "
                f"add it to the module-level `jobs` dict (defined jobs: {known})"
            )
        return JobStarter(self._queue, self._ref, name)

    def __getitem__(self, name: str) -> JobStarter:
        # job names are data (they may hold spaces), so item access reaches every job
        return self.__getattr__(name)

    def __dir__(self) -> list[str]:
        return sorted(self._names)

"""The worker's view of plugin code in sandbox processes: one `SandboxTeam` per team (its
process and the backend server scoped to it) and a `SandboxedInstance` per loaded config.

Mapping: one sandbox process per team with loaded configs, so a team's plugins share a
process with each other and with no one else; a crash or kill costs that team alone.
Everything here blocks; the runtime calls it from plugin threads.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from plugin_runtime.backends import RuntimeBackends
from plugin_runtime.capabilities import Capabilities, capabilities_of
from plugin_runtime.errors import PluginLoadError, RetryError
from plugin_runtime.export_buffer import BufferSettings, ExportBuffer
from plugin_runtime.extensions.metrics import METRIC_KINDS, MetricValues
from plugin_runtime.sandbox import protocol
from plugin_runtime.sandbox.limits import Limits
from plugin_runtime.sandbox.serving import BackendServer, Member
from plugin_runtime.sandbox.supervisor import SandboxCrashed, SandboxProcess
from plugin_runtime.types import PluginConfigRecord, PluginConfigRef

_handles = itertools.count(1)

MIB = 1024 * 1024
# what a sandbox may hold past twice the per-call bound before it is replaced: the
# interpreter, the runtime and the plugins' code take about 30 MiB of it
RECYCLE_BASE_BYTES = 96 * MIB
log = logging.getLogger(__name__)


DEFAULT_MAX_PROCESSES = 32  # live sandboxes per worker: about 22 MiB each, 700 MiB in all


class SandboxPool:
    """At most `capacity` live sandbox processes. Starting one more first ends the one
    used least recently (not one in the middle of a request); its team's configs are
    loaded and set up again when next needed, as after a crash."""

    def __init__(self, capacity: int = DEFAULT_MAX_PROCESSES) -> None:
        if capacity < 1:
            raise ValueError("a sandbox pool needs room for at least one process")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._live: OrderedDict[int, SandboxTeam] = OrderedDict()

    def using(self, team: SandboxTeam) -> None:
        """`team` is about to make a request: mark it used, and make room if it must start."""
        evicted: list[SandboxTeam] = []
        with self._lock:
            self._live.pop(team.team_id, None)
            if team.process.pid is None:
                running = [t for t in self._live.values() if t.process.pid is not None]
                idle = [t for t in running if not t.process.busy]  # oldest first
                while len(running) - len(evicted) >= self.capacity and idle:
                    victim = idle.pop(0)
                    del self._live[victim.team_id]
                    evicted.append(victim)
            self._live[team.team_id] = team
        for victim in evicted:
            log.info(
                "sandbox of team %s ended to make room for team %s", victim.team_id, team.team_id
            )
            victim.process.close()

    def forget(self, team: SandboxTeam) -> None:
        with self._lock:
            self._live.pop(team.team_id, None)

    @property
    def live(self) -> int:
        with self._lock:
            return sum(1 for t in self._live.values() if t.process.pid is not None)


class SandboxTeam:
    def __init__(
        self,
        team_id: int,
        backends: RuntimeBackends,
        *,
        limits: Limits,
        pool: SandboxPool | None = None,
    ) -> None:
        self.team_id = team_id
        self._pool = pool
        self.process = SandboxProcess(team_id, limits=limits, geoip=backends.geoip is not None)
        self.members: dict[int, Member] = {}
        self._configs: dict[int, int] = {}  # load handle -> plugin config id
        # the budgets' and metrics' meter, after each request:
        # {config id: (seconds, failed calls, calls)}
        self.on_spent: Callable[[dict[int, tuple[float, int, int]]], None] | None = None
        self._server = BackendServer(
            backends, team_id, lambda: self.members, self.process.remaining_seconds, limits
        )
        self._storage = backends.storage
        self.recycle_bytes = RECYCLE_BASE_BYTES + 2 * limits.memory_bytes

    def request(self, message: dict[str, Any], *, hold_writes: bool = False) -> Any:
        """One request to the team's process; storage writes of its calls are stored
        together when it ends (with `hold_writes`, by the storage's next `write_held`).
        Raises the plugin's error or SandboxCrashed.

        A process that has come to hold more than `recycle_bytes` (plugin state kept in
        globals across calls) is ended after the request; the next one starts fresh and
        the team's configs are loaded and set up again."""
        if self._pool is not None:
            self._pool.using(self)
        started, culprit = time.monotonic(), None
        try:
            with self._storage.batch(hold=hold_writes):
                return self.process.request(message, self._server)
        except SandboxCrashed as crash:
            culprit = crash.plugin_config_id
            raise
        finally:
            if self.on_spent is not None:
                self._charge(message, time.monotonic() - started, culprit)
            if self.process.rss() > self.recycle_bytes:
                log.warning(
                    "sandbox of team %s holds %d MiB; starting a fresh one",
                    self.team_id,
                    self.process.rss() // MIB,
                    extra={"team_id": self.team_id},
                )
                self.process.close()

    def _charge(self, message: dict[str, Any], took: float, culprit: int | None) -> None:
        """Tell the budgets what the request cost each of its configs: the worker's own
        measure of the whole, split as the sandbox says it went (a sandbox's claim can
        only move cost between its team's configs, never make it smaller)."""
        assert self.on_spent is not None
        handles = message.get("ids") if message.get("op") in ("chain", "deliver") else None
        if handles is None:
            handles = [message["id"]] if message.get("op") == "call" else []
        configs = {self._configs[h] for h in handles if h in self._configs}
        if not configs:
            return
        events = message.get("events")
        calls = len(events) if isinstance(events, list) else 1  # per config
        if culprit in configs:
            self.on_spent({culprit: (took, 1, calls)})  # it killed the request: all of it
            return
        claimed = {c: v for c, v in self.process.spent.items() if c in configs}
        total = sum(seconds for seconds, _ in claimed.values())
        if total > 0:
            self.on_spent({c: (took * s / total, f, calls) for c, (s, f) in claimed.items()})
        else:
            self.on_spent({c: (took / len(configs), 0, calls) for c in configs})

    def load(self, record: PluginConfigRecord) -> SandboxedInstance:
        """Compile the config in the sandbox and run its module body (not setup_plugin)."""
        ref = PluginConfigRef.of(record)
        # each load its own handle: during a reload the old and the new version of a
        # config live side by side until the old one is torn down
        handle = next(_handles)
        # in scope while its module body runs, which may already log or use storage
        loading = self.members[record.id] = Member(ref, MetricValues({}), frozenset())
        try:
            loaded = self.request(
                {"op": "load", "config": protocol.record_to_plain(record), "handle": handle}
            )
        except BaseException:
            if self.members.get(record.id) is loading:
                self.members.pop(record.id, None)
            raise
        instance = SandboxedInstance(record, self, loaded, handle)
        self.members[record.id] = instance.member
        self._configs[handle] = record.id
        return instance

    def unload(self, instance: SandboxedInstance) -> None:
        """Forget this load of the config (the process stays for the team's next load);
        a newer load of the same config stays."""
        if self.members.get(instance.ref.plugin_config_id) is instance.member:
            self.members.pop(instance.ref.plugin_config_id, None)
        self._configs.pop(instance.handle, None)
        if self.process.pid is not None and instance.current:
            self.request({"op": "unload", "id": instance.handle})

    def chain(
        self, instances: Sequence[SandboxedInstance], events: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        kept = self.request(
            {"op": "chain", "ids": _ids(instances), "events": events}, hold_writes=True
        )
        if type(kept) is not list or any(type(e) is not dict for e in kept):
            self.process.close()  # a sandbox outside the contract is not asked again
            raise protocol.ProtocolError("a chain answer that is not a list of events")
        for event in kept:
            # the team's events stay the team's, whatever the sandbox says
            event["team_id"] = self.team_id
        return kept

    def deliver(self, instances: Sequence[SandboxedInstance], events: list[dict[str, Any]]) -> None:
        self.request({"op": "deliver", "ids": _ids(instances), "events": events}, hold_writes=True)

    def close(self) -> None:
        self.members.clear()
        self.process.close()
        if self._pool is not None:
            self._pool.forget(self)


def _ids(instances: Sequence[SandboxedInstance]) -> list[int]:
    return [i.handle for i in instances]


_EXPECTED_NAMES: dict[tuple[type[BaseException], ...], str | None] = {
    (): None,
    (RetryError,): "retry",
    (Exception,): "all",
}


class SandboxedInstance:
    """A plugin config loaded in its team's sandbox: what it defines, its export buffer
    and metric values (kept in the worker), and `call`, which runs a function there."""

    def __init__(
        self, record: PluginConfigRecord, team: SandboxTeam, loaded: Any, handle: int
    ) -> None:
        self.record = record
        self.ref = PluginConfigRef.of(record)
        self.team = team
        self.handle = handle  # which load of the config, in the sandbox
        self.generation = team.process.generation
        functions, jobs, kinds = _loaded(record, loaded)
        self.functions = functions
        self.jobs = jobs
        self.capabilities: Capabilities = capabilities_of(functions, jobs)
        self.metrics = MetricValues(kinds)
        self.member = Member(self.ref, self.metrics, self.jobs)
        self.export_buffer: ExportBuffer | None = None
        if "export_events" in functions:
            self.export_buffer = ExportBuffer(BufferSettings.from_config(record.config))

    @property
    def current(self) -> bool:
        """False once the process it was loaded in has ended."""
        return self.generation == self.team.process.generation and self.team.process.pid is not None

    def has(self, function: str) -> bool:
        return function in self.functions

    def call(
        self,
        function: str,
        *args: Any,
        event: Any = None,
        expected: tuple[type[BaseException], ...] = (),
    ) -> Any:
        """Run `function(*args, meta)` in the sandbox; raises what the plugin raised (after
        the sandbox recorded it, unless it is `expected`)."""
        return self.team.request(
            {
                "op": "call",
                "id": self.handle,
                "function": function,
                "args": list(args),
                "expected": _EXPECTED_NAMES[expected],
            }
        )

    def call_job(
        self, name: str, payload: Any, *, expected: tuple[type[BaseException], ...] = ()
    ) -> Any:
        return self.team.request(
            {
                "op": "call",
                "id": self.handle,
                "job": name,
                "args": [payload],
                "expected": _EXPECTED_NAMES[expected],
            }
        )

    def global_(self) -> Any:
        return self.team.request({"op": "global", "id": self.handle})


def _loaded(
    record: PluginConfigRecord, loaded: Any
) -> tuple[frozenset[str], frozenset[str], dict[str, str]]:
    try:
        functions = frozenset(str(f) for f in loaded["functions"])
        jobs = frozenset(str(j) for j in loaded["jobs"])
        kinds = {str(k): str(v) for k, v in loaded["metrics"].items() if v in METRIC_KINDS}
    except (TypeError, KeyError, AttributeError):
        raise PluginLoadError(
            f"plugin {record.plugin.name!r}: the sandbox answered no load"
        ) from None
    return functions, jobs, kinds

"""The sandbox process: runs the plugin configs of one team for the worker.

Started by `supervisor.py` as `python -m plugin_runtime.sandbox.child SETTINGS` with an
empty environment and two inherited descriptors (the channel and the progress page). It
imports everything it will need, confines itself (`confinement.py`), says `ready` with
the layers in force, then answers the worker's requests (`protocol.py`) one at a time.
Plugin code runs here under the same RestrictedPython compiler, guards and per-call
bounds as everywhere; `meta` reaches the worker only through `remote.py`.
"""

from __future__ import annotations

import _strptime  # noqa: F401  (imported lazily by strptime; no file can be opened later)
import encodings.idna
import encodings.latin_1
import encodings.utf_16  # noqa: F401
import gc
import hashlib
import mmap
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import orjson

from plugin_runtime.calls import PluginCall, Proceed, RecordErrors, Spending, call_stack
from plugin_runtime.chain import run_chain_batch
from plugin_runtime.delivery import copy_events, deliver
from plugin_runtime.error_recording import ErrorRecorder
from plugin_runtime.errors import RetryError, UnknownPluginConfigError
from plugin_runtime.instance import PluginInstance, build_instance
from plugin_runtime.sandbox import call_monitor, confinement, protocol
from plugin_runtime.sandbox.limits import Limits, call_bounded
from plugin_runtime.sandbox.remote import Channel, RemoteMetricValues, remote_backends

GC_GEN0_THRESHOLD = 20_000  # allocations between young collections; a batch makes many
CPU_GRACE_SECONDS = 5.0  # CPU a request may use beyond its plugin calls' time limits
_EXPECTED: dict[Any, tuple[type[BaseException], ...]] = {
    None: (),
    "retry": (RetryError,),
    "all": (Exception,),
}


class Progress:
    """Middleware: writes the start time and config of the running call to the progress
    page, which the worker's watchdog reads."""

    def __init__(self, page: mmap.mmap) -> None:
        # two doubles, written in place: (started, plugin config id)
        self._slots = memoryview(page).cast("d")

    def mark(self, plugin_config_id: int) -> None:
        self._slots[1] = plugin_config_id
        self._slots[0] = time.monotonic()

    def clear(self) -> None:
        self._slots[0] = 0.0

    def __call__(self, call: PluginCall, proceed: Proceed) -> Any:
        slots = self._slots
        slots[1] = call.ref.plugin_config_id
        slots[0] = time.monotonic()
        try:
            return proceed(call)
        finally:
            slots[0] = 0.0


def plain_invoke(limits: Limits) -> Proceed:
    """The innermost step: the function under the call's bounds, its result turned into
    plain data inside those bounds. What a plugin hands back is then a fresh dict or list
    of exact types, and nothing the runtime does with it later (comparing `team_id`,
    reading properties, encoding) can run the plugin's own methods."""

    def invoke(call: PluginCall) -> Any:
        return call_bounded(_plain_result, call.fn, *call.args, limits=limits)

    return invoke


# refuses (TypeError) anything but exact JSON types: subclasses, dates, dataclasses alike
_EXACT_JSON = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def _plain_result(fn: Callable[..., Any], *args: Any) -> Any:
    result = fn(*args)
    if result is None or type(result) in (str, int, float, bool):
        return result
    try:
        # the common case, checked in one pass of C: already exact plain data
        orjson.dumps(result, option=_EXACT_JSON)
    except TypeError:
        return _rendered(result)
    return result


class TeamSandbox:
    """The instances of one team in this process, and one handler per request op."""

    def __init__(self, channel: Channel, page: mmap.mmap, limits: Limits, geoip: bool) -> None:
        self.channel = channel
        self.limits = limits
        self.backends = remote_backends(channel, geoip=geoip, limits=limits)
        self.recorder = ErrorRecorder(self.backends.errors, self.backends.logs)
        self.progress = Progress(page)
        self.spending = Spending()
        self.proceed = call_stack(
            [self.spending, self.progress, RecordErrors(self.recorder)], plain_invoke(limits)
        )
        # by load handle, not config id: a reload runs the new version beside the old
        self.instances: dict[int, PluginInstance] = {}
        self.ops: dict[str, Callable[[dict[str, Any]], Any]] = {
            "load": self.load,
            "unload": self.unload,
            "call": self.call,
            "chain": self.chain,
            "deliver": self.deliver,
            "global": self.global_,
        }

    def _instance(self, handle: Any) -> PluginInstance:
        instance = self.instances.get(handle)
        if instance is None:
            raise UnknownPluginConfigError(f"plugin config load {handle} is not loaded")
        return instance

    def load(self, message: dict[str, Any]) -> dict[str, Any]:
        record = protocol.record_from_plain(message["config"])
        self.progress.mark(record.id)
        try:
            instance = build_instance(
                record,
                self.backends,
                limits=self.limits,
                proceed=self.proceed,
                metric_values=lambda kinds: RemoteMetricValues(kinds, self.channel, record.id),
            )
        finally:
            self.progress.clear()
        self.instances[int(message["handle"])] = instance
        return {
            "functions": sorted(instance.functions),
            "jobs": sorted(instance.jobs),
            "metrics": instance.metrics.kinds,
        }

    def unload(self, message: dict[str, Any]) -> None:
        self.instances.pop(message["id"], None)

    def call(self, message: dict[str, Any]) -> Any:
        instance = self._instance(message["id"])
        expected = _EXPECTED[message.get("expected")]
        job = message.get("job")
        if job is not None:
            return instance.call_job(job, message["args"][0], expected=expected)
        return instance.call(message["function"], *message["args"], expected=expected)

    def chain(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        instances = [self._instance(i) for i in message["ids"]]
        return run_chain_batch(instances, message["events"], self.recorder)

    def deliver(self, message: dict[str, Any]) -> None:
        handles, events = message["ids"], message["events"]
        for position, handle in enumerate(handles):
            # each plugin its own events: copies for all but the last, which takes the
            # request's own (decoded for this request, held by nothing else)
            own = events if position == len(handles) - 1 else copy_events(events)
            deliver(self._instance(handle), own)

    def global_(self, message: dict[str, Any]) -> Any:
        return self._instance(message["id"]).meta.global_

    def handle(self, message: dict[str, Any]) -> Any:
        confinement.set_cpu_budget(
            self.limits.timeout_seconds * _planned_calls(message) + CPU_GRACE_SECONDS
        )
        return self.ops[message["op"]](message)


def _planned_calls(message: dict[str, Any]) -> int:
    events = message.get("events")
    ids = message.get("ids")
    if isinstance(events, list) and isinstance(ids, list):
        return max(1, len(events) * len(ids))
    return 2  # a load: the module body, then setup_plugin in its own request


def _lenient(value: Any) -> Any:
    # a value that is not JSON data: what plugin objects render as, so one odd value does
    # not lose a whole batch (str() runs plugin code here, under the worker's watchdog)
    try:
        return protocol.plain_default(value)
    except TypeError:
        return str(value)


def _rendered(value: Any) -> Any:
    """`value` as plain data, plugin objects rendered as text."""
    return orjson.loads(orjson.dumps(value, default=_lenient, option=orjson.OPT_NON_STR_KEYS))


def _answer(channel: Channel, value: Any, spent: dict[str, list[float]]) -> None:
    try:
        channel.send({"done": value, "spent": spent})
    except TypeError:
        channel.send({"done": _rendered(value), "spent": spent})


def _prepare() -> None:
    """Everything that would open a file later, done while files can still be opened."""
    for name in ("md5", "sha1", "sha256", "sha512", "sha3_256", "blake2b"):
        hashlib.new(name, b"")
    time.strptime("2024", "%Y")
    call_monitor.current_rss()
    call_monitor.start()


def serve(team: TeamSandbox) -> None:
    channel = team.channel
    receiver = channel.receiver
    while True:
        try:
            message = receiver.receive()
        except EOFError:
            return
        try:
            result = team.handle(message)
        except BaseException as exc:  # the plugin's, or ours: either way the request failed
            stack = "".join(traceback.format_exception(exc))
            channel.send(
                {"failed": protocol.error_fields(exc, stack), "spent": team.spending.take()}
            )
        else:
            _answer(channel, result, team.spending.take())


def main(argv: list[str]) -> None:
    settings = orjson.loads(argv[1])
    sock = socket.socket(fileno=settings["channel_fd"])
    page = mmap.mmap(settings["progress_fd"], protocol.PROGRESS_BYTES)
    os.close(settings["progress_fd"])  # the mapping keeps a descriptor of its own
    limits = Limits(**settings["limits"])
    team = TeamSandbox(Channel(sock), page, limits, settings["geoip"])
    _prepare()
    # the runtime's modules live as long as the process: out of every collection
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
    layers = confinement.confine(memory_bytes=limits.memory_bytes)
    team.channel.send({"ready": {"layers": layers}})
    serve(team)


if __name__ == "__main__":
    main(sys.argv)

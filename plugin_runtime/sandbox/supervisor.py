"""The worker's side of one sandbox process: start it, drive its requests, watch it, kill it.

A `SandboxProcess` belongs to one team. Requests are made from plugin threads, one at a
time per process; while a request runs, the same thread serves the backend calls the
sandbox sends (`serve`), so a storage batch scope opened around the request holds for
them too. The watchdog needs no thread: between messages the requesting thread polls
the channel every `POLL_SECONDS` and reads the progress page, and kills the process when
its current call (or the sandbox's own work between calls) has run `GRACE_SECONDS` past
the call time limit. A process that died, was killed or broke the protocol is gone for
good: the request raises `SandboxCrashed` naming the plugin config that was running, and
the next request starts a fresh process (`generation` counts them), whose configs the
runtime loads again.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import mmap
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

import orjson

from plugin_runtime.errors import PluginError
from plugin_runtime.sandbox import protocol
from plugin_runtime.sandbox.limits import Limits

log = logging.getLogger(__name__)

POLL_SECONDS = 0.05  # how often a waiting request checks the progress page
GRACE_SECONDS = 1.0  # past a call's time limit before its process is killed
START_TIMEOUT_SECONDS = 20.0  # a fresh process imports the runtime, then says ready
STDERR_TAIL_BYTES = 2_000  # of a dead process's stderr, kept for the reason


class Serve(Protocol):
    """What answers a sandbox's backend calls (`serving.BackendServer`)."""

    def __call__(self, name: str, args: list[Any]) -> Any: ...

    def failed(self, name: str, args: list[Any], exc: Exception) -> None:
        """A call in `protocol.NO_REPLY` failed: nobody waits for its answer."""
        ...


class SandboxCrashed(PluginError):
    """The sandbox process died or was killed during a request. `plugin_config_id` is the
    config whose call was running (None when no plugin call was)."""

    def __init__(self, message: str, plugin_config_id: int | None) -> None:
        super().__init__(message)
        self.plugin_config_id = plugin_config_id


class _Overran(Exception):
    pass


def _spent(claim: Any) -> dict[int, tuple[float, int]]:
    """The sandbox's `{config id: [seconds, failures]}`, or nothing if it is not that."""
    if type(claim) is not dict:
        return {}
    out: dict[int, tuple[float, int]] = {}
    for key, value in list(claim.items())[:1000]:
        if type(key) is not str or not key.isdigit() or type(value) is not list:
            return {}
        if len(value) != 2 or not all(type(v) in (int, float) for v in value):
            return {}
        seconds, failures = float(value[0]), int(value[1])
        if not (0 <= seconds < 1e6) or failures < 0:
            return {}
        out[int(key)] = (seconds, failures)
    return out


class SandboxProcess:
    def __init__(self, team_id: int, *, limits: Limits, geoip: bool) -> None:
        self.team_id = team_id
        self.limits = limits
        self.generation = 0
        self.layers: list[str] = []
        self._geoip = geoip
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._page: mmap.mmap | None = None
        self._receiver: protocol.Receiver | None = None
        self._poller: select.poll | None = None
        self._last_heard = 0.0
        # the sandbox's own split of the last request's time between configs; the sandbox
        # runs plugin code, so this is a claim (checked for shape, never trusted as a total)
        self.spent: dict[int, tuple[float, int]] = {}
        self._answer_due = False  # a request was sent and its answer not read yet

    @property
    def busy(self) -> bool:
        """Whether a request is running (or waiting to)."""
        return self._lock.locked()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def call_started(self) -> tuple[float, int]:
        """(monotonic start of the running plugin call or 0, its plugin config id)."""
        if self._page is None:
            return 0.0, 0
        started, config_id = protocol.PROGRESS.unpack_from(self._page, 0)
        return float(started), int(config_id) if config_id == config_id else 0

    def rss(self) -> int:
        """The process's resident memory in bytes (0 when it is not running)."""
        if self._proc is None:
            return 0
        try:
            with open(f"/proc/{self._proc.pid}/statm", "rb") as statm:
                return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return 0

    def remaining_seconds(self) -> float:
        """What is left of the running call's time limit (the whole limit between calls)."""
        started, _ = self.call_started()
        if not started:
            return self.limits.timeout_seconds
        return max(0.0, started + self.limits.timeout_seconds - time.monotonic())

    # -- requests ------------------------------------------------------------------------

    def request(self, message: dict[str, Any], serve: Serve) -> Any:
        """Send one request and serve the sandbox's backend calls until it answers.

        Returns the answer; raises the plugin's error (`protocol.error_from`) when the
        request failed, SandboxCrashed when the process died or was killed.
        """
        with self._lock:
            if self._proc is None:
                self._start()
            with _colocated(self._proc.pid if self._proc is not None else None):
                try:
                    return self._exchange(message, serve)
                except (EOFError, OSError, protocol.ProtocolError, _Overran) as exc:
                    raise self._crashed(exc) from None
                except BaseException:
                    if self._answer_due:
                        # the worker stopped serving before the answer came: what the
                        # sandbox sends next would be taken for the next request's
                        # answer, so this process ends, and the next request starts one
                        self._end(at_once=True)
                    raise

    def _exchange(self, message: dict[str, Any], serve: Serve) -> Any:
        assert self._sock is not None
        self.spent = {}
        protocol.send(self._sock, message)  # a request that cannot be encoded is not sent
        self._answer_due = True
        self._last_heard = time.monotonic()
        while True:
            answer = self._next()
            if "call" in answer:
                self._serve(answer, serve)
            elif "done" in answer:
                self._answer_due = False
                self.spent = _spent(answer.get("spent"))
                return answer["done"]
            elif "failed" in answer:
                self._answer_due = False
                self.spent = _spent(answer.get("spent"))
                raise protocol.error_from(answer["failed"])
            else:
                raise protocol.ProtocolError(f"an unknown message: {str(answer)[:200]}")

    def _serve(self, answer: dict[str, Any], serve: Serve) -> None:
        assert self._sock is not None
        name, args = answer.get("call"), answer.get("args")
        if name not in protocol.BACKEND_CALLS or type(args) is not list:
            raise protocol.ProtocolError(f"an unknown backend call {str(name)[:100]!r}")
        try:
            reply: dict[str, Any] = {"ok": serve(name, args)}
        except Exception as exc:
            if name in protocol.NO_REPLY:
                try:
                    serve.failed(name, args, exc)
                except Exception:  # recording it is for the author; the request goes on
                    log.exception("a failed %s could not be recorded", name)
            reply = {"error": protocol.error_fields(exc)}
        if name not in protocol.NO_REPLY:
            protocol.send(self._sock, reply)
        # time spent serving (a slow fetch, a server that is down) is not the sandbox's
        self._last_heard = time.monotonic()

    def _next(self) -> Any:
        assert self._receiver is not None and self._poller is not None and self._proc is not None
        limit = self.limits.timeout_seconds + GRACE_SECONDS
        while (message := self._receiver.pending()) is protocol.NOTHING:
            # a frame that started must also end: a half-sent one is a stalled sandbox
            while not self._poller.poll(POLL_SECONDS * 1000):
                started, _ = self.call_started()
                since = max(started, self._last_heard)
                if time.monotonic() - since > limit:
                    raise _Overran(f"ran past the {self.limits.timeout_seconds:g} s time limit")
                if self._proc.poll() is not None:
                    raise EOFError("the sandbox process exited")
            self._receiver.fill()
            self._last_heard = time.monotonic()
        return message

    # -- the process -------------------------------------------------------------------

    def _start(self) -> None:
        parent, child = socket.socketpair()
        progress_fd = os.memfd_create("plugin-sandbox-progress", os.MFD_CLOEXEC)
        os.ftruncate(progress_fd, protocol.PROGRESS_BYTES)
        os.set_inheritable(progress_fd, True)
        settings = {
            "channel_fd": child.fileno(),
            "progress_fd": progress_fd,
            "limits": dataclasses.asdict(self.limits),
            "geoip": self._geoip,
        }
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-m",
                    "plugin_runtime.sandbox.child",
                    orjson.dumps(settings),
                ],
                pass_fds=(child.fileno(), progress_fd),
                env={},  # no secret of the worker's environment reaches plugin code
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        finally:
            child.close()
        self._page = mmap.mmap(progress_fd, protocol.PROGRESS_BYTES)
        os.close(progress_fd)
        self._proc, self._sock = proc, parent
        self._receiver = protocol.Receiver(parent)
        self._poller = select.poll()
        self._poller.register(parent, select.POLLIN)
        self.generation += 1
        try:
            ready = self._await_ready()
        except (EOFError, OSError, protocol.ProtocolError, _Overran) as exc:
            raise self._crashed(exc) from None
        self.layers = list(ready.get("layers") or [])
        log.debug("sandbox for team %s started (pid %s, %s)", self.team_id, proc.pid, self.layers)

    def _await_ready(self) -> dict[str, Any]:
        assert self._receiver is not None and self._poller is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while (message := self._receiver.pending()) is protocol.NOTHING:
            if not self._poller.poll(max(0.0, deadline - time.monotonic()) * 1000):
                raise _Overran("did not start in time")
            self._receiver.fill()
        if type(message) is not dict or type(message.get("ready")) is not dict:
            raise protocol.ProtocolError("the sandbox did not say ready")
        ready: dict[str, Any] = message["ready"]
        return ready

    def _crashed(self, cause: BaseException) -> SandboxCrashed:
        """Kill the process (if it still runs) and describe how it ended."""
        _, config_id = self.call_started()
        proc = self._proc
        killed = isinstance(cause, _Overran | protocol.ProtocolError)
        if proc is not None and proc.poll() is None:
            proc.kill()
        code = proc.wait() if proc is not None else None
        stderr = b""
        if proc is not None and proc.stderr is not None:
            stderr = _read_tail(proc.stderr)
            proc.stderr.close()
        self._discard()
        if killed:
            reason = f"the sandbox process {cause}; it was killed"
        else:
            reason = f"the sandbox process {_ending(code, stderr)}"
        log.warning(
            "sandbox for team %s: %s", self.team_id, reason, extra={"team_id": self.team_id}
        )
        return SandboxCrashed(reason, config_id or None)

    def _discard(self) -> None:
        if self._sock is not None:
            self._sock.close()
        if self._page is not None:
            self._page.close()
        self._proc, self._sock, self._page = None, None, None
        self._receiver, self._poller = None, None

    def close(self) -> None:
        """End the process (it stops on its own when its channel closes)."""
        with self._lock:
            self._end()

    def _end(self, *, at_once: bool = False) -> None:
        # `at_once`: mid-request, the process is killed rather than waited for
        proc = self._proc
        if proc is None:
            return
        assert self._sock is not None
        self._sock.close()
        if at_once:
            proc.kill()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
        self._sock = None
        self._discard()


_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def _colocated(pid: int | None) -> Iterator[None]:
    """Run the requesting thread and the sandbox on one CPU for the request.

    The two take turns (each waits while the other works), and a wake-up on the same
    CPU costs a few microseconds where one across CPUs costs tens: a cache get is a
    round trip, so this decides what `meta` calls cost.
    """
    if pid is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    cpu = {_libc.sched_getcpu()}
    try:
        os.sched_setaffinity(0, cpu)
        os.sched_setaffinity(pid, cpu)
    except OSError:
        pass
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _read_tail(stream: Any) -> bytes:
    os.set_blocking(stream.fileno(), False)
    try:
        data = stream.read() or b""
    except OSError:
        data = b""
    return bytes(data[-STDERR_TAIL_BYTES:])


def _ending(code: int | None, stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace").strip().splitlines()
    last = f": {text[-1][:300]}" if text else ""
    if code is not None and code < 0:
        sig = signal.Signals(-code)
        what = {
            signal.SIGXCPU: "used up its CPU time",
            signal.SIGSEGV: "crashed",
            signal.SIGKILL: "was killed (out of memory?)",
        }.get(sig, "was stopped")
        return f"{what} ({sig.name}){last}"
    if "MemoryError" in last:
        return f"ran out of memory{last}"
    return f"exited with status {code}{last}"

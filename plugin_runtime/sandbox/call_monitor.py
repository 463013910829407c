"""The monitor that stops plugin calls past their time or memory bound.

A plugin call registers a `Watch` for its thread; one daemon thread looks at the running
watches every `POLL_SECONDS` and, when a call is past its deadline or the process grew by
more than the call's memory bound since it started, raises an exception *inside that
thread* (`PyThreadState_SetAsyncExc`). Nothing runs per loop iteration, so the cost to a
call is registering and removing its watch (about a microsecond).

The interruption is a `BaseException` (plugin `except Exception:` does not catch it); the
sandbox policy re-raises it at the top of every plugin `except`/`finally` block, and the
monitor sends it again every `RESEND_SECONDS` while the call keeps running, so a plugin
that catches it still cannot outlive its bound.

What it cannot interrupt: one long C-level operation that never returns to the
interpreter loop (a huge `str * n`, a catastrophic regular expression). The memory guards
and vetted modules keep those operations bounded instead.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time

POLL_SECONDS = 0.02  # how often running calls are checked; the precision of both bounds
RESEND_SECONDS = 0.05  # interval for re-raising in a call that swallowed the interruption

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class CallInterrupted(BaseException):
    """Raised inside a plugin call by the monitor; a BaseException so that ordinary plugin
    `except Exception:` handlers do not swallow it."""


class TimeExpired(CallInterrupted):
    """The call ran past its time limit."""


class MemoryExceeded(CallInterrupted):
    """The process grew past the call's memory bound while the call ran."""


class Watch:
    """One running call: its thread, deadline, memory ceiling and what the monitor did."""

    __slots__ = ("deadline", "done", "fired", "outer", "rss_ceiling", "sent_at", "thread_id")

    def __init__(
        self, thread_id: int, deadline: float, rss_ceiling: int, outer: Watch | None
    ) -> None:
        self.thread_id = thread_id
        self.deadline = deadline
        self.rss_ceiling = rss_ceiling
        self.fired: type[CallInterrupted] | None = None
        self.sent_at = 0.0
        self.done = False
        self.outer = outer


# thread id -> innermost running watch; plain dict operations are atomic under the GIL
_watches: dict[int, Watch] = {}
# orders "check done, then send" in the monitor against "mark done, then clear" in disarm
_send_lock = threading.Lock()
_started = threading.Lock()
_monitor: threading.Thread | None = None
_last_rss = 0


def arm(timeout_seconds: float, memory_bytes: int) -> Watch:
    """Register a call on the current thread; pair with `disarm`."""
    if _monitor is None:
        _start_monitor()
    tid = threading.get_ident()
    watch = Watch(
        tid, time.monotonic() + timeout_seconds, _last_rss + memory_bytes, _watches.get(tid)
    )
    _watches[tid] = watch
    return watch


def disarm(watch: Watch) -> None:
    """Unregister `watch`; after this returns no interruption for it is pending or sent.

    Idempotent, so it may be called again if an interruption arrived while disarming.
    """
    watch.done = True
    if _watches.get(watch.thread_id) is watch:
        if watch.outer is None:
            _watches.pop(watch.thread_id, None)
        else:
            _watches[watch.thread_id] = watch.outer
    if watch.fired is not None:
        # the monitor may have sent an interruption that has not been raised yet
        with _send_lock:
            _set_async_exc(watch.thread_id, None)


def current_watch() -> Watch | None:
    """The innermost running call on this thread, if any."""
    return _watches.get(threading.get_ident())


def reraise_if_interrupted() -> None:
    """Raise again the interruption of the current call, if it was interrupted.

    The sandbox policy puts a call to this at the top of every plugin `except` and
    `finally` block, so catching the interruption does not let plugin code continue.
    """
    watch = _watches.get(threading.get_ident())
    if watch is not None and watch.fired is not None:
        raise watch.fired


_statm_fd: int | None = None


def current_rss() -> int:
    """The resident set size of this process in bytes (Linux /proc; 0 where unknown).

    The file stays open: a sandbox process reads it after it has given up opening files.
    """
    global _statm_fd
    try:
        if _statm_fd is None:
            _statm_fd = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
        return int(os.pread(_statm_fd, 128, 0).split()[1]) * _PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return 0


def start() -> None:
    """Start the monitor thread now (it starts with the first bounded call otherwise)."""
    _start_monitor()


def _start_monitor() -> None:
    global _monitor, _last_rss
    with _started:
        if _monitor is None:
            _last_rss = current_rss()
            thread = threading.Thread(target=_run, name="plugin-call-monitor", daemon=True)
            thread.start()
            _monitor = thread


def _run() -> None:
    global _last_rss
    while True:
        time.sleep(POLL_SECONDS)
        _last_rss = rss = current_rss()
        if _watches:
            _check(list(_watches.values()), time.monotonic(), rss)


def _check(watches: list[Watch], now: float, rss: int) -> None:
    for watch in watches:
        if watch.done:
            continue
        if watch.fired is None:
            if now >= watch.deadline:
                watch.fired = TimeExpired
            elif rss and rss > watch.rss_ceiling:
                watch.fired = MemoryExceeded
            else:
                continue
        elif now - watch.sent_at < RESEND_SECONDS:
            continue
        with _send_lock:
            if not watch.done:
                _set_async_exc(watch.thread_id, watch.fired)
                watch.sent_at = now


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None
    )

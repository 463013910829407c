"""The bounds every plugin call runs under, and `call_bounded`, which applies them.

The time limit and the process-growth part of the memory bound are enforced by the call
monitor (`call_monitor.py`); single oversized operations are refused by the memory guards
(`memory_limit.py`) that the compiler puts into the plugin's globals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from plugin_runtime.errors import PluginMemoryError, PluginTimeoutError, StateLimitError
from plugin_runtime.sandbox import call_monitor

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 30.0  # s; the original's TASK_TIMEOUT, per call and per module body
# bytes; one plugin call may build objects (or grow the process) by this much. Plugin work
# is one event or one export batch: 10,000 events of ~1 KiB with a JSON copy stay under
# 32 MiB, so 128 MiB leaves room, and eight plugin threads at the bound fit in 1 GiB.
DEFAULT_MEMORY_BYTES = 128 * 1024 * 1024

# bytes of `meta.cache` / `meta.storage` per value and in all per plugin config: a value is
# an event's worth of state or a small lookup table, and a config holding more than this
# is keeping what belongs in its own database
DEFAULT_CACHE_VALUE_BYTES = 1024 * 1024
DEFAULT_CACHE_TOTAL_BYTES = 16 * 1024 * 1024
DEFAULT_STORAGE_VALUE_BYTES = 1024 * 1024
DEFAULT_STORAGE_TOTAL_BYTES = 64 * 1024 * 1024

PLUGIN_FILE_PREFIX = "plugin:"  # compiled plugin files are named "plugin:<name>/<file>"


@dataclass(frozen=True)
class Limits:
    """Per-call bounds for plugin code, and the bounds of each config's cache and storage."""

    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    cache_value_bytes: int = DEFAULT_CACHE_VALUE_BYTES
    cache_total_bytes: int = DEFAULT_CACHE_TOTAL_BYTES
    storage_value_bytes: int = DEFAULT_STORAGE_VALUE_BYTES
    storage_total_bytes: int = DEFAULT_STORAGE_TOTAL_BYTES


def value_bound(what: str, value: str, bound: int) -> None:
    """Raise StateLimitError for one value over `bound` bytes (checked on both sides)."""
    if len(value) > bound:
        raise StateLimitError(
            f"{what}: a value of {len(value):,} bytes is over the {bound:,}-byte bound of one value"
        )


def call_bounded(fn: Callable[..., T], /, *args: Any, limits: Limits) -> T:
    """Run `fn(*args)` in the current thread under `limits`.

    Raises PluginTimeoutError past `limits.timeout_seconds`, PluginMemoryError past
    `limits.memory_bytes` (or when an allocation fails); any other exception from the
    plugin propagates unchanged. A call that swallowed its interruption and returned
    late still raises PluginTimeoutError/PluginMemoryError: the bound wins.
    """
    watch = call_monitor.arm(limits.timeout_seconds, limits.memory_bytes)
    try:
        try:
            result = fn(*args)
        finally:
            call_monitor.disarm(watch)
    except call_monitor.CallInterrupted as exc:
        call_monitor.disarm(watch)  # in case it arrived while disarming
        raise _bound_error(watch.fired or type(exc), limits, exc.__traceback__) from None
    except MemoryError as exc:
        raise PluginMemoryError(_memory_message(limits, exc.__traceback__, exc)) from None
    except BaseException as exc:
        if watch.fired is not None:
            raise _bound_error(watch.fired, limits, exc.__traceback__) from None
        raise
    if watch.fired is not None:
        raise _bound_error(watch.fired, limits, None)
    return result


def _bound_error(
    kind: type[call_monitor.CallInterrupted], limits: Limits, tb: TracebackType | None
) -> Exception:
    if issubclass(kind, call_monitor.MemoryExceeded):
        return PluginMemoryError(_memory_message(limits, tb, None))
    seconds = limits.timeout_seconds
    unit = "second" if seconds == 1 else "seconds"
    return PluginTimeoutError(
        f"plugin code ran longer than the {seconds:g} {unit} time limit{_where(tb)}"
    )


def _memory_message(limits: Limits, tb: TracebackType | None, exc: BaseException | None) -> str:
    detail = f": {exc}" if exc is not None and str(exc) else ""
    mib = limits.memory_bytes / (1024 * 1024)
    return f"plugin code went past the {mib:g} MiB memory bound{_where(tb)}{detail}"


def _where(tb: TracebackType | None) -> str:
    """` (at plugin.py:12)`: the innermost plugin line the call was running, if any."""
    where = ""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(PLUGIN_FILE_PREFIX):
            where = f" (at {filename.partition('/')[2]}:{tb.tb_lineno})"
        tb = tb.tb_next
    return where

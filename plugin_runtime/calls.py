"""How one plugin function is called: a stack of small middlewares around the call.

Each middleware does one thing (error recording, progress for the watchdog) and is
composed in `call_stack`, so the runner never grows `if`s for cross-cutting behaviour.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from plugin_runtime.error_recording import ErrorRecorder
from plugin_runtime.errors import RetryError
from plugin_runtime.types import PluginConfigRef


@dataclass(slots=True)
class PluginCall:
    """One call of a plugin function: whose, which, with what, about which event.

    Not frozen: a frozen dataclass costs about 1 µs more to build, once per event.
    """

    ref: PluginConfigRef
    method: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    event: Mapping[str, Any] | None = None
    # exceptions the caller handles itself (RetryError from export_events and jobs)
    expected: tuple[type[BaseException], ...] = ()


Proceed = Callable[[PluginCall], Any]


class CallMiddleware(Protocol):
    def __call__(self, call: PluginCall, proceed: Proceed) -> Any: ...


class RecordErrors:
    """Record any unexpected exception against the plugin config, then re-raise it."""

    def __init__(self, recorder: ErrorRecorder) -> None:
        self._recorder = recorder

    def __call__(self, call: PluginCall, proceed: Proceed) -> Any:
        try:
            return proceed(call)
        except call.expected:
            raise
        except Exception as exc:
            self._recorder.record(call.ref, exc, call.event)
            raise


class Spending:
    """Middleware: how long each config's calls ran and how many failed, since `take`.

    In the sandbox this is the split of a request's time between the team's configs;
    the worker measures the request's total itself (`SandboxTeam.request`)."""

    def __init__(self) -> None:
        self._spent: dict[int, list[float]] = {}

    def __call__(self, call: PluginCall, proceed: Proceed) -> Any:
        started = time.monotonic()
        failed = 0.0
        try:
            return proceed(call)
        except call.expected:
            raise
        except BaseException:
            failed = 1.0
            raise
        finally:
            entry = self._spent.setdefault(call.ref.plugin_config_id, [0.0, 0.0])
            entry[0] += time.monotonic() - started
            entry[1] += failed

    def take(self) -> dict[str, list[float]]:
        """{config id (text): [seconds, failed calls]}, and start counting again."""
        spent, self._spent = self._spent, {}
        return {str(k): v for k, v in spent.items()}


def call_stack(middlewares: Sequence[CallMiddleware], invoke: Proceed) -> Proceed:
    """Compose `middlewares` (outermost first) around `invoke`."""
    proceed = invoke
    for middleware in reversed(middlewares):
        proceed = _bind(middleware, proceed)
    return proceed


def _bind(middleware: CallMiddleware, proceed: Proceed) -> Proceed:
    return lambda call: middleware(call, proceed)


RETRYABLE = (RetryError,)

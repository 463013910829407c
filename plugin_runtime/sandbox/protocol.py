"""The contract between the worker and a sandbox process: the whole of it, in one module.

A sandbox process runs the plugin code of one team. It talks to the worker over one
Unix socket with frames of `4-byte big-endian length + JSON`. Only plain data crosses:
dict, list, str, int, float, bool and None (bytes as base64 text), in frames of at most
`MAX_FRAME_BYTES`; nothing is ever unpickled, so no object of one side reaches code of
the other.

Worker -> sandbox, one request at a time (`{"op": ...}`):

| op        | fields                              | answer (`done`)                         |
| --------- | ----------------------------------- | --------------------------------------- |
| `load`    | `config` (a `PluginConfigRecord`)   | `{"functions", "jobs", "metrics"}`      |
| `unload`  | `id`                                | None                                    |
| `call`    | `id`, `function`, `args`, `job`?    | the function's result                   |
| `chain`   | `ids`, `events`                     | the kept events (process_event chain)   |
| `deliver` | `ids`, `events`                     | None (on_event / on_snapshot each)      |
| `global`  | `id`                                | the config's `meta.global_`             |

While it works on a request the sandbox may send any number of backend requests
(`{"call": "cache.get", "args": [...]}`, see `BACKEND_CALLS`); the worker serves each with
its real backends, scoped to the sandbox's team, and answers `{"ok": value}` or
`{"error": [type, message]}` — except for the writes in `NO_REPLY`, which it applies in
order without an answer (a failure is recorded against the plugin config instead); the
sandbox sends those with its next message, so a write costs no round trip. The request
ends with `{"done": value}` or `{"failed": [type, message, stack, portable type]}`.

Beside the socket, a 16-byte shared page carries the sandbox's progress: the monotonic
time its current plugin call started (0 between calls) and that call's plugin config id.
The worker's watchdog reads it without a message, so a sandbox stuck in C (holding its
GIL) is still seen, and killed, on time.
"""

from __future__ import annotations

import base64
import builtins
import socket
import struct
from typing import Any

import orjson

from plugin_runtime import errors
from plugin_runtime.types import Attachment, PluginConfigRecord, PluginSource

MAX_FRAME_BYTES = 64 * 1024 * 1024  # one message; an export batch of 10,000 large events fits
MAX_ERROR_CHARS = 8_000  # the message or stack of an error that crosses
PROGRESS = struct.Struct("=dd")  # (call started, monotonic seconds or 0; plugin config id)
PROGRESS_BYTES = 16

# backend calls a sandbox may send, and the ones the worker applies without answering
BACKEND_CALLS = frozenset(
    {
        "cache.get",
        "cache.set",
        "cache.set_if_absent",
        "cache.incr",
        "cache.expire",
        "cache.lpush",
        "cache.lrange",
        "cache.llen",
        "cache.lpop",
        "cache.lrem",
        "cache.delete",
        "storage.get",
        "storage.set",
        "storage.delete",
        "logs.write",
        "jobs.enqueue",
        "captures.capture",
        "http.request",
        "geoip.city",
        "errors.record",
        "errors.clear",
        "metrics.update",
    }
)
# writes the plugin API answers with nothing: sent without waiting (in order with what
# follows, so a later read sees them); the worker records a failure against the config
NO_REPLY = frozenset(
    {
        "cache.set",
        "cache.delete",
        "storage.set",
        "storage.delete",
        "logs.write",
        "errors.record",
        "errors.clear",
        "metrics.update",
    }
)

_HEADER = struct.Struct(">I")


class ProtocolError(Exception):
    """The other side sent something outside this contract (the sandbox is then killed)."""


class SandboxFailure(errors.PluginError):
    """A plugin error raised in the sandbox whose type has no counterpart in the worker;
    `name` is the plugin's exception type."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


# -- frames -------------------------------------------------------------------------


def encode(message: Any) -> bytes:
    """One frame; raises TypeError for a value that is not JSON-like data, ValueError for
    one over `MAX_FRAME_BYTES`.

    orjson encodes in C without calling methods of the values (a dict subclass is read as
    a dict), so encoding runs no plugin code; `plain_default` takes bytes, tuples, sets.
    """
    try:
        body = orjson.dumps(message, default=plain_default, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise TypeError(f"only JSON-like data can cross the sandbox boundary: {exc}") from None
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(
            f"{len(body):,} bytes are more than the {MAX_FRAME_BYTES:,} one message may carry"
        )
    return _HEADER.pack(len(body)) + body


def send(sock: socket.socket, message: Any) -> None:
    sock.sendall(encode(message))


NOTHING: Any = object()  # `Receiver.pending` when no whole frame is in yet
_RECV_BYTES = 256 * 1024  # one read takes what is there, up to this much


class Receiver:
    """Frames from one socket, in as few reads as the data allows (a small request and
    its header arrive in one)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        # where the next frame starts: frames are read in place, and the bytes before
        # this are dropped once per read, not once per frame (a read can hold a thousand
        # small writes, and moving the rest down after each was quadratic)
        self._start = 0
        # one buffer for every read: `recv(n)` would allocate (and fault in) n bytes each time
        self._chunk = memoryview(bytearray(_RECV_BYTES))

    def pending(self) -> Any:
        """The next whole message already read, or `NOTHING`; raises ProtocolError for a
        frame outside the contract."""
        buffer, start = self._buffer, self._start
        if len(buffer) - start < _HEADER.size:
            return NOTHING
        (size,) = _HEADER.unpack_from(buffer, start)
        if size > MAX_FRAME_BYTES:
            raise ProtocolError(f"a message of {size:,} bytes is over {MAX_FRAME_BYTES:,}")
        end = start + _HEADER.size + size
        if len(buffer) < end:
            return NOTHING
        try:
            # orjson builds only exact dict, list, str, int, float, bool and None, and
            # refuses nesting past its recursion limit: plain data by construction
            with memoryview(buffer) as view:
                message = orjson.loads(view[start + _HEADER.size : end])
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"a message that is not JSON: {exc}") from None
        self._start = end
        return message

    def fill(self) -> None:
        """Read what the socket has (blocks until something); EOFError when it closed."""
        count = self._sock.recv_into(self._chunk)
        if not count:
            raise EOFError("the other side of the sandbox channel closed")
        if self._start:
            del self._buffer[: self._start]
            self._start = 0
        self._buffer += self._chunk[:count]

    def receive(self) -> Any:
        """The next message, blocking until it is whole."""
        while (message := self.pending()) is NOTHING:
            self.fill()
        return message


# -- plain data -----------------------------------------------------------------------


def plain_default(value: Any) -> Any:
    """orjson's `default` for the JSON-like values it does not encode itself; raises
    TypeError for anything else."""
    # what orjson does not encode itself: bytes as base64 text, tuples and sets as lists
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"a {type(value).__name__} is not JSON-like data")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: Any) -> bytes:
    if type(text) is not str:
        raise ProtocolError("expected base64 text")
    return base64.b64decode(text, validate=True)


# -- errors -----------------------------------------------------------------------------

# runtime errors that keep their type across the boundary
_RUNTIME_ERRORS: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        errors.PluginError,
        errors.PluginLoadError,
        errors.ForbiddenImportError,
        errors.PluginConfigError,
        errors.PluginTimeoutError,
        errors.PluginMemoryError,
        errors.RetryError,
        errors.IllegalOperationError,
        errors.StateLimitError,
        errors.UnknownJobError,
        errors.UnknownPluginConfigError,
    )
}


def error_fields(exc: BaseException, stack: str = "") -> list[str]:
    """`[type name, message, stack, portable type]` of an exception, each cut to
    `MAX_ERROR_CHARS`. The portable type is the nearest class the other side knows (a
    builtin exception or one of the runtime's), so `except ConnectionError` still catches
    an error of a subclass the other side does not have."""
    try:
        message = str(exc)
    except Exception:
        message = "(the error's message could not be rendered)"
    return [
        type(exc).__name__[:200],
        message[:MAX_ERROR_CHARS],
        stack[-MAX_ERROR_CHARS:],
        _portable(type(exc)),
    ]


def _portable(kind: type[BaseException]) -> str:
    for cls in kind.__mro__:
        if _RUNTIME_ERRORS.get(cls.__name__) is cls or getattr(builtins, cls.__name__, None) is cls:
            return cls.__name__
    return "Exception"


def error_from(fields: Any) -> Exception:
    """The exception for `[type, message, stack, portable type]`: the runtime's own error
    types and the builtin exceptions keep their type; anything else becomes its nearest
    such class (a plugin's own `class Oops(ValueError)` a ValueError) or a
    `SandboxFailure`, with `plugin_error_type` naming the original."""
    if type(fields) is not list or len(fields) < 2:
        return ProtocolError(f"a malformed error: {str(fields)[:200]}")
    name, message = str(fields[0]), str(fields[1])
    portable = str(fields[3]) if len(fields) > 3 else name
    exc = _rebuilt(portable, message) or SandboxFailure(name, message)
    exc.plugin_error_type = name  # type: ignore[attr-defined]
    return exc


def _rebuilt(name: str, message: str) -> Exception | None:
    known = _RUNTIME_ERRORS.get(name)
    if known is not None:
        return known(message)
    builtin = getattr(builtins, name, None)
    if isinstance(builtin, type) and issubclass(builtin, Exception):
        try:
            return builtin(message)
        except Exception:
            return None
    return None


# -- plugin configs -----------------------------------------------------------------------


def record_to_plain(record: PluginConfigRecord) -> dict[str, Any]:
    """What a `load` request carries: everything the sandbox needs to build the config."""
    plugin = record.plugin
    return {
        "id": record.id,
        "team_id": record.team_id,
        "order": record.order,
        "config": record.config,
        "attachments": {
            key: [a.file_name, a.content_type, b64(a.contents)]
            for key, a in record.attachments.items()
        },
        "plugin": {
            "id": plugin.id,
            "name": plugin.name,
            "plugin_json": plugin.plugin_json,
            "files": plugin.files,
        },
    }


def record_from_plain(data: dict[str, Any]) -> PluginConfigRecord:
    plugin = data["plugin"]
    return PluginConfigRecord(
        id=int(data["id"]),
        team_id=int(data["team_id"]),
        plugin=PluginSource(
            id=int(plugin["id"]),
            name=str(plugin["name"]),
            plugin_json=dict(plugin["plugin_json"]),
            files={str(k): str(v) for k, v in plugin["files"].items()},
        ),
        order=int(data["order"]),
        config=dict(data["config"]),
        attachments={
            key: Attachment(file_name=name, content_type=kind, contents=unb64(contents))
            for key, (name, kind, contents) in data["attachments"].items()
        },
    )

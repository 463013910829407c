"""ClickHouse behind one small interface, with two adapters.

* `NativeClickHouse`: clickhouse-driver over the native TCP protocol (production servers).
* `ChdbClickHouse`: chDB, the ClickHouse engine in-process (the embedded mode's analytical
  store, and where the full DDL and queries are tested).

Both take clickhouse-driver's parameter style, `%(name)s` placeholders plus a dict, and
render the values client-side, so one SQL string runs on either. As with clickhouse-driver,
a literal `%` must be written `%%` when parameters are given. Both are blocking and
thread-safe: the pipeline calls them from worker threads.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import functools
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import orjson

if TYPE_CHECKING:
    from app.settings import Settings

DEFAULT_NATIVE_PORT = 9000  # ClickHouse's plain native-protocol port
DEFAULT_SECURE_PORT = 9440  # ... and its TLS one
CONNECT_TIMEOUT = 10  # s
SEND_RECEIVE_TIMEOUT = 300  # s; a big FINAL query can take a while

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


class ClickHouseError(Exception):
    """A ClickHouse call failed; the message carries the server's (or chDB's) reason."""


class ClickHouse(Protocol):
    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement; the result rows (empty for DDL and INSERT ... SELECT).

        Raises ClickHouseError.
        """

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Insert rows (one value per column, in `columns` order); the number inserted.

        Raises ClickHouseError.
        """

    def close(self) -> None:
        """Release the connection (or chDB session); safe to call twice."""


def _identifier(name: str) -> str:
    # table and column names go into the SQL text, so they must be plain names
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain ClickHouse table or column name")
    return name


# --- chDB -------------------------------------------------------------------------------------

_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    "\b": "\\b",
    "\f": "\\f",
    "\r": "\\r",
    "\n": "\\n",
    "\t": "\\t",
    "\0": "\\0",
    "\a": "\\a",
    "\v": "\\v",
}


def sql_literal(value: Any) -> str:
    """`value` as a ClickHouse SQL literal. Naive datetimes are taken as UTC."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | decimal.Decimal):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return "'" + "".join(_ESCAPES.get(c, c) for c in value) + "'"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return f"toDateTime64('{value.isoformat(sep=' ', timespec='microseconds')}', 6, 'UTC')"
    if isinstance(value, dt.date):
        return f"toDate('{value.isoformat()}')"
    if isinstance(value, uuid.UUID):
        return f"toUUID('{value}')"
    if isinstance(value, enum.Enum):
        return sql_literal(value.value)
    if isinstance(value, list):
        return "[" + ", ".join(sql_literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(sql_literal(v) for v in value) + ")"
    raise TypeError(f"cannot pass a {type(value).__name__} as a ClickHouse parameter")


def render(sql: str, params: Mapping[str, Any] | None) -> str:
    """`sql` with its `%(name)s` placeholders replaced by literals (as clickhouse-driver does)."""
    if params is None:
        return sql
    return sql % {name: sql_literal(value) for name, value in params.items()}


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot insert a {type(value).__name__} into ClickHouse")


_JSON_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z

# DateTime, DateTime('UTC'), DateTime64(6, 'UTC'), and the same in Nullable(...)
_DATETIME_TYPE = re.compile(r"(?:Nullable\()?DateTime(64)?(?:\((\d+)?[^)]*\))?\)?")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DAY_MICROS = 86_400 * 1_000_000


def _to_ticks(values: Sequence[Any], micros_per_tick: int) -> list[Any]:
    """Date-times as integers of the column's unit since the epoch (naive ones as UTC);
    anything else (None, a number already) as it is."""
    out: list[Any] = []
    for value in values:
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.UTC)
            # the timedelta's fields, not `// timedelta(microseconds=1)`: half the time
            since = value - _EPOCH
            micros = since.days * _DAY_MICROS + since.seconds * 1_000_000 + since.microseconds
            value = micros // micros_per_tick
        out.append(value)
    return out


_UUID_TYPE = re.compile(r"(?:Nullable\()?UUID\)?")


def _to_uuids(values: Sequence[Any]) -> list[Any]:
    """UUID texts as UUIDs, each distinct text parsed once (a person's events share its
    id); anything else, or a text that is no UUID, as it is, for the driver to judge."""
    parsed: dict[Any, Any] = {}
    out: list[Any] = []
    for value in values:
        converted = parsed.get(value)
        if converted is None:
            converted = parsed[value] = _uuid(value) if isinstance(value, str) else value
        out.append(converted)
    return out


def _uuid(text: str) -> Any:
    # the canonical form (every event uuid parse let through) read in C, and the UUID made
    # as its constructor makes it: `uuid.UUID(text)` takes twice as long, in Python
    if len(text) == 36 and text[8] == text[13] == text[18] == text[23] == "-":
        try:
            raw = bytes.fromhex(text.replace("-", ""))
        except ValueError:
            return text
        if len(raw) == 16:
            made = object.__new__(uuid.UUID)
            object.__setattr__(made, "int", int.from_bytes(raw))
            object.__setattr__(made, "is_safe", uuid.SafeUUID.unknown)
            return made
    try:
        return uuid.UUID(text)
    except ValueError:
        return text


# chDB runs one embedded server per process, so its calls are serialised process-wide
_CHDB_LOCK = threading.Lock()


class ChdbClickHouse:
    """ClickHouse in-process (chDB), storing its tables under `path` (":memory:" for none).

    chDB serves one data path per process at a time: opening a second path while another
    is open raises ClickHouseError. Several instances on the same path share its server.
    """

    def __init__(self, path: str = ":memory:") -> None:
        from chdb import session

        open_session: Any = session.Session  # chdb has no type hints
        self.path = path
        if path != ":memory:":
            os.makedirs(path, exist_ok=True)
        try:
            with _CHDB_LOCK:
                self._session: Any = open_session(path)
                # DateTime columns without a zone read and print in UTC, as on the servers
                self._session.query("SET session_timezone = 'UTC'")
        except RuntimeError as exc:
            raise ClickHouseError(
                f"chDB cannot open {path}: {exc}. chDB serves one data path per process; "
                "close the other ChdbClickHouse first"
            ) from exc
        self._closed = False

    def _query(self, sql: str, fmt: str) -> Any:
        if self._closed:
            raise ClickHouseError(f"the chDB session on {self.path} is closed")
        try:
            with _CHDB_LOCK:
                return self._session.query(sql, fmt)
        except RuntimeError as exc:  # chdb's ChdbError is a RuntimeError
            raise ClickHouseError(str(exc)) from exc

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        result = self._query(render(sql, params), "Parquet")
        data = result.bytes() if result is not None else b""
        return _parquet_rows(data) if data else []

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        lines = [
            orjson.dumps(list(row), default=_json_default, option=_JSON_OPTIONS) for row in rows
        ]
        if not lines:
            return 0
        names = ", ".join(_identifier(c) for c in columns)
        # best_effort reads the ISO-8601 "...Z" timestamps the rows are serialised with
        sql = (
            f"INSERT INTO {_identifier(table)} ({names}) "
            "SETTINGS date_time_input_format = 'best_effort' FORMAT JSONCompactEachRow\n"
        ) + b"\n".join(lines).decode()
        self._query(sql, "CSV")
        return len(lines)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with _CHDB_LOCK:
                self._session.close()


def _parquet_rows(data: bytes) -> list[tuple[Any, ...]]:
    # Parquet keeps the column types (DateTime as timestamps, UUID, Decimal, Nullable)
    import io

    import pyarrow.parquet as pq

    table = pq.ParquetFile(io.BytesIO(data)).read()
    columns = [[_python_value(v, col.type) for v in col.to_pylist()] for col in table.columns]
    return list(zip(*columns, strict=True)) if columns else []


def _python_value(value: Any, arrow_type: Any) -> Any:
    """Arrow's Python values shaped like clickhouse-driver's: Map as dict, Tuple as tuple."""
    import pyarrow as pa

    if value is None:
        return None
    if pa.types.is_map(arrow_type):
        return {
            _python_value(k, arrow_type.key_type): _python_value(v, arrow_type.item_type)
            for k, v in value
        }
    if pa.types.is_struct(arrow_type):
        return tuple(
            _python_value(value[arrow_type.field(i).name], arrow_type.field(i).type)
            for i in range(arrow_type.num_fields)
        )
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return [_python_value(v, arrow_type.value_type) for v in value]
    return value


# --- native protocol --------------------------------------------------------------------------


class NativeClickHouse:
    """A ClickHouse server over the native protocol (clickhouse-driver), one connection.

    Keyword-only options mirror the CLICKHOUSE_* settings; `from_settings` reads them.
    """

    def __init__(
        self,
        *,
        host: str = "localhost",
        port: int = 0,
        database: str = "default",
        user: str = "default",
        password: str | None = None,
        secure: bool = False,
        ca_certs: str | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        from clickhouse_driver import Client

        self.host = host
        self.port = port or (DEFAULT_SECURE_PORT if secure else DEFAULT_NATIVE_PORT)
        self._lock = threading.Lock()
        self._column_converters: dict[str, dict[str, Callable[[Sequence[Any]], list[Any]]]] = {}
        self._client = Client(
            host=host,
            port=self.port,
            database=database,
            user=user,
            password=password or "",
            secure=secure,
            verify=secure,
            ca_certs=ca_certs,
            connect_timeout=CONNECT_TIMEOUT,
            send_receive_timeout=SEND_RECEIVE_TIMEOUT,
            settings=dict(settings or {}),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> NativeClickHouse:
        """The server named by CLICKHOUSE_HOST/PORT/DATABASE/USER/PASSWORD/SECURE/CA."""
        ca = settings.CLICKHOUSE_CA
        if ca and not os.path.isabs(ca):
            ca = os.path.join(settings.BASE_DIR, ca)
        return cls(
            host=settings.CLICKHOUSE_HOST,
            port=settings.CLICKHOUSE_PORT,
            database=settings.CLICKHOUSE_DATABASE,
            user=settings.CLICKHOUSE_USER,
            password=settings.CLICKHOUSE_PASSWORD,
            secure=settings.CLICKHOUSE_SECURE,
            ca_certs=ca,
        )

    def _call(self, sql: str, params: Any, *, columnar: bool = False) -> Any:
        from clickhouse_driver import errors

        try:
            with self._lock:
                return self._client.execute(sql, params, columnar=columnar)
        except (errors.Error, OSError, EOFError) as exc:
            # a server exception carries the server's stack trace after its message
            reason = str(exc).split("Stack trace:", 1)[0].strip()
            raise ClickHouseError(
                f"ClickHouse at {self.host}:{self.port}: {type(exc).__name__}: {reason}"
            ) from exc

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        result = self._call(sql, dict(params) if params is not None else None)
        return [tuple(row) for row in result] if isinstance(result, list) else []

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        batch = list(rows)
        if not batch:
            return 0
        # a column at a time, date-times as the integers the server keeps and UUIDs
        # parsed once per distinct text: the driver's own path goes through every row,
        # localises every datetime with pytz and parses every UUID text
        converters = self._converters(table)
        data = [
            converters[name](values) if name in converters else list(values)
            for name, values in zip(columns, zip(*batch, strict=True), strict=True)
        ]
        names = ", ".join(_identifier(c) for c in columns)
        self._call(f"INSERT INTO {_identifier(table)} ({names}) VALUES", data, columnar=True)
        return len(batch)

    def _converters(self, table: str) -> dict[str, Callable[[Sequence[Any]], list[Any]]]:
        """How each DateTime/DateTime64 and UUID column of `table` takes its values."""
        known = self._column_converters.get(table)
        if known is None:
            known = {}
            for name, kind, *_ in self.execute(f"DESCRIBE TABLE {_identifier(table)}"):
                match = _DATETIME_TYPE.fullmatch(kind)
                if match:
                    precision = int(match.group(2) or 0) if match.group(1) else 0
                    known[name] = functools.partial(
                        _to_ticks, micros_per_tick=10 ** (6 - min(precision, 6))
                    )
                elif _UUID_TYPE.fullmatch(kind):
                    known[name] = _to_uuids
            self._column_converters[table] = known
        return known

    def close(self) -> None:
        with self._lock:
            self._client.disconnect()

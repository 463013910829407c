"""Guards that refuse one plugin operation whose result would exceed the memory bound.

A single C-level operation (`"x" * 10**10`, `10**10**8`, `s.ljust(10**10)`) runs to the
end without returning to the interpreter loop, so the call monitor cannot stop it; its
size is known before it runs, so these guards check it first and raise
PluginMemoryError. The compiler routes `*`, `**`, `<<`, `%`, augmented assignments,
format specs, `pow`, `range`, `bytes` and the growing `str`/`bytes` methods through them.

Growth over many small steps (appending in a loop) is the call monitor's job.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from typing import Any

from plugin_runtime.errors import PluginMemoryError, PluginTimeoutError

_INPLACE: dict[str, Callable[[Any, Any], Any]] = {  # op -> the in-place operator function
    "+=": operator.iadd,
    "-=": operator.isub,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
    ">>=": operator.irshift,
    "@=": operator.imatmul,
}
# bits; an integer result over this is refused whatever the memory bound: one C-level
# multiplication of two such numbers takes ~0.07 s, and the time limit cannot stop C code
MAX_MODPOW_WORK = 4096 * 4096  # exponent bits x modulus bits of one pow(a, b, m)
MAX_INT_BITS = 1 << 20
_NUMBERS = re.compile(r"\d+")
_PRINTF_SPEC = re.compile(rb"%[-#0 +*.\d]*[a-zA-Z%]")
_WIDENING_METHODS = frozenset(
    ("ljust", "rjust", "center", "zfill", "expandtabs", "replace", "join")
)
_TEXT = (str, bytes, bytearray)
_SEQUENCES = (*_TEXT, list, tuple)


class SizeGuards:
    """The guard functions for one memory bound, as plain closures (they run in hot code)."""

    def __init__(self, memory_bytes: int) -> None:
        self.memory_bytes = memory_bytes
        max_bits = min(memory_bytes * 8, MAX_INT_BITS)
        # a sequence of this many items holds at least 8 bytes (one pointer) per item
        max_items = memory_bytes // 8

        def refuse(what: str, size: int) -> None:
            raise PluginMemoryError(
                f"{what} would need about {size:,} bytes, over the plugin memory bound "
                f"of {memory_bytes:,} bytes"
            )

        def refuse_int(what: str, bits: int) -> None:
            raise PluginMemoryError(
                f"{what} would give an integer of about {bits // 8:,} bytes, over the plugin "
                f"integer limit of {max_bits // 8:,} bytes"
            )

        def check_repeat(seq: Any, times: int) -> None:
            if times > 0 and isinstance(seq, _SEQUENCES):
                width = 1 if isinstance(seq, _TEXT) else 8
                if len(seq) * times * width > memory_bytes:
                    refuse("repeating a sequence", len(seq) * times * width)

        def mul(a: Any, b: Any) -> Any:
            ta, tb = type(a), type(b)
            if ta is float or tb is float:
                return a * b
            if ta is int and tb is int:
                if a.bit_length() + b.bit_length() > max_bits:
                    refuse_int("multiplying integers", a.bit_length() + b.bit_length())
                return a * b
            if isinstance(b, int):
                check_repeat(a, b)
            elif isinstance(a, int):
                check_repeat(b, a)
            return a * b

        def power(a: Any, b: Any, mod: Any = None) -> Any:
            if (
                mod is None
                and isinstance(a, int)
                and isinstance(b, int)
                and b > 0
                and abs(a) > 1
                and a.bit_length() * b > max_bits
            ):
                refuse_int("raising an integer to a power", a.bit_length() * b)
            if (
                mod is not None
                and isinstance(b, int)
                and isinstance(mod, int)
                and abs(b).bit_length() * abs(mod).bit_length() > MAX_MODPOW_WORK
            ):
                # one C call of bits(b) squarings modulo a bits(mod) number: a 4096-bit
                # RSA operation is inside; an 8-Mbit one would run for hours
                raise PluginTimeoutError(
                    f"pow() with a {abs(b).bit_length():,}-bit exponent and a "
                    f"{abs(mod).bit_length():,}-bit modulus is more work than one C call of a "
                    "plugin may do (it cannot be interrupted)"
                )
            return a**b if mod is None else pow(a, b, mod)

        def lshift(a: Any, b: Any) -> Any:
            if isinstance(a, int) and isinstance(b, int) and a and a.bit_length() + b > max_bits:
                refuse_int("shifting an integer", a.bit_length() + b)
            return a << b

        def check_widths(spec: str | bytes, args: Any = ()) -> None:
            text = spec.decode("latin-1") if isinstance(spec, bytes) else spec
            for number in _NUMBERS.findall(text):
                if len(number) > 9 or int(number) > memory_bytes:
                    refuse("a format width", int(number[:30]))
            if "*" in text:
                for arg in args if isinstance(args, tuple) else (args,):
                    if isinstance(arg, int) and arg > memory_bytes:
                        refuse("a format width", arg)

        def mod(a: Any, b: Any) -> Any:
            kind = type(a)
            if kind is int or kind is float:  # the common case, kept first: it runs in loops
                return a % b
            if isinstance(a, str | bytes):
                specs = _PRINTF_SPEC.findall(a.encode() if isinstance(a, str) else a)
                for spec in specs:
                    check_widths(spec, b)
            return a % b

        def formatted(value: Any, conversion: int, spec: str) -> str:
            check_widths(spec)
            if conversion == ord("r"):
                value = repr(value)
            elif conversion == ord("s"):
                value = str(value)
            elif conversion == ord("a"):
                value = ascii(value)
            return format(value, spec)

        def inplace(op: str, x: Any, y: Any) -> Any:
            if op == "+=":
                kind = type(x)
                if kind is int or kind is float:  # counters in loops: keep it short
                    return x + y
                if isinstance(x, _SEQUENCES) and isinstance(y, _SEQUENCES):
                    check_repeat(x, 1 + len(y) // max(len(x), 1))
                return _INPLACE[op](x, y)
            if op == "*=":
                return mul(x, y)
            if op == "**=":
                return power(x, y)
            if op == "<<=":
                return lshift(x, y)
            if op == "%=":
                return mod(x, y)
            return _INPLACE[op](x, y)

        def sized_range(*args: int) -> range:
            span = range(*args)
            if len(span) > max_items // 4:
                refuse(f"a range of {len(span):,} items", len(span) * 36)
            return span

        def widening_method(text: Any, name: str, method: Callable[..., Any]) -> Any:
            def checked(*args: Any, **kwargs: Any) -> Any:
                size = _widened_size(text, name, args, kwargs)
                if size > memory_bytes:
                    refuse(f"{type(text).__name__}.{name}()", size)
                return method(*args, **kwargs)

            return checked

        self.mul, self.pow, self.lshift, self.mod = mul, power, lshift, mod
        self.formatted, self.inplace, self.range = formatted, inplace, sized_range
        self.widening_method = widening_method
        self.bytes = _sized_bytes_type(refuse, memory_bytes)


def widens(obj: Any, name: str) -> bool:
    """Whether `obj.name` is a str/bytes method that can return much more than it got."""
    return name in _WIDENING_METHODS and isinstance(obj, _TEXT)


def _widened_size(text: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    if name in ("ljust", "rjust", "center", "zfill"):
        width = args[0] if args else kwargs.get("width", 0)
        return width if isinstance(width, int) else 0
    if name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        return len(text) * tabsize if isinstance(tabsize, int) else 0
    if name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        if isinstance(old, _TEXT) and isinstance(new, _TEXT) and len(new) > len(old):
            found = len(text) + 1 if not old else text.count(old)
            if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
                found = min(found, args[2])
            return len(text) + found * (len(new) - len(old))
        return 0
    if name == "join" and args and len(text) > 1:
        items: Iterable[Any] = args[0]
        return len(text) * max(operator.length_hint(items, 0) - 1, 0)
    return 0


def _sized_bytes_type(refuse: Callable[[str, int], None], memory_bytes: int) -> type:
    """A stand-in for `bytes` that refuses `bytes(n)` over the bound; `isinstance(x, bytes)`
    keeps working because the stand-in's metaclass answers for the real type."""

    class SizedBytesMeta(type):
        def __call__(cls, *args: Any, **kwargs: Any) -> bytes:
            if args and isinstance(args[0], int) and args[0] > memory_bytes:
                refuse("bytes(n)", args[0])
            return bytes(*args, **kwargs)

        def __instancecheck__(cls, obj: Any) -> bool:
            return isinstance(obj, bytes)

        def __subclasscheck__(cls, sub: type) -> bool:
            return issubclass(sub, bytes)

        def __getattr__(cls, name: str) -> Any:
            return getattr(bytes, name)

    return SizedBytesMeta("bytes", (), {})

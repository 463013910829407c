"""The modules plugin code may import, each as a vetted proxy.

A plugin never gets a real module object: a real module leaks its own imports
(`random._os`, `json.decoder`, `re._compiler`) and is writable process-wide state. Each
proxy lists the public names plugins need; calls that could run unboundedly in C or
build huge objects are wrapped (`time.sleep` in slices, `math.factorial` capped, every
`itertools` iterator yielded through a Python frame, `json.dumps` indent capped, ...).
`random` is a fresh `random.Random` per plugin, so seeding it affects no other plugin.
"""

from __future__ import annotations

import base64
import collections
import datetime
import decimal
import functools
import hashlib
import hmac
import itertools
import json
import math
import random
import re
import string
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping
from types import FunctionType, MappingProxyType
from typing import Any

from plugin_runtime.errors import PluginMemoryError
from plugin_runtime.sandbox.guards import PluginClassMeta, interruptible
from plugin_runtime.sandbox.limits import PLUGIN_FILE_PREFIX
from plugin_runtime.sandbox.memory_limit import MAX_INT_BITS

ALLOWED_MODULES = (
    "json",
    "re",
    "datetime",
    "math",
    "hashlib",
    "hmac",
    "base64",
    "uuid",
    "time",
    "random",
    "string",
    "decimal",
    "collections",
    "itertools",
    "functools",
    "urllib",
    "urllib.parse",
)

SLEEP_SLICE_SECONDS = 0.05  # time.sleep wakes this often so the time limit can stop it
MAX_FACTORIAL_N = 100_000  # math.factorial/comb/perm argument cap: ~0.1 s of C work
MAX_PBKDF2_ITERATIONS = 1_000_000  # hashlib.pbkdf2_hmac: ~0.5 s of C work
MAX_DERIVED_KEY_BYTES = 1024  # pbkdf2_hmac dklen: each block costs all the iterations again
MAX_LCM_BITS = 1 << 20  # math.lcm result, the plugin integer limit (it grows in C otherwise)
# hashlib.new: the fixed-length digests only (shake_* digests take any length, in C)
HASH_NAMES = frozenset(
    [
        "md5",
        "sha1",
        "sha224",
        "sha256",
        "sha384",
        "sha512",
        "sha3_224",
        "sha3_256",
        "sha3_384",
        "sha3_512",
        "blake2b",
        "blake2s",
    ]
)
MAX_JSON_INDENT = 64  # characters; json.dumps builds indent * depth in C
MAX_DECIMAL_EXPONENT = 999_999  # the default context's Emax; int() of more runs away in C


class ModuleProxy:
    """What `import name` gives a plugin: the vetted names of one module, read-only from
    every code path (no `__dict__`, `__setattr__` and `__delattr__` refuse), so neither
    plugin code nor a library function it calls can change what another plugin sees."""

    __slots__ = ("_module_name", "_names")

    def __init__(self, name: str, names: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_module_name", name)
        object.__setattr__(self, "_names", MappingProxyType(dict(names)))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._names[name]
        except KeyError:
            raise AttributeError(
                f"module '{self._module_name}' has no attribute '{name}' for plugins"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"module '{self._module_name}' is read-only")

    def __delattr__(self, name: str) -> None:
        raise TypeError(f"module '{self._module_name}' is read-only")

    def __repr__(self) -> str:
        return f"<module '{self._module_name}' (plugin view)>"


def _is_plugin_function(fn: Any) -> bool:
    return type(fn) is FunctionType and fn.__code__.co_filename.startswith(PLUGIN_FILE_PREFIX)


def _wraps(wrapped: Any, **names: Any) -> Callable[[Any], Any]:
    """`functools.wraps` for plugin decorators. The real one copies and writes attributes
    whose names the caller chooses (`assigned=`, `updated=`) with the real getattr and
    setattr; this one copies exactly `__name__`, `__qualname__` and `__doc__`, onto a
    function of the plugin's own."""
    if names:
        raise TypeError("functools.wraps takes only the wrapped function in plugins")

    def decorate(wrapper: Any) -> Any:
        if not _is_plugin_function(wrapper):
            raise TypeError("functools.wraps decorates functions defined in the plugin")
        for name in ("__name__", "__qualname__", "__doc__"):
            value = getattr(wrapped, name, None)
            if type(value) is str:
                setattr(wrapper, name, value)
        return wrapper

    return decorate


def _total_ordering(cls: Any) -> Any:
    # the real one adds methods to any class it is given, shared ones included
    if not isinstance(cls, PluginClassMeta):
        raise TypeError("functools.total_ordering decorates classes defined in the plugin")
    return functools.total_ordering(cls)


def _ns(name: str, **names: Any) -> ModuleProxy:
    return ModuleProxy(name, names)


def _public(module: Any, names: str) -> dict[str, Any]:
    return {name: getattr(module, name) for name in names.split()}


def _sleep(seconds: float) -> None:
    # a thread blocked in one long C sleep cannot be interrupted; slices can
    end = time.monotonic() + float(seconds)
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, SLEEP_SLICE_SECONDS))


def _capped(fn: Callable[..., Any], cap: int, what: str) -> Callable[..., Any]:
    def capped(*args: Any) -> Any:
        if any(isinstance(a, int) and a > cap for a in args):
            raise PluginMemoryError(f"{what} is limited to arguments up to {cap:,} in plugins")
        return fn(*args)

    return capped


def _prod(iterable: Any, *, start: Any = 1) -> Any:
    # math.prod multiplies in C without returning to the interpreter; the sandbox's `*`
    # guard cannot see those products, so this multiplies in Python through the guard
    result = start
    for value in iterable:
        result = _guarded_mul(result, value)
    return result


def _guarded_mul(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS:
        raise PluginMemoryError(
            f"math.prod result is over the plugin integer limit of {MAX_INT_BITS // 8:,} bytes"
        )
    return a * b


def _pbkdf2_hmac(
    name: str, password: bytes, salt: bytes, iterations: int, dklen: Any = None
) -> Any:
    if isinstance(dklen, int) and dklen > MAX_DERIVED_KEY_BYTES:
        raise PluginMemoryError(
            f"pbkdf2_hmac is limited to keys of {MAX_DERIVED_KEY_BYTES} bytes in plugins"
        )
    if iterations > MAX_PBKDF2_ITERATIONS:
        raise PluginMemoryError(
            f"pbkdf2_hmac is limited to {MAX_PBKDF2_ITERATIONS:,} iterations in plugins"
        )
    return hashlib.pbkdf2_hmac(name, password, salt, iterations, dklen)


def _hash_new(name: str, data: bytes = b"", **kwargs: Any) -> Any:
    if not isinstance(name, str) or name.lower() not in HASH_NAMES:
        raise ValueError(f"hashlib.new: {name!r} is not one of {', '.join(sorted(HASH_NAMES))}")
    return hashlib.new(name, data, **kwargs)


def _lcm(*numbers: Any) -> Any:
    # math.lcm of many arguments multiplies in C; pairwise, each result is checked
    result = 1
    for number in numbers:
        result = math.lcm(result, number)
        if isinstance(result, int) and result.bit_length() > MAX_LCM_BITS:
            raise PluginMemoryError(
                f"math.lcm result is over the plugin integer limit of {MAX_LCM_BITS // 8:,} bytes"
            )
    return result


def _dumps(obj: Any, **kwargs: Any) -> str:
    indent = kwargs.get("indent")
    if (isinstance(indent, int) and indent > MAX_JSON_INDENT) or (
        isinstance(indent, str) and len(indent) > MAX_JSON_INDENT
    ):
        raise ValueError(f"json.dumps indent is limited to {MAX_JSON_INDENT} in plugins")
    if "cls" in kwargs:
        raise TypeError("json.dumps(cls=...) is not available to plugins")
    return json.dumps(obj, **kwargs)


def _loads(text: Any, **kwargs: Any) -> Any:
    if "cls" in kwargs:
        raise TypeError("json.loads(cls=...) is not available to plugins")
    return json.loads(text, **kwargs)


class _DecimalMeta(type):
    """`decimal.Decimal` for plugins: refuses exponents whose `int()` would run away;
    `isinstance(x, Decimal)` still answers for the real type."""

    def __call__(cls, value: Any = "0", context: Any = None) -> decimal.Decimal:
        number = decimal.Decimal(value)
        if number.is_finite() and abs(number.adjusted()) > MAX_DECIMAL_EXPONENT:
            raise decimal.Overflow(f"Decimal exponent over {MAX_DECIMAL_EXPONENT:,}")
        return number

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, decimal.Decimal)

    def __getattr__(cls, name: str) -> Any:
        return getattr(decimal.Decimal, name)


class _Counter(collections.Counter):  # type: ignore[type-arg]
    def elements(self) -> Iterator[Any]:
        # Counter.elements chains C iterators; a huge count would never return
        return interruptible(super().elements())


def _interruptible_factory(fn: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
    @functools.wraps(fn)
    def make(*args: Any, **kwargs: Any) -> Iterator[Any]:
        return interruptible(fn(*args, **kwargs))

    return make


def _itertools() -> ModuleProxy:
    names = (
        "accumulate batched chain combinations combinations_with_replacement compress count "
        "cycle dropwhile filterfalse groupby islice pairwise permutations product repeat "
        "starmap takewhile zip_longest"
    )
    found = {n: getattr(itertools, n) for n in names.split() if hasattr(itertools, n)}
    return ModuleProxy("itertools", {n: _interruptible_factory(f) for n, f in found.items()})


def _random(rng: random.Random) -> ModuleProxy:
    names = (
        "random uniform randint randrange choice choices shuffle sample gauss normalvariate "
        "triangular betavariate expovariate seed"
    )
    bound = {n: getattr(rng, n) for n in names.split()}
    bound["getrandbits"] = _capped(rng.getrandbits, 2**20, "random.getrandbits")
    bound["randbytes"] = _capped(rng.randbytes, 2**20, "random.randbytes")
    return ModuleProxy("random", bound)


def _shared_modules() -> dict[str, ModuleProxy]:
    math_names = [n for n in dir(math) if not n.startswith("_")]
    math_ns = {n: getattr(math, n) for n in math_names}
    for name in ("factorial", "comb", "perm"):
        math_ns[name] = _capped(getattr(math, name), MAX_FACTORIAL_N, f"math.{name}")
    math_ns["prod"] = _prod
    math_ns["lcm"] = _lcm
    parse = _ns(
        "urllib.parse",
        **_public(
            urllib.parse,
            "urlparse urlunparse urlsplit urlunsplit urljoin urldefrag urlencode quote "
            "quote_plus unquote unquote_plus parse_qs parse_qsl",
        ),
    )
    hashes = _public(
        hashlib,
        "md5 sha1 sha224 sha256 sha384 sha512 sha3_224 sha3_256 sha3_384 sha3_512 blake2b blake2s",
    )
    return {
        "json": _ns("json", dumps=_dumps, loads=_loads, JSONDecodeError=json.JSONDecodeError),
        "re": _ns(
            "re",
            **_public(
                re,
                "compile search match fullmatch split findall finditer sub subn escape "
                "error Pattern Match A ASCII I IGNORECASE L LOCALE M MULTILINE S DOTALL X "
                "VERBOSE U UNICODE NOFLAG",
            ),
        ),
        "datetime": _ns(
            "datetime",
            **_public(datetime, "date datetime time timedelta timezone tzinfo MINYEAR MAXYEAR UTC"),
        ),
        "math": _ns("math", **math_ns),
        "hashlib": _ns("hashlib", **hashes, new=_hash_new, pbkdf2_hmac=_pbkdf2_hmac),
        "hmac": _ns("hmac", **_public(hmac, "new compare_digest digest HMAC")),
        "base64": _ns(
            "base64",
            **_public(
                base64,
                "b64encode b64decode standard_b64encode standard_b64decode urlsafe_b64encode "
                "urlsafe_b64decode b32encode b32decode b32hexencode b32hexdecode b16encode "
                "b16decode b85encode b85decode a85encode a85decode",
            ),
        ),
        # uuid1/getnode are left out: finding the MAC address may start a subprocess
        "uuid": _ns(
            "uuid",
            **_public(
                uuid,
                "UUID uuid3 uuid4 uuid5 NAMESPACE_DNS NAMESPACE_URL NAMESPACE_OID NAMESPACE_X500",
            ),
        ),
        "time": _ns(
            "time",
            **_public(
                time,
                "time time_ns monotonic monotonic_ns perf_counter perf_counter_ns gmtime "
                "localtime mktime strftime strptime struct_time timezone altzone daylight tzname",
            ),
            sleep=_sleep,
        ),
        # string.Formatter is left out: its field syntax reaches attributes by name
        "string": _ns(
            "string",
            **_public(
                string,
                "ascii_letters ascii_lowercase ascii_uppercase digits hexdigits octdigits "
                "punctuation printable whitespace capwords Template",
            ),
        ),
        "decimal": _ns(
            "decimal",
            **_public(
                decimal,
                "InvalidOperation DivisionByZero Overflow Underflow Inexact Rounded "
                "DecimalException ROUND_UP ROUND_DOWN ROUND_CEILING ROUND_FLOOR ROUND_HALF_UP "
                "ROUND_HALF_DOWN ROUND_HALF_EVEN ROUND_05UP",
            ),
            Decimal=_DecimalMeta("Decimal", (), {}),
        ),
        "collections": _ns(
            "collections",
            **_public(collections, "OrderedDict defaultdict deque namedtuple ChainMap"),
            Counter=_Counter,
        ),
        "itertools": _itertools(),
        "functools": _ns(
            "functools",
            **_public(functools, "reduce partial lru_cache cache cmp_to_key"),
            wraps=_wraps,
            total_ordering=_total_ordering,
        ),
        "urllib": _ns("urllib", parse=parse),
        "urllib.parse": parse,
    }


_SHARED = _shared_modules()


def module_proxy(name: str, *, rng: random.Random) -> ModuleProxy:
    """The proxy plugin code gets for `import name`; `rng` backs the plugin's `random`."""
    if name == "random":
        return _random(rng)
    return _SHARED[name]

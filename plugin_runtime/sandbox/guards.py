"""The RestrictedPython guard functions and the builtins a plugin module sees.

RestrictedPython rewrites attribute access, item access, writes, iteration, unpacking and
augmented assignment into calls of `_getattr_`, `_getitem_`, `_write_`, `_getiter_`,
`_unpack_sequence_`, `_iter_unpack_sequence_` and `_inplacevar_`; the compiler's own
policy adds `_mul_`, `_pow_`, `_lshift_`, `_mod_`, `_format_` and `_reraise_`. This module
builds all of them for one memory bound.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safe_builtins,
)
from RestrictedPython.PrintCollector import PrintCollector
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from plugin_runtime.sandbox import call_monitor
from plugin_runtime.sandbox.memory_limit import SizeGuards, widens

# attributes refused on every object besides `_`-names: frame/code/generator internals,
# `str.format*` (format strings reach attributes by name), `mro` (reaches BaseException
# and `object`)
_REFUSED_NAMES = INSPECT_ATTRIBUTES | {"mro", "format", "format_map"}
# builtins from RestrictedPython's safe set that a plugin must not hold: raising them
# would escape `except Exception` in the runner (SystemExit stops a worker thread)
_WITHHELD = frozenset({"BaseException", "SystemExit", "KeyboardInterrupt", "GeneratorExit"})
_MISSING = object()
# containers plugin code builds itself (incl. OrderedDict, defaultdict, Counter, deque);
# shared containers never reach a plugin (module proxies hold only immutable values)
_PLUGIN_CONTAINERS = (dict, list, set, collections.deque)


class PluginClassMeta(type):
    """Metaclass of classes defined in plugin code; marks their instances as writable."""


def guarded_getattr(size: SizeGuards) -> Callable[..., Any]:
    """`_getattr_` (and the `getattr` builtin): no `_` names, no frame/format internals,
    growing `str`/`bytes` methods size-checked."""

    def _getattr_(obj: Any, name: str, default: Any = _MISSING) -> Any:
        if type(name) is not str:
            raise TypeError("attribute name must be a string")
        if name.startswith("_") or name in _REFUSED_NAMES:
            if name == "format" and not isinstance(obj, str | type):
                pass  # datetime.format-like methods on other objects are fine
            else:
                raise AttributeError(f'"{name}" is not an attribute plugins may use')
        try:
            value = getattr(obj, name) if default is _MISSING else getattr(obj, name, default)
        except AttributeError as exc:
            # a fresh error: the original carries `.obj`, the real object behind a proxy
            raise AttributeError(str(exc)) from None
        if widens(obj, name):
            return size.widening_method(obj, name, value)
        return value

    return _getattr_


def guarded_write(ob: Any) -> Any:
    """`_write_`: plugin code may change dicts, lists, sets and its own objects; writes to
    anything else (modules, `meta`, functions, builtins) fail with a TypeError."""
    kind = type(ob)
    if kind is dict or kind is list or kind is set or isinstance(ob, _PLUGIN_CONTAINERS):
        return ob
    if isinstance(ob, PluginClassMeta) or isinstance(kind, PluginClassMeta):
        return ob
    return full_write_guard(ob)


def inplace_item(size: SizeGuards) -> Callable[[Any, Any, str, Any], None]:
    """`_inplaceitem_`: `obj[key] op= value`, read and written through the guards."""

    def _inplaceitem_(ob: Any, key: Any, op: str, value: Any) -> None:
        guarded_write(ob)[key] = size.inplace(op, default_guarded_getitem(ob, key), value)

    return _inplaceitem_


def inplace_attr(size: SizeGuards, getattr_: Callable[..., Any]) -> Callable[..., None]:
    """`_inplaceattr_`: `obj.name op= value`, read and written through the guards."""

    def _inplaceattr_(ob: Any, name: str, op: str, value: Any) -> None:
        setattr(guarded_write(ob), name, size.inplace(op, getattr_(ob, name), value))

    return _inplaceattr_


def guarded_apply(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`_apply_`: calls with `*args`/`**kwargs`; the callee is already a guarded name."""
    return fn(*args, **kwargs)


def interruptible(items: Iterable[Any]) -> Iterator[Any]:
    """Yield from `items` through a Python frame, so consuming it in C (`list(...)`,
    `"".join(...)`) still returns to the interpreter loop and can be interrupted."""
    # not `yield from`: a generator resumed inside `yield from` skips the interrupt check
    for item in items:  # noqa: UP028
        yield item


def plugin_builtins(size: SizeGuards) -> dict[str, Any]:
    """The `__builtins__` of a plugin module."""
    getattr_ = guarded_getattr(size)
    builtins = {k: v for k, v in safe_builtins.items() if k not in _WITHHELD}
    builtins.update(
        {
            "_getattr_": getattr_,
            "getattr": getattr_,
            "hasattr": _hasattr(getattr_),
            "list": list,
            "tuple": tuple,
            "dict": dict,
            "set": set,
            "frozenset": frozenset,
            "sorted": sorted,
            "reversed": reversed,
            "enumerate": enumerate,
            "zip": zip,
            "map": map,
            "filter": filter,
            "min": min,
            "max": max,
            "sum": sum,
            "any": any,
            "all": all,
            "next": next,
            "iter": _iter,
            "bin": bin,
            "ascii": ascii,
            "format": lambda value, spec="": size.formatted(value, -1, spec),
            "pow": size.pow,
            "range": size.range,
            "bytes": size.bytes,
            "property": property,
            "staticmethod": staticmethod,
            "classmethod": classmethod,
            # what `fetch` raises on a network failure, so plugins can catch it by name
            "ConnectionError": ConnectionError,
            "TimeoutError": TimeoutError,
        }
    )
    return builtins


def _hasattr(getattr_: Callable[..., Any]) -> Callable[[Any, str], bool]:
    def hasattr_(obj: Any, name: str) -> bool:
        try:
            return getattr_(obj, name, _MISSING) is not _MISSING
        except AttributeError:
            return False

    return hasattr_


def _iter(source: Any, *sentinel: Any) -> Iterator[Any]:
    # the two-argument form calls `source` in C until it returns the sentinel; route it
    # through a Python frame so a never-ending one can be interrupted
    if sentinel:
        return interruptible(iter(source, *sentinel))
    return iter(source)


def guard_globals(size: SizeGuards) -> dict[str, Any]:
    """The guard names RestrictedPython-compiled code calls, for one memory bound."""
    return {
        "_inplaceitem_": inplace_item(size),
        "_inplaceattr_": inplace_attr(size, guarded_getattr(size)),
        "_getitem_": default_guarded_getitem,
        "_getiter_": default_guarded_getiter,
        "_write_": guarded_write,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_inplacevar_": size.inplace,
        "_apply_": guarded_apply,
        "_print_": PrintCollector,
        "_mul_": size.mul,
        "_pow_": size.pow,
        "_lshift_": size.lshift,
        "_mod_": size.mod,
        "_format_": size.formatted,
        "_reraise_": call_monitor.reraise_if_interrupted,
        "__metaclass__": PluginClassMeta,
    }

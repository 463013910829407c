"""Allowed modules that read or write attributes by a name the caller chooses, shared
proxies written through library code, and exceptions that hand out what a proxy hides.
Each attempt fails, and no other plugin sees a change."""

from __future__ import annotations

import contextlib

import pytest

from plugin_runtime.errors import PluginMemoryError, PluginTimeoutError
from tests.plugin_runtime.sandbox_fixtures import call, compiled, run_body

ATTRIBUTE_ATTACKS = {
    # functools.wraps copies caller-chosen attribute names with the real getattr/setattr
    "wraps_assigned_globals": """
        import functools
        def g():
            pass
        holder = lambda: None
        functools.wraps(g, assigned=("__globals__",), updated=())(holder)
        return holder
    """,
    "wraps_updated_dict": """
        import functools
        import json
        functools.wraps(json.dumps, assigned=(), updated=("__dict__",))(json)
        return json
    """,
    "update_wrapper_on_a_proxy": """
        import functools, json
        functools.update_wrapper(json, len)
        return json
    """,
    "wraps_onto_module_proxy": """
        import functools, json, math
        functools.wraps(math.sqrt)(json)
        return json
    """,
    "total_ordering_on_a_shared_class": """
        import functools, collections
        return functools.total_ordering(collections.OrderedDict)
    """,
    "setattr_builtin_on_proxy": """
        import json
        setattr(json, "dumps", len)
    """,
}


@pytest.mark.parametrize("body", ATTRIBUTE_ATTACKS.values(), ids=ATTRIBUTE_ATTACKS.keys())
def test_library_attribute_access_by_name_is_refused(body: str) -> None:
    with pytest.raises((AttributeError, TypeError, ValueError, NameError)):
        run_body(body, None, None)


HIDDEN_BY_ERRORS = {
    "attribute_error_obj": """
        import decimal
        try:
            decimal.Decimal.nothing_here
        except AttributeError as e:
            return e.obj
    """,
    "attribute_error_obj_proxy": """
        import json
        try:
            json.nothing_here
        except AttributeError as e:
            return e.obj
    """,
}


@pytest.mark.parametrize("body", HIDDEN_BY_ERRORS.values(), ids=HIDDEN_BY_ERRORS.keys())
def test_a_caught_attribute_error_hands_out_nothing(body: str) -> None:
    assert run_body(body, None, None) is None


def test_functools_wraps_still_serves_plugin_decorators() -> None:
    plugin = compiled(
        """
import functools

def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        return fn(*args)
    return wrapper

@logged
def double(x):
    "Twice x."
    return 2 * x

def f(x, meta):
    return [double(x), functools.reduce(lambda a, b: a + b, [1, 2])]
"""
    )
    assert call(plugin, "f", 4, None) == [8, 3]


def test_functools_total_ordering_works_on_plugin_classes() -> None:
    plugin = compiled(
        """
import functools

@functools.total_ordering
class V:
    def __init__(self, n):
        self.n = n
    def __eq__(self, other):
        return self.n == other.n
    def __lt__(self, other):
        return self.n < other.n

def f(x, meta):
    return V(1) <= V(2) and V(3) > V(2)
"""
    )
    assert call(plugin, "f", None, None) is True


def test_a_shared_proxy_is_the_same_for_the_next_plugin_after_attempts() -> None:
    for body in ATTRIBUTE_ATTACKS.values():
        with contextlib.suppress(Exception):
            run_body(body, None, None)
    assert run_body("import json\nreturn json.dumps([1])", None, None) == "[1]"
    assert run_body("import math\nreturn math.sqrt(16)", None, None) == 4.0


C_WORK_REFUSED = {
    "modular_pow_huge": "return pow(3, 2 ** 100000 + 1, 2 ** 100000 + 7)",
    "lcm_of_many": "import math\nreturn math.lcm(*range(1, 200000))",
    "shake_digest": "import hashlib\nreturn hashlib.new('shake_256', b'x').hexdigest(10 ** 9)",
    "pbkdf2_huge_key": "import hashlib\nreturn hashlib.pbkdf2_hmac('sha256', b'p', b's', 1, 10**9)",
}


@pytest.mark.parametrize("body", C_WORK_REFUSED.values(), ids=C_WORK_REFUSED.keys())
def test_uninterruptible_c_work_is_refused_before_it_starts(body: str) -> None:
    with pytest.raises((PluginMemoryError, PluginTimeoutError, ValueError)):
        run_body(body, None, None)


def test_ordinary_uses_of_the_guarded_functions_work() -> None:
    assert run_body("return pow(3, 65537, 2 ** 2048 - 1) > 0", None, None) is True
    assert run_body("import math\nreturn math.lcm(4, 6, 10)", None, None) == 60
    assert (
        run_body("import hashlib\nreturn hashlib.new('sha256', b'x').hexdigest()[:4]", None, None)
        == "2d71"
    )

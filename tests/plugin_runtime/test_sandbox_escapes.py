"""Break-out attempts: each fails cleanly, at load (PluginLoadError) or as an ordinary
exception at call time; none succeeds and none takes the process down."""

from __future__ import annotations

import pytest

from plugin_runtime.errors import ForbiddenImportError, PluginLoadError
from tests.plugin_runtime.sandbox_fixtures import call, compiled, fake_meta, run_body


class Victim:
    """An object of the host handed to a plugin (like an event value or `meta`)."""

    secret = "host"

    def method(self) -> str:
        return "m"


ESCAPES = {
    # dunder walks to `object.__subclasses__` and function globals
    "class_mro": "return x.__class__.__mro__",
    "subclasses": "return ().__class__.__bases__[0].__subclasses__()",
    "func_globals": "return f.__globals__",
    "method_globals": "return x.method.__func__.__globals__",
    "builtins_name": "return __builtins__",
    "import_dunder": "return __import__('os')",
    "getattr_dunder": "return getattr(x, '__class__')",
    "getattr_dict": "return getattr(x, '__dict__')",
    "hasattr_probe": "return hasattr(x, '__class__') or 1 / 0",
    "setattr_host": "setattr(x, 'secret', 'changed')",
    "setattr_meta": "setattr(meta, 'config', {})",
    "write_attr_meta": "meta.config = {}",
    "write_attr_host": "x.secret = 'changed'",
    "mro_method": "return getattr(Exception, 'mro')()",
    "str_mod_dunder": "return str.__mod__('%s', 1)",
    # forbidden builtins
    "open": "return open('/etc/passwd').read()",
    "eval": "return eval('1 + 1')",
    "exec": "exec('y = 1')",
    "compile": "return compile('1', 'x', 'eval')",
    "type_three_args": "return type('X', (), {})",
    "type_one_arg": "return type(x)",
    "globals": "return globals()",
    "locals": "return locals()",
    "vars": "return vars(x)",
    "dir": "return dir(x)",
    "help": "return help(x)",
    "breakpoint": "breakpoint()",
    "input": "return input()",
    "memoryview": "return memoryview(b'x')",
    "object_type": "return object",
    "super_thisclass": """
        class A:
            def m(self):
                return super().__thisclass__
        return A().m()
    """,
    "super_getattr": """
        class A:
            def m(self):
                return getattr(super(), '__self__')
        return A().m()
    """,
    "raise_system_exit": "raise SystemExit(1)",
    "raise_keyboard_interrupt": "raise KeyboardInterrupt",
    "raise_base_exception": "raise BaseException('x')",
    # frames through generators, coroutines and tracebacks (CVE-2023-37271 and kin)
    "gi_frame": """
        def g():
            yield 1
        return g().gi_frame.f_back.f_globals
    """,
    "gi_frame_getattr": """
        def g():
            yield 1
        return getattr(g(), 'gi_frame')
    """,
    "gi_code_getattr": """
        def g():
            yield 1
        return getattr(g(), 'gi_code')
    """,
    "genexp_frame": "return getattr((i for i in []), 'gi_frame')",
    "async_def": """
        async def c():
            return 1
        return getattr(c(), 'cr_frame')
    """,
    "async_gen": """
        async def a():
            yield 1
        return a().ag_frame
    """,
    "traceback_dunder": """
        try:
            1 / 0
        except Exception as e:
            return e.__traceback__.tb_frame.f_back.f_globals
    """,
    "traceback_getattr": """
        try:
            1 / 0
        except Exception as e:
            return getattr(e, '__traceback__')
    """,
    "tb_frame_getattr": """
        try:
            1 / 0
        except Exception as e:
            return getattr(getattr(e, 'with_traceback')(None), 'tb_frame')
    """,
    "except_star_type_confusion": """
        try:
            raise ExceptionGroup('g', [ValueError(1)])
        except* ValueError as eg:
            return eg
    """,
    # format strings reaching attributes (GHSA advisories on str.format / string.Formatter)
    "str_format": "return '{0.__class__}'.format(x)",
    "str_format_getattr": "return getattr('{0.__class__}', 'format')(x)",
    "str_format_map": "return '{a.__class__}'.format_map({'a': x})",
    "str_type_format": "return str.format('{0.__class__}', x)",
    "string_formatter": """
        import string
        return string.Formatter().format('{0.__class__}', x)
    """,
    "string_formatter_vformat": """
        import string
        return getattr(string, 'Formatter')().vformat('{0.__class__}', [x], {})
    """,
    "string_template_dotted": """
        import string
        return string.Template('${a.__class__}').substitute(a=x)
    """,
    "format_builtin_fields": "return format(x, '{0.__class__}')",
    "fstring_dunder": "return f'{x.__class__}'",
    "fstring_conversion_dunder": "return f'{x.__class__!r:>10}'",
    # decorators and lambdas
    "decorator_globals": """
        def deco(fn):
            return fn.__globals__
        @deco
        def g():
            pass
        return g
    """,
    "lambda_code": "return (lambda: 0).__code__",
    # guard hooks shadowed through positional-only parameters (GHSA-ffg3-p8fm-mjx2)
    "shadow_getattr_posonly": """
        def g(_getattr_, /):
            return x.secret
        return g(lambda o, n: getattr)
    """,
    "shadow_write_posonly": """
        def g(_write_=None, /):
            meta.config = 1
        return g()
    """,
    "shadow_guard_assign": "_getattr_ = None",
    # the injected `meta` and what hangs off it
    "meta_private": "return meta._backends",
    "meta_private_getattr": "return getattr(meta.cache, '_backend')",
    "meta_dict": "return meta.cache.__dict__",
    "meta_method_self": "return meta.cache.get.__self__",
    # allowed modules do not leak their own imports or internals
    "json_decoder": "import json\nreturn json.decoder",
    "json_scanner": "import json\nreturn getattr(json, 'scanner')",
    "re_compiler": "import re\nreturn re._compiler",
    "re_compiler_getattr": "import re\nreturn getattr(re, '_compiler')",
    "re_sre": "import re\nreturn getattr(re, 'sre_compile')",
    "random_os": "import random\nreturn random._os",
    "random_os_getattr": "import random\nreturn getattr(random, '_os')",
    "random_class": "import random\nreturn random.Random",
    "random_system": "import random\nreturn random.SystemRandom",
    "collections_abc": "import collections\nreturn collections.abc",
    "functools_sys": "import functools\nreturn getattr(functools, 'sys')",
    "functools_partial_dunder": "import functools\nreturn functools.partial(len).__call__",
    "uuid_os": "import uuid\nreturn uuid.os",
    "uuid1_subprocess": "import uuid\nreturn uuid.uuid1()",
    "uuid_getnode": "import uuid\nreturn uuid.getnode()",
    "time_sleep_module": "import time\nreturn time.sys",
    "datetime_sys": "import datetime\nreturn datetime.sys",
    "hashlib_file_digest": "import hashlib\nreturn hashlib.file_digest",
    "decimal_context": "import decimal\nreturn decimal.getcontext()",
    "urllib_request": "import urllib\nreturn urllib.request",
    "module_write": "import json\njson.dumps = None",
    "module_setattr": "import json\nsetattr(json, 'dumps', None)",
    "module_item_write": "import math\nmath['pi'] = 3",
    "class_attr_write": "import datetime\ndatetime.datetime.now = None",
}


@pytest.mark.parametrize("body", ESCAPES.values(), ids=ESCAPES.keys())
def test_escape_attempt_fails_cleanly(body: str) -> None:
    victim = Victim()
    try:
        result = run_body(body, victim, fake_meta())
    except PluginLoadError:
        return
    except Exception:
        assert victim.secret == "host"
        return
    pytest.fail(f"the attempt succeeded and returned {result!r}")


FORBIDDEN_IMPORTS = {
    "import os": "os",
    "import sys": "sys",
    "import subprocess": "subprocess",
    "import socket": "socket",
    "import importlib": "importlib",
    "import builtins": "builtins",
    "import operator": "operator",
    "import ctypes": "ctypes",
    "import gc": "gc",
    "import inspect": "inspect",
    "import pickle": "pickle",
    "from os import path": "os",
    "import json.decoder": "json.decoder",
    "import urllib.request": "urllib.request",
    "from collections import abc as a\nimport io": "io",
    "def later():\n    import shutil": "shutil",
}


@pytest.mark.parametrize(
    "source, module", FORBIDDEN_IMPORTS.items(), ids=FORBIDDEN_IMPORTS.values()
)
def test_forbidden_import_fails_at_load_naming_the_module(source: str, module: str) -> None:
    with pytest.raises(ForbiddenImportError, match=f"module '{module}' is not provided"):
        compiled(source)


def test_relative_import_fails_at_load() -> None:
    with pytest.raises(ForbiddenImportError, match=r"module '\.' is not provided"):
        compiled("from . import x")


def test_attribute_writes_to_a_module_do_not_reach_other_plugins() -> None:
    with pytest.raises(TypeError):
        run_body("import json\njson.dumps = None", None, None)
    other = compiled("import json\ndef f():\n    return json.dumps([1])")
    assert call(other, "f") == "[1]"


def test_host_object_is_unchanged_after_write_attempts() -> None:
    victim = Victim()
    for body in ("x.secret = 'a'", "setattr(x, 'secret', 'b')", "del x.secret"):
        with pytest.raises(TypeError):
            run_body(body, victim, None)
    assert victim.secret == "host"

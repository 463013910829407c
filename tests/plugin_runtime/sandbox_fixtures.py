"""Compiling and calling small plugin snippets for the sandbox tests."""

from __future__ import annotations

import textwrap
from types import SimpleNamespace
from typing import Any

from plugin_runtime.errors import RetryError
from plugin_runtime.sandbox.compiler import CompiledPlugin, compile_plugin
from plugin_runtime.sandbox.limits import Limits, call_bounded

FAST = Limits(timeout_seconds=0.5)


def fake_meta() -> SimpleNamespace:
    """A stand-in `meta` with the public shape plugins see."""
    return SimpleNamespace(config={"key": "v"}, global_={}, cache=SimpleNamespace(get=dict.get))


def compiled(
    source: str, *, limits: Limits = FAST, files: dict[str, str] | None = None
) -> CompiledPlugin:
    return compile_plugin(
        {"plugin.py": textwrap.dedent(source), **(files or {})},
        plugin_name="probe",
        sandbox_globals={"RetryError": RetryError},
        limits=limits,
    )


def call(plugin: CompiledPlugin, name: str, *args: Any, limits: Limits = FAST) -> Any:
    return call_bounded(plugin.namespace[name], *args, limits=limits)


def run_body(body: str, *args: Any, limits: Limits = FAST) -> Any:
    """Compile `def f(x, meta):` with `body` and call it with `args`."""
    source = "def f(x, meta):\n" + textwrap.indent(textwrap.dedent(body), "    ")
    return call(compiled(source, limits=limits), "f", *args, limits=limits)

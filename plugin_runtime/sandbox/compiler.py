"""Compiling a plugin's files with RestrictedPython and running its module body.

Every `.py` file of the plugin is compiled with `PluginPolicy`; imports are checked
against the allowlist before anything runs, so a forbidden import fails the load even
when it sits inside a function. A plugin may import its own other files (`from lib
import x` with `lib.py` in the plugin): they are compiled and sandboxed exactly like the
main file, run once per load, and imported as a read-only view of their public names.
"""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import CodeType, SimpleNamespace
from typing import Any

from RestrictedPython.compile import compile_restricted_exec

from plugin_runtime.errors import ForbiddenImportError, PluginLoadError
from plugin_runtime.sandbox.allowed_modules import ALLOWED_MODULES, module_proxy
from plugin_runtime.sandbox.guards import guard_globals, plugin_builtins
from plugin_runtime.sandbox.limits import PLUGIN_FILE_PREFIX, Limits, call_bounded
from plugin_runtime.sandbox.memory_limit import SizeGuards
from plugin_runtime.sandbox.policy import PluginPolicy, imported_modules

PLUGIN_FUNCTIONS = (
    "setup_plugin",
    "teardown_plugin",
    "process_event",
    "on_event",
    "export_events",
    "run_every_minute",
    "run_every_hour",
    "run_every_day",
)

_LINE = re.compile(r"^Line (\d+): (.*)$", re.DOTALL)


@dataclass(frozen=True)
class CompiledPlugin:
    """A plugin whose module body has run: its globals and what it defines."""

    name: str
    namespace: dict[str, Any]
    functions: Mapping[str, Callable[..., Any]]
    jobs: Mapping[str, Callable[..., Any]] = field(default_factory=dict)

    @property
    def capabilities(self) -> frozenset[str]:
        """The plugin functions it defines, plus "jobs" if it has any jobs."""
        return frozenset(self.functions) | ({"jobs"} if self.jobs else set())


def compile_plugin(
    files: Mapping[str, str],
    *,
    main: str = "plugin.py",
    plugin_name: str,
    sandbox_globals: Mapping[str, Any],
    limits: Limits,
) -> CompiledPlugin:
    """Compile the plugin's files and run its main module's body under `limits`.

    Raises PluginLoadError (naming the plugin and file:line) for syntax and restriction
    errors, an exception in the module body or a malformed `jobs`; ForbiddenImportError
    naming the module for an import outside the allowlist; PluginTimeoutError or
    PluginMemoryError if the module body goes past `limits`.
    """
    if main not in files:
        raise PluginLoadError(f"plugin '{plugin_name}': main module '{main}' is not in the plugin")
    codes = _compile_reachable(plugin_name, files, main)
    loader = _ModuleLoader(plugin_name, codes, sandbox_globals, SizeGuards(limits.memory_bytes))
    namespace = call_bounded(loader.run, main, limits=limits)
    functions = {n: namespace[n] for n in PLUGIN_FUNCTIONS if callable(namespace.get(n))}
    return CompiledPlugin(plugin_name, namespace, functions, _jobs(plugin_name, namespace))


def _compile_reachable(
    plugin_name: str, files: Mapping[str, str], main: str
) -> dict[str, CodeType]:
    """Compile `main` and the plugin files it imports (transitively); other files in the
    folder (its tests, say) are not plugin code and are left alone."""
    by_module = {_module_name(path): path for path in files if path.endswith(".py")}
    codes: dict[str, CodeType] = {}
    pending = [main]
    while pending:
        path = pending.pop()
        if path in codes:
            continue
        for module, line in _imports_of(plugin_name, path, files[path]):
            if module in ALLOWED_MODULES:
                continue
            if module not in by_module:
                raise ForbiddenImportError(
                    f"plugin '{plugin_name}': {path}:{line}: module '{module}' is not "
                    f"provided to plugins (allowed: {', '.join(ALLOWED_MODULES)})"
                )
            pending.append(by_module[module])
        codes[path] = _compile_file(plugin_name, path, files[path])
    return codes


def _imports_of(plugin_name: str, path: str, source: str) -> list[tuple[str, int]]:
    # checked before the restriction rules, so `import builtins` is named as a forbidden
    # import rather than as a reserved name; a syntax error is left to the compile step
    try:
        return imported_modules(ast.parse(source, filename=path))
    except SyntaxError:
        return []


def _compile_file(plugin_name: str, path: str, source: str) -> CodeType:
    filename = f"{PLUGIN_FILE_PREFIX}{plugin_name}/{path}"
    result = compile_restricted_exec(source, filename=filename, policy=PluginPolicy)
    if result.errors or result.code is None:
        raise PluginLoadError(
            f"plugin '{plugin_name}': " + "; ".join(_located(path, e) for e in result.errors)
        )
    return result.code


def _located(path: str, error: str) -> str:
    match = _LINE.match(error)
    if match is None:
        return f"{path}: {error}"
    return f"{path}:{match.group(1)}: {match.group(2)}"


def _module_name(path: str) -> str:
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


class _ModuleLoader:
    """Runs the plugin's modules, each in its own sandboxed globals, and serves imports."""

    def __init__(
        self,
        plugin_name: str,
        codes: Mapping[str, CodeType],
        sandbox_globals: Mapping[str, Any],
        size: SizeGuards,
    ) -> None:
        self._plugin_name = plugin_name
        self._codes = {_module_name(path): (path, code) for path, code in codes.items()}
        self._extra = dict(sandbox_globals)
        self._rng = random.Random()
        self._guards = guard_globals(size)
        self._builtins = plugin_builtins(size)
        self._builtins["__import__"] = self._import
        self._done: dict[str, SimpleNamespace] = {}
        self._running: set[str] = set()

    def run(self, path: str) -> dict[str, Any]:
        name = _module_name(path)
        code = self._codes[name][1]
        namespace: dict[str, Any] = {
            "__builtins__": self._builtins,
            "__name__": name,
            **self._guards,
            **self._extra,
        }
        self._running.add(name)
        try:
            exec(code, namespace)
        except Exception as exc:
            if isinstance(exc, PluginLoadError):
                raise
            raise PluginLoadError(
                f"plugin '{self._plugin_name}': {path}{_line_of(exc)}: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            self._running.discard(name)
        return namespace

    def _import(
        self,
        name: str,
        globals: Any = None,
        locals: Any = None,
        fromlist: Any = (),
        level: int = 0,
    ) -> Any:
        if level != 0:
            raise ImportError("relative imports are not available to plugins")
        if name in ALLOWED_MODULES:
            if fromlist or "." not in name:
                return module_proxy(name, rng=self._rng)
            return module_proxy(name.partition(".")[0], rng=self._rng)
        if name in self._codes:
            return self._own_module(name)
        raise ImportError(f"module '{name}' is not provided to plugins")

    def _own_module(self, name: str) -> SimpleNamespace:
        if name not in self._done:
            if name in self._running:
                raise ImportError(f"circular import of the plugin's module '{name}'")
            namespace = self.run(self._codes[name][0])
            public = {k: v for k, v in namespace.items() if not k.startswith("_")}
            for extra in self._extra:
                public.pop(extra, None)
            self._done[name] = SimpleNamespace(**public)
        return self._done[name]


def _line_of(exc: BaseException) -> str:
    tb = exc.__traceback__
    line = ""
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith(PLUGIN_FILE_PREFIX):
            line = f":{tb.tb_lineno}"
        tb = tb.tb_next
    return line


def _jobs(plugin_name: str, namespace: Mapping[str, Any]) -> dict[str, Callable[..., Any]]:
    jobs = namespace.get("jobs")
    if jobs is None:
        return {}
    if not isinstance(jobs, dict) or not all(
        isinstance(k, str) and callable(v) for k, v in jobs.items()
    ):
        raise PluginLoadError(
            f"plugin '{plugin_name}': `jobs` must be a dict of job name -> function"
        )
    return dict(jobs)

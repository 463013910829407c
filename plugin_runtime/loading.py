"""A plugin from a folder, a zip or a tar.gz -> `PluginSource`, with plugin.json checked.

Archives may hold the plugin at their root or inside one top-level folder. Paths that
would leave the plugin (absolute, `..`, links) and archives over the size limits are
refused. Every error is a PluginLoadError naming the plugin (or the archive) and the
problem.
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from plugin_runtime.capabilities import Capabilities, detect_capabilities
from plugin_runtime.errors import PluginLoadError
from plugin_runtime.types import PluginSource
from schemas.plugin_json import FIELD_TYPES, METRIC_TYPES, config_fields

MAX_ARCHIVE_BYTES = 10 * 1024 * 1024  # compressed; plugins are code, not data
MAX_UNPACKED_BYTES = 20 * 1024 * 1024  # all text files together, against zip bombs
MAX_FILES = 500
TEXT_SUFFIXES = (".py", ".json", ".md", ".txt", ".csv", ".yaml", ".yml", ".toml")
_SKIPPED_DIRS = frozenset({"__pycache__", ".git", "node_modules", ".pytest_cache"})


def load_plugin(path: str | Path, *, plugin_id: int = 0) -> PluginSource:
    """The plugin at `path`: a folder, a .zip or a .tar.gz/.tgz file."""
    p = Path(path)
    if p.is_dir():
        return load_folder(p, plugin_id=plugin_id)
    if not p.is_file():
        raise PluginLoadError(f"no plugin at {str(p)!r}: not a folder or an archive")
    if p.stat().st_size > MAX_ARCHIVE_BYTES:
        raise PluginLoadError(f"archive {p.name!r} is larger than {MAX_ARCHIVE_BYTES} bytes")
    return load_archive(p.read_bytes(), plugin_id=plugin_id, label=p.name)


def load_folder(folder: Path, *, plugin_id: int = 0) -> PluginSource:
    files: dict[str, str] = {}
    total = 0
    for file in sorted(folder.rglob("*")):
        rel = file.relative_to(folder)
        if any(part in _SKIPPED_DIRS for part in rel.parts) or not file.is_file():
            continue
        if file.is_symlink() or not file.resolve().is_relative_to(folder.resolve()):
            raise PluginLoadError(f"plugin folder {str(folder)!r}: {rel} points outside it")
        if file.suffix in TEXT_SUFFIXES:
            total += file.stat().st_size
            _check_totals(str(folder), len(files) + 1, total)
            files[rel.as_posix()] = _decode(str(folder), rel.as_posix(), file.read_bytes())
    return source_from_files(files, plugin_id=plugin_id, label=str(folder))


def load_archive(data: bytes, *, plugin_id: int = 0, label: str = "archive") -> PluginSource:
    """A plugin from zip or tar.gz bytes."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise PluginLoadError(f"{label}: larger than {MAX_ARCHIVE_BYTES} bytes")
    if zipfile.is_zipfile(io.BytesIO(data)):
        entries = _zip_entries(data, label)
    else:
        try:
            entries = _tar_entries(data, label)
        except tarfile.TarError:
            raise PluginLoadError(f"{label}: could not be read as zip or tar.gz") from None
    return source_from_files(_strip_top_folder(entries), plugin_id=plugin_id, label=label)


def _zip_entries(data: bytes, label: str) -> dict[str, bytes]:
    entries: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        _check_totals(label, len(infos), sum(i.file_size for i in infos))
        for info in infos:
            name = _safe_path(label, info.filename)
            if name is not None:
                entries[name] = archive.read(info)
    return entries


def _tar_entries(data: bytes, label: str) -> dict[str, bytes]:
    entries: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        members = archive.getmembers()
        for member in members:
            if member.issym() or member.islnk():
                raise PluginLoadError(f"{label}: {member.name!r} is a link, links are refused")
        files = [m for m in members if m.isfile()]
        _check_totals(label, len(files), sum(m.size for m in files))
        for member in files:
            name = _safe_path(label, member.name)
            handle = archive.extractfile(member)
            if name is not None and handle is not None:
                entries[name] = handle.read()
    return entries


def _safe_path(label: str, name: str) -> str | None:
    normal = posixpath.normpath(name.replace("\\", "/"))
    if normal.startswith("/") or normal == ".." or normal.startswith("../") or ":" in normal:
        raise PluginLoadError(f"{label}: entry {name!r} points outside the plugin")
    parts = normal.split("/")
    if any(p in _SKIPPED_DIRS or p == "__MACOSX" for p in parts):
        return None
    return normal if normal.endswith(TEXT_SUFFIXES) else None


def _check_totals(label: str, count: int, size: int) -> None:
    if count > MAX_FILES:
        raise PluginLoadError(f"{label}: more than {MAX_FILES} files")
    if size > MAX_UNPACKED_BYTES:
        raise PluginLoadError(f"{label}: more than {MAX_UNPACKED_BYTES} bytes unpacked")


def _strip_top_folder(entries: dict[str, bytes]) -> dict[str, bytes]:
    # `my-plugin/plugin.json` -> `plugin.json` when everything sits in one folder
    tops = {name.split("/", 1)[0] for name in entries}
    if len(tops) == 1 and all("/" in name for name in entries):
        return {name.split("/", 1)[1]: data for name, data in entries.items()}
    return entries


def _decode(label: str, name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PluginLoadError(f"{label}: {name} is not UTF-8 text") from None


def source_from_files(
    files: Mapping[str, str | bytes], *, plugin_id: int = 0, label: str = "plugin"
) -> PluginSource:
    """A PluginSource from its files; plugin.json is required and checked."""
    text = {
        name: data if isinstance(data, str) else _decode(label, name, data)
        for name, data in files.items()
    }
    if "plugin.json" not in text:
        raise PluginLoadError(f"{label}: no plugin.json at the plugin's root")
    try:
        plugin_json = json.loads(text["plugin.json"])
    except ValueError as exc:
        raise PluginLoadError(f"{label}: plugin.json is not valid JSON: {exc}") from None
    validate_plugin_json(plugin_json, label=label)
    source = PluginSource(
        id=plugin_id, name=plugin_json["name"], plugin_json=plugin_json, files=text
    )
    if source.main not in text:
        raise PluginLoadError(
            f"plugin {source.name!r}: main module {source.main!r} is not in the plugin"
        )
    return source


def plugin_capabilities(source: PluginSource) -> Capabilities:
    """What the plugin defines, read from its code without running it."""
    return detect_capabilities(source.files, source.main, source.name)


def validate_plugin_json(plugin_json: Any, *, label: str = "plugin") -> None:
    """Check plugin.json against the schema of schemas/plugin_json.py; raises
    PluginLoadError naming the plugin, the key and the problem."""
    if not isinstance(plugin_json, dict):
        raise PluginLoadError(f"{label}: plugin.json must hold a JSON object")
    name = plugin_json.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PluginLoadError(f"{label}: plugin.json needs a non-empty string `name`")
    where = f"plugin {name!r}"
    for key in ("description", "url", "main"):
        if key in plugin_json and not isinstance(plugin_json[key], str):
            raise PluginLoadError(f"{where}: plugin.json `{key}` must be a string")
    main = plugin_json.get("main")
    if main is not None and (not main.endswith(".py") or main.startswith(("/", ".."))):
        raise PluginLoadError(f"{where}: `main` must name a .py file inside the plugin")
    metrics = plugin_json.get("metrics", {})
    if not isinstance(metrics, dict) or any(
        not isinstance(kind, str) or kind.lower() not in METRIC_TYPES for kind in metrics.values()
    ):
        raise PluginLoadError(f"{where}: `metrics` must map names to one of {METRIC_TYPES}")
    config = plugin_json.get("config", [])
    if not isinstance(config, list | dict):
        raise PluginLoadError(f"{where}: `config` must be a list of fields")
    seen: set[str] = set()
    for field in config_fields(plugin_json):
        _validate_field(where, field, seen)


def _validate_field(where: str, field: dict[str, Any], seen: set[str]) -> None:
    key = field["key"]
    if not isinstance(key, str):
        raise PluginLoadError(f"{where}: config field key {key!r} must be a string")
    if key in seen:
        raise PluginLoadError(f"{where}: config key {key!r} is declared twice")
    seen.add(key)
    kind = field.get("type", "string")
    if kind not in FIELD_TYPES:
        raise PluginLoadError(
            f"{where}: config key {key!r} has type {kind!r}; use one of {', '.join(FIELD_TYPES)}"
        )
    choices = field.get("choices")
    if kind == "choice" and (
        not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices)
    ):
        raise PluginLoadError(f"{where}: config key {key!r} of type choice needs `choices`")
    for flag in ("required", "secret"):
        if flag in field and not isinstance(field[flag], bool):
            raise PluginLoadError(f"{where}: config key {key!r}: `{flag}` must be true or false")
    default = field.get("default")
    if default is not None and not isinstance(default, str):
        raise PluginLoadError(f"{where}: config key {key!r}: `default` must be a string")
    if kind == "choice" and default is not None and default not in (choices or []):
        raise PluginLoadError(f"{where}: config key {key!r}: default {default!r} is not a choice")

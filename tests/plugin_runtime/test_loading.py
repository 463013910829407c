"""Plugins from folders and archives, plugin.json and config checks, secret redaction."""

from __future__ import annotations

import io
import json
import re
import tarfile
import zipfile
from pathlib import Path

import pytest

from plugin_runtime import loading
from plugin_runtime.config_validation import redact_config, validate_config
from plugin_runtime.errors import PluginConfigError, PluginLoadError
from plugin_runtime.loading import load_archive, load_plugin, plugin_capabilities
from plugin_runtime.types import Attachment

PLUGIN_JSON = {"name": "testplugin", "main": "main.py"}
CODE = "def process_event(event, meta):\n    return event\n\njobs = {'x': None}\n"


def _zip(entries: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in entries.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _tgz(entries: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in entries.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


ENTRIES = {"testplugin/plugin.json": json.dumps(PLUGIN_JSON), "testplugin/main.py": CODE}


@pytest.mark.parametrize("pack", [_zip, _tgz])
def test_archive_with_a_single_top_folder_loads(pack):
    source = load_archive(pack(ENTRIES), plugin_id=60)
    assert (source.id, source.name, source.main) == (60, "testplugin", "main.py")
    assert source.files["main.py"] == CODE


def test_folder_loads_and_capabilities_are_detected(tmp_path: Path):
    (tmp_path / "plugin.json").write_text(json.dumps({"name": "f"}))
    (tmp_path / "plugin.py").write_text(CODE)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.py").write_text("")
    source = load_plugin(tmp_path)
    assert set(source.files) == {"plugin.json", "plugin.py"}
    assert plugin_capabilities(source).as_json() == {
        "methods": ["processEvent"],
        "scheduled_tasks": [],
        "jobs": ["x"],
    }


@pytest.mark.parametrize("pack", [_zip, _tgz])
def test_path_traversal_is_refused(pack):
    with pytest.raises(PluginLoadError, match="outside the plugin"):
        load_archive(pack({**ENTRIES, "../evil.py": "x = 1"}))


def test_oversized_archive_is_refused(monkeypatch):
    monkeypatch.setattr(loading, "MAX_UNPACKED_BYTES", 100)
    with pytest.raises(PluginLoadError, match="unpacked"):
        load_archive(_zip({**ENTRIES, "testplugin/big.py": "#" * 200}))


def test_unreadable_archive_is_refused():
    with pytest.raises(PluginLoadError, match=re.escape("could not be read as zip or tar.gz")):
        load_archive(b"this is not a zip")


def test_bad_plugin_json_names_the_problem():
    with pytest.raises(PluginLoadError, match=re.escape("plugin.json is not valid JSON")):
        load_archive(_zip({"plugin.json": "{", "plugin.py": CODE}))
    with pytest.raises(
        PluginLoadError, match=re.escape("main module 'main.py' is not in the plugin")
    ):
        load_archive(_zip({"plugin.json": json.dumps(PLUGIN_JSON)}))


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"key": "a", "type": "number"}, "config key 'a' has type 'number'"),
        ({"key": "a", "type": "choice"}, "config key 'a' of type choice needs `choices`"),
        ({"key": "a", "required": "yes"}, "`required` must be true or false"),
        ({"key": "a", "type": "choice", "choices": ["x"], "default": "y"}, "not a choice"),
    ],
)
def test_bad_config_schema_names_plugin_and_key(field, message):
    plugin_json = {"name": "p", "config": [field]}
    with pytest.raises(PluginLoadError, match="plugin 'p'") as info:
        load_archive(_zip({"plugin.json": json.dumps(plugin_json), "plugin.py": CODE}))
    assert message in str(info.value)


SCHEMA = {
    "name": "p",
    "config": [
        {"key": "url", "name": "URL", "required": True},
        {"key": "mode", "type": "choice", "choices": ["fast", "slow"], "default": "fast"},
        {"key": "rules", "type": "json"},
        {"key": "token", "secret": True},
        {"key": "file", "type": "attachment", "required": True},
    ],
}
FILE = {"file": Attachment("f.txt", "text/plain", b"x")}


def test_valid_config_gets_defaults():
    config = validate_config(SCHEMA, {"url": "https://x", "rules": "[1]"}, FILE)
    assert config == {"url": "https://x", "mode": "fast", "rules": "[1]"}


@pytest.mark.parametrize(
    ("config", "attachments", "message"),
    [
        ({}, FILE, "config key 'url' is required"),
        ({"url": "u", "mode": "medium"}, FILE, "'mode' must be one of fast, slow"),
        ({"url": "u", "rules": "{"}, FILE, "'rules' is not valid JSON"),
        ({"url": 5}, FILE, "'url' must be a string"),
        ({"url": "u", "other": "x"}, FILE, "'other' is not declared"),
        ({"url": "u"}, {}, "attachment 'file' is required"),
    ],
)
def test_bad_config_is_refused_naming_the_key(config, attachments, message):
    with pytest.raises(PluginConfigError, match="plugin 'p'") as info:
        validate_config(SCHEMA, config, attachments)
    assert message in str(info.value)


def test_secrets_are_redacted_for_logging():
    assert redact_config(SCHEMA, {"url": "u", "token": "s3cret"}) == {
        "url": "u",
        "token": "********",
    }

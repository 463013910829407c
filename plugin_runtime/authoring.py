"""`plugin-server plugin test PATH [--events FILE] [--config k=v] [--attachment k=FILE]`:
a plugin folder on sample events.

Runs the plugin through `PluginHarness` (the server's compiler, sandbox and limits), and
prints, readably, what each event became and what the plugin logged, requested and
captured. No network: `fetch` calls are answered with a failure and listed.
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from typing import Any, TextIO

from plugin_runtime.config_validation import redact_config
from plugin_runtime.errors import PluginError, RetryError
from plugin_runtime.loading import load_plugin
from plugin_runtime.testing import PluginHarness
from plugin_runtime.types import Attachment
from schemas.plugin_json import config_fields

EXIT_OK = 0
EXIT_PLUGIN_FAILED = 1  # the plugin raised on at least one call
EXIT_UNUSABLE = 2  # the plugin, its config or the events file could not be used

SAMPLE_EVENTS: list[dict[str, Any]] = [
    {
        "event": "$pageview",
        "distinct_id": "user-1",
        "properties": {"$current_url": "https://example.com/", "$ip": "81.2.69.142"},
    },
    {"event": "signed up", "distinct_id": "user-1", "properties": {"plan": "free"}},
    {"event": "$autocapture", "distinct_id": "user-2", "properties": {"$event_type": "click"}},
]


def read_events(path: str | None) -> list[dict[str, Any]]:
    """Events from a JSON array or JSON lines file; the sample events when no file."""
    if path is None:
        return [dict(e) for e in SAMPLE_EVENTS]
    text = Path(path).read_text()
    stripped = text.lstrip()
    if stripped.startswith("["):
        events = json.loads(stripped)
    else:
        events = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not all(isinstance(e, dict) for e in events):
        raise ValueError(f"{path}: every event must be a JSON object")
    return list(events)


def default_config(plugin_json: dict[str, Any]) -> dict[str, Any]:
    return {
        str(f["key"]): f["default"]
        for f in config_fields(plugin_json)
        if f.get("default") is not None and f.get("type") != "attachment"
    }


def read_attachment_files(pairs: list[str]) -> dict[str, Attachment]:
    """`key=FILE` pairs into attachments read from the files; ValueError names a bad one."""
    found: dict[str, Attachment] = {}
    for pair in pairs:
        key, sep, name = pair.partition("=")
        if not sep or not key or not name:
            raise ValueError(f"expected key=FILE, got {pair!r}")
        path = Path(name)
        try:
            contents = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"attachment {key!r}: cannot read {name!r}: {exc.strerror}") from None
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        found[key] = Attachment(file_name=path.name, content_type=kind, contents=contents)
    return found


def run_plugin_test(
    path: str,
    events_file: str | None,
    out: TextIO,
    *,
    config: dict[str, Any] | None = None,
    attachments: dict[str, Attachment] | None = None,
) -> int:
    """Run the plugin at `path` on the events of `events_file` (or sample events) and
    print the results to `out`. Returns 0 when every call succeeded, 1 when the plugin
    raised, 2 when the plugin, its config or the events could not be used."""
    try:
        source = load_plugin(path)
        settings = {**default_config(source.plugin_json), **(config or {})}
        out.write(f"plugin {source.name!r} ({source.main})\n")
        out.write(f"config {json.dumps(redact_config(source.plugin_json, settings))}\n")
        harness = PluginHarness(source, config=settings, attachments=attachments)
        events = read_events(events_file)
    except (PluginError, OSError, ValueError) as exc:
        out.write(f"error: {type(exc).__name__}: {exc}\n")
        return EXIT_UNUSABLE
    failures = _run(harness, events, out)
    _report(harness, out)
    out.write(f"\n{len(events)} events, {failures} failed call(s)\n")
    return EXIT_PLUGIN_FAILED if failures else EXIT_OK


def _as_server(method: Any) -> Any:
    # the command shows what the server would do with each sample event: filled in first
    return lambda *args: method(*args, as_server=True)


def _call(out: TextIO, label: str, fn: Any, *args: Any) -> tuple[bool, Any]:
    try:
        return True, fn(*args)
    except RetryError as exc:
        out.write(f"  {label}: RetryError (the server would retry): {exc}\n")
    except Exception as exc:
        out.write(f"  {label}: {type(exc).__name__}: {exc}\n")
    return False, None


def _run(h: PluginHarness, events: list[dict[str, Any]], out: TextIO) -> int:
    failures = 0
    ok, _ = _call(out, "setup_plugin", h.setup)
    failures += not ok
    kept = []
    for n, event in enumerate(events, 1):
        out.write(f"\nevent {n}: {event.get('event')!r}\n")
        if not h.instance.has("process_event"):
            kept.append(h.event(event))
            continue
        ok, result = _call(out, "process_event", _as_server(h.process_event), event)
        failures += not ok
        if ok and result is None:
            out.write("  dropped\n")
        elif ok:
            kept.append(result)
            shown = json.dumps(result, indent=2, default=str).replace("\n", "\n  ")
            out.write(f"  -> {shown}\n")
    for event in kept if h.instance.has("on_event") else []:
        ok, _ = _call(out, f"on_event({event.get('event')!r})", _as_server(h.on_event), event)
        failures += not ok
    if h.instance.has("export_events") and kept:
        ok, _ = _call(out, f"export_events({len(kept)} events)", _as_server(h.export_events), kept)
        failures += not ok
    if h.instance.has("teardown_plugin"):
        ok, _ = _call(out, "teardown_plugin", h.teardown)
        failures += not ok
    return failures


def _report(h: PluginHarness, out: TextIO) -> None:
    if h.logs:
        out.write("\nlogs:\n")
        for line in h.logs:
            out.write(f"  [{line['level']}] {line['message']}\n")
    if h.requests:
        out.write("\nrequests (not sent: no network in plugin test):\n")
        for request in h.requests:
            out.write(f"  {request['method']} {request['url']}\n")
    if h.captures:
        out.write("\ncaptured events:\n")
        for capture in h.captures:
            out.write(f"  {capture['event']} {json.dumps(capture['properties'], default=str)}\n")
    if h.cache or h.storage:
        out.write(f"\ncache: {json.dumps(h.cache, default=str)}\n")
        out.write(f"storage: {json.dumps(h.storage, default=str)}\n")

"""The embedded mode as a user runs it: `plugin-server dev --once` and `ingest`."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from app.cli import main
from app.dev import EXAMPLE


def test_dev_once_shows_the_example_events_processed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert main(["dev", "--once"]) == 0
    out = capsys.readouterr().out
    assert "5 events in: 5 stored, 0 dropped by plugins, 0 dead letters" in out
    assert out.count('"stamped_by":"event-stamp"') == 5
    # $identify joined the anonymous id to bob's person
    persons = {line.split()[2]: line.split()[-1] for line in out.splitlines() if " person " in line}
    assert persons["anon-7f3"] == persons["bob@example.com"]


def test_ingest_reports_bad_lines_as_dead_letters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    lines = (EXAMPLE / "events.jsonl").read_bytes().splitlines()[:2]
    bad = orjson.dumps({"team_id": 1, "uuid": "nope", "distinct_id": "x", "data": "{}"})
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"\n".join([*lines, b"{broken", bad]) + b"\n")
    assert main(["ingest", str(source), "--plugin", str(EXAMPLE / "plugin")]) == 0
    assert "4 events in: 2 stored, 0 dropped by plugins, 2 dead letters" in capsys.readouterr().out
    letters = (tmp_path / "dev" / "dead_letters.jsonl").read_bytes().splitlines()
    reasons = sorted(orjson.loads(line)["error"] for line in letters)
    assert reasons[0] == 'Not a valid UUID: "nope"'
    assert reasons[1].startswith("message is not valid JSON")


TICKING_PLUGIN = """
def run_every_minute(meta):
    meta.storage.set("minutes", meta.storage.get("minutes", 0) + 1)
    meta.jobs.count_job().run_now()

def count_job(payload, meta):
    meta.storage.set("jobs", meta.storage.get("jobs", 0) + 1)

jobs = {"count_job": count_job}
"""


def test_the_dev_server_runs_the_schedule_and_jobs_while_it_serves(tmp_path: Path) -> None:
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    from sqlalchemy import create_engine, select

    from schemas.tables import plugin_logs, plugin_storage

    plugin = tmp_path / "ticking"
    plugin.mkdir()
    (plugin / "plugin.py").write_text(TICKING_PLUGIN)
    (plugin / "plugin.json").write_text('{"name": "ticking", "main": "plugin.py"}')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DATA_DIR": str(tmp_path), "SCHEDULE_TEST_PERIOD_SECONDS": "0.5"}
    command = [sys.executable, "-m", "app.cli", "dev", "--plugin", str(plugin)]
    server = subprocess.Popen(
        [*command, "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        database = tmp_path / "dev" / "plugin-server.db"
        deadline = time.monotonic() + 60
        values: dict[str, int] = {}
        while time.monotonic() < deadline and values.get("jobs", 0) < 3:
            time.sleep(0.5)
            if database.exists():
                engine = create_engine(f"sqlite:///{database}")
                try:
                    with engine.connect() as conn:
                        rows = conn.execute(select(plugin_storage.c.key, plugin_storage.c.value))
                        values = {k: int(v) for k, v in rows}
                except Exception:
                    values = {}  # not migrated yet
                finally:
                    engine.dispose()
    finally:
        server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=30)[0].decode()
    assert values.get("minutes", 0) >= 3, output
    assert values.get("jobs", 0) >= 3, output
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        lines = [m for (m,) in conn.execute(select(plugin_logs.c.message))]
    engine.dispose()
    assert any(m.startswith("run_every_minute for the period from") for m in lines)


def test_dev_says_which_plugin_did_not_set_up_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = tmp_path / "broken"
    plugin.mkdir()
    (plugin / "plugin.py").write_text(
        "def setup_plugin(meta):\n    raise ValueError('no API key')\n\n"
        "def process_event(event, meta):\n    return event\n"
    )
    (plugin / "plugin.json").write_text('{"name": "broken", "main": "plugin.py"}')
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert main(["dev", "--once", "--plugin", str(plugin)]) == 0
    out = capsys.readouterr().out
    line = "plugin 'broken' (team 1) did not load: ValueError: no API key"
    assert line in out
    assert out.index(line) < out.index("events in:")

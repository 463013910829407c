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

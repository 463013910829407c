"""`plugin-server plugin install|config|list|logs|test`: plugins run by an operator,
without Python, checked against plugin.json, secrets never printed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, insert, select, update

from plugin_runtime.backends.sql import _ordered_id
from schemas.tables import plugin_attachments, plugin_configs, plugin_logs
from tests.app.test_admin_teams import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"
WEBHOOK = EXAMPLES / "webhook-exporter"


def _setup(tmp_path: Path) -> str:
    database = f"sqlite:///{tmp_path}/admin.db"
    assert cli("--migrate", database=database).returncode == 0
    assert cli("team", "create", "Acme", database=database).returncode == 0
    return database


def _fields(stdout: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in stdout.splitlines() if ": " in line)


def test_install_configure_and_list_a_plugin(tmp_path: Path) -> None:
    database = _setup(tmp_path)
    installed = cli("plugin", "install", str(WEBHOOK), database=database)
    assert installed.returncode == 0, installed.stderr
    fields = _fields(installed.stdout)
    assert fields["plugin_id"] == "1" and fields["name"] == "Webhook Exporter"
    assert "export_events" in fields["capabilities"]

    missing = cli("plugin", "config", "1", "1", database=database)
    assert missing.returncode == 2 and "config key 'url' is required" in missing.stderr
    configured = cli(
        "plugin",
        "config",
        "1",
        "1",
        "--set",
        "url=https://hooks.example.com/in",
        "--set",
        "authToken=s3cret",
        database=database,
    )
    assert configured.returncode == 0, configured.stderr
    assert "plugin config 1: team 1, plugin 1 (Webhook Exporter), enabled" in configured.stdout
    assert "s3cret" not in configured.stdout and "********" in configured.stdout
    unknown = cli("plugin", "config", "1", "1", "--set", "colour=red", database=database)
    assert unknown.returncode == 2 and "'colour' is not declared" in unknown.stderr
    assert (
        cli("plugin", "config", "9", "1", database=database)
        .stderr.strip()
        .endswith("no team with id 9")
    )

    disabled = cli("plugin", "config", "1", "1", "--disable", "--order", "3", database=database)
    assert "disabled, order 3" in disabled.stdout
    engine = create_engine(database)
    with engine.begin() as conn:
        row = conn.execute(select(plugin_configs)).one()
        assert row.config == {"url": "https://hooks.example.com/in", "authToken": "s3cret"}
        conn.execute(
            update(plugin_configs).values(
                enabled=True, error={"message": "boom", "name": "ValueError", "time": "t1"}
            )
        )
    listed = cli("plugin", "list", database=database).stdout
    assert "Webhook Exporter (export_events" in listed
    config_line = next(line for line in listed.splitlines() if line.split()[:3] == ["1", "1", "1"])
    assert config_line.split()[3:5] == ["3", "failing"]
    assert "last error t1: boom" in listed
    with engine.begin() as conn:
        conn.execute(
            update(plugin_configs).values(
                budget={"state": "paused", "reason": "its budget ran out", "until": "t2"}
            )
        )
    paused = cli("plugin", "list", database=database).stdout
    assert "paused" in paused and "budget paused until t2: its budget ran out" in paused
    cli("plugin", "config", "1", "1", "--enable", database=database)
    with engine.connect() as conn:
        row = conn.execute(select(plugin_configs.c.error, plugin_configs.c.budget)).one()
        assert (row.error, row.budget) == (None, None)
    engine.dispose()


def test_attachments_are_uploaded_and_a_new_version_replaces_the_code(tmp_path: Path) -> None:
    database = _setup(tmp_path)
    plugin = tmp_path / "with-rules"
    plugin.mkdir()
    (plugin / "plugin.py").write_text("def process_event(event, meta):\n    return event\n")
    (plugin / "plugin.json").write_text(
        json.dumps(
            {
                "name": "with rules",
                "main": "plugin.py",
                "config": [{"key": "rules", "type": "attachment", "required": True}],
            }
        )
    )
    rules = tmp_path / "rules.csv"
    rules.write_text("a,b\n")
    cli("plugin", "install", str(plugin), database=database)
    refused = cli("plugin", "config", "1", "1", database=database)
    assert refused.returncode == 2 and "attachment 'rules' is required" in refused.stderr
    bad = cli("plugin", "config", "1", "1", "--attachment", "rules=nope.csv", database=database)
    assert bad.returncode == 2 and "cannot read 'nope.csv'" in bad.stderr
    ok = cli("plugin", "config", "1", "1", "--attachment", f"rules={rules}", database=database)
    assert ok.returncode == 0, ok.stderr
    engine = create_engine(database)
    with engine.connect() as conn:
        attachment = conn.execute(select(plugin_attachments)).one()
    engine.dispose()
    assert (attachment.key, attachment.file_name, attachment.contents) == (
        "rules",
        "rules.csv",
        b"a,b\n",
    )
    (plugin / "plugin.py").write_text("def process_event(event, meta):\n    return None\n")
    replaced = cli("plugin", "install", str(plugin), "--replace", "1", database=database)
    assert replaced.returncode == 0 and _fields(replaced.stdout)["plugin_id"] == "1"
    assert (
        "no plugin with id 5"
        in cli("plugin", "install", str(plugin), "--replace", "5", database=database).stderr
    )


def test_logs_print_a_configs_entries_by_level_and_time(tmp_path: Path) -> None:
    database = _setup(tmp_path)
    cli("plugin", "install", str(WEBHOOK), database=database)
    cli("plugin", "config", "1", "1", "--set", "url=https://x.example", database=database)
    engine = create_engine(database)
    with engine.begin() as conn:
        for level, message, when in [
            ("info", "sent 3 events", datetime(2026, 1, 1, 10, tzinfo=UTC)),
            ("error", "webhook refused", datetime(2026, 1, 1, 11, tzinfo=UTC)),
        ]:
            conn.execute(
                insert(plugin_logs).values(
                    id=_ordered_id(),
                    team_id=1,
                    plugin_id=1,
                    plugin_config_id=1,
                    timestamp=when,
                    source="PLUGIN",
                    level=level,
                    message=message,
                )
            )
    engine.dispose()
    every = cli("plugin", "logs", "1", database=database).stdout.splitlines()
    assert [line.split("  ")[-1].strip() for line in every] == ["sent 3 events", "webhook refused"]
    assert every[0].startswith("2026-01-01T10:00:00.000+00:00  INFO")
    errors = cli("plugin", "logs", "1", "--level", "warning", database=database).stdout
    assert errors.splitlines() == [every[1]]
    later = cli("plugin", "logs", "1", "--since", "2026-01-01T10:30:00", database=database)
    assert later.stdout.splitlines() == [every[1]]
    assert "no plugin config with id 4" in cli("plugin", "logs", "4", database=database).stderr


def test_plugin_test_takes_a_config_and_attachments(tmp_path: Path) -> None:
    tried = cli(
        "plugin",
        "test",
        str(WEBHOOK),
        "--config",
        "url=http://127.0.0.1:9/hook",
        database="sqlite:///unused.db",
    )
    assert "POST http://127.0.0.1:9/hook" in tried.stdout
    assert (
        "config key 'url' is required"
        in cli("plugin", "test", str(WEBHOOK), database="sqlite:///unused.db").stdout
    )

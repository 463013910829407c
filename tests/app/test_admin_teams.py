"""`plugin-server team create|list|set`: teams and their API keys without writing Python."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.admin.errors import AdminError
from app.admin.teams import create_team, list_teams, parse_assignments, set_team
from app.stores.plugin_configs import ensure_team
from app.stores.teams import TeamStore

PLUGIN_SERVER = str(Path(sys.executable).parent / "plugin-server")  # the installed command


def cli(*args: str, database: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database, "EVENTS_STORE": "postgres"}  # SQL events
    return subprocess.run(
        [PLUGIN_SERVER, *args], env=env, capture_output=True, text=True, check=False
    )


def test_the_commands_create_list_and_set_a_team(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/admin.db"
    assert cli("--migrate", database=database).returncode == 0
    created = cli("team", "create", "Acme", database=database)
    assert created.returncode == 0, created.stderr
    fields = dict(line.split(": ", 1) for line in created.stdout.splitlines())
    assert fields["team_id"] == "1" and fields["api_key"].startswith("phc_")
    changed = cli("team", "set", "1", "anonymize_ips=true", "name=Acme Inc", database=database)
    assert changed.stdout.strip() == "team 1: name='Acme Inc' anonymize_ips=true"
    listed = cli("team", "list", database=database).stdout.splitlines()
    assert listed[1].split() == ["1", "true", "false", "Acme", "Inc"]


def test_wrong_input_names_what_was_wrong_with_a_usage_exit_code(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/admin.db"
    unmigrated = cli("team", "list", database=database)
    assert unmigrated.returncode == 69 and "--migrate" in unmigrated.stderr
    cli("--migrate", database=database)
    unknown = cli("team", "set", "1", "colour=red", database=database)
    assert unknown.returncode == 2 and "unknown team setting 'colour'" in unknown.stderr
    missing = cli("team", "set", "7", "name=x", database=database)
    assert missing.returncode == 2 and "no team with id 7" in missing.stderr
    assert "Traceback" not in unknown.stderr + missing.stderr + unmigrated.stderr


async def test_a_created_teams_key_is_accepted_and_a_setting_reaches_ingestion(
    sql_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await ensure_team(sql_engine, 1)  # a team made with a chosen id, as the embedded mode does
    team = await create_team(sql_engine, "second")
    assert team.id == 2
    store = TeamStore(sql_engine)
    assert team.api_token is not None and await store.id_for_token(team.api_token) == 2
    assert not (await store.get_many({2}))[2].anonymize_ips  # type: ignore[union-attr]
    await set_team(sql_engine, 2, parse_assignments(["anonymize_ips=on"]))
    monkeypatch.setattr("app.stores.teams.TEAM_CACHE_SECONDS", 0.0)  # the cache has expired
    assert (await store.get_many({2}))[2].anonymize_ips  # type: ignore[union-attr]
    assert [t.name for t in await list_teams(sql_engine)] == ["team 1", "second"]


def test_values_are_checked_before_anything_is_written() -> None:
    with pytest.raises(AdminError, match="anonymize_ips must be true or false"):
        parse_assignments(["anonymize_ips=maybe"])
    with pytest.raises(AdminError, match="expected key=value"):
        parse_assignments(["anonymize_ips"])

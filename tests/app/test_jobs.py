"""Plugin jobs and export retries through the plugin host: persisted, so a restart of the
process loses none; RetryError reschedules with backoff; other errors end the job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, select, update

from app.plugin_host import PluginHost, open_host
from app.settings import load_settings
from schemas.tables import metadata, plugin_jobs
from tests.plugin_runtime.runtime_fixtures import TEAM, event, record

JOBS = """
def remember(payload, meta):
    meta.storage.set("got", payload)

def later(payload, meta):
    raise RetryError("not yet")

def broken(payload, meta):
    raise ValueError("no")

jobs = {"remember": remember, "later": later, "broken": broken}

def run_every_minute(meta):
    meta.jobs.remember({"n": 1}).run_now()
    meta.jobs.later().run_now()
    meta.jobs.broken().run_in(0, "seconds")
"""

FLAKY_EXPORT = """
def export_events(events, meta):
    calls = meta.storage.get("calls", 0) + 1
    meta.storage.set("calls", calls)
    if calls == 1:
        raise RetryError("sink down")
    meta.storage.set("delivered", [e["event"] for e in events])
"""


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/plugins.db")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


async def _host(engine, code: str) -> PluginHost:
    host = open_host(load_settings(), engine, embedded=True)
    await host.runtime.load([record(code)])
    return host


def _jobs(engine):
    with engine.connect() as conn:
        return {r.name: r for r in conn.execute(select(plugin_jobs)).all()}


def _due_now(engine) -> None:
    # the time a retry waits, passed
    with engine.begin() as conn:
        conn.execute(update(plugin_jobs).values(run_at=datetime.now(UTC) - timedelta(seconds=1)))


async def test_jobs_enqueued_before_a_restart_run_after_it(engine):
    host = await _host(engine, JOBS)
    await host.runtime.run_scheduled(39, "run_every_minute")
    await host.close()
    assert set(_jobs(engine)) == {"remember", "later", "broken"}

    host = await _host(engine, JOBS)
    assert await host.run_due_jobs() == 3
    await host.close()
    assert host.backends.storage.get(39, "got") == '{"n":1}'
    rows = _jobs(engine)
    assert "remember" not in rows  # done jobs leave the table
    later, broken = rows["later"], rows["broken"]
    assert (later.state, later.attempts, later.error) == ("scheduled", 1, "RetryError: not yet")
    wait = later.run_at.replace(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(seconds=4) < wait <= timedelta(seconds=6)
    assert (broken.state, broken.error) == ("failed", "ValueError: no")


async def test_an_export_retry_survives_a_restart(engine):
    host = await _host(engine, FLAKY_EXPORT)
    await host.runtime.export_events(TEAM, [event("a"), event("b")])
    await host.runtime.flush_exports()
    await host.close()
    (retry,) = _jobs(engine).values()
    assert retry.name == "exportEventsWithRetry" and retry.state == "scheduled"

    _due_now(engine)
    host = await _host(engine, FLAKY_EXPORT)
    assert await host.run_due_jobs() == 1
    await host.close()
    assert host.backends.storage.get(39, "delivered") == '["a","b"]'
    assert _jobs(engine) == {}


def test_jobs_list_shows_what_waits_and_what_failed_by_team_and_state(tmp_path):
    from sqlalchemy import insert

    from tests.app.test_admin_teams import cli

    database = f"sqlite:///{tmp_path}/admin.db"
    assert cli("--migrate", database=database).returncode == 0
    engine = create_engine(database)
    with engine.begin() as conn:
        for row in [
            {
                "team_id": 1,
                "plugin_config_id": 5,
                "name": "sync",
                "payload": "{}",
                "run_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            },
            {
                "team_id": 2,
                "plugin_config_id": 6,
                "name": "push",
                "payload": "null",
                "run_at": datetime(2026, 1, 1, tzinfo=UTC),
                "state": "failed",
                "attempts": 16,
                "error": "RetryError after 16 attempts: down\ntrace",
            },
        ]:
            conn.execute(insert(plugin_jobs).values(row))
    engine.dispose()
    every = cli("jobs", "list", database=database).stdout.splitlines()
    assert [line.split()[1:6] for line in every[1:]] == [
        ["2", "6", "failed", "16", "2026-01-01"],
        ["1", "5", "scheduled", "0", "2026-01-02"],
    ]
    assert every[1].endswith("push: RetryError after 16 attempts: down")
    failed = cli("jobs", "list", "--state", "failed", "--team", "2", database=database)
    assert len(failed.stdout.splitlines()) == 2
    none = cli("jobs", "list", "--team", "1", "--state", "failed", database=database)
    assert none.stdout.splitlines()[1:] == []

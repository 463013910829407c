"""The persisted job queue on SQLite and on the real Postgres: due jobs only, one holder
per job, a lease that hands a dead worker's job on, and outcomes only its holder sets."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, select, text

from plugin_runtime.backends.sql_jobs import SqlJobQueue
from plugin_runtime.errors import IllegalOperationError
from schemas.tables import metadata, plugin_jobs
from tests.plugin_runtime.backends.test_sql import _postgres_url

LEASE = timedelta(seconds=60)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def engine(request, tmp_path):
    """A database of its own: a claim takes every due job, whoever enqueued it."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path}/jobs.db")
    else:
        schema = f"j_{uuid.uuid4().hex[:8]}"
        admin = create_engine(_postgres_url())
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        admin.dispose()
        engine = create_engine(_postgres_url(), connect_args={"options": f"-csearch_path={schema}"})
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def _config() -> int:
    return uuid.uuid4().int % 10**9


def _mine(jobs, config):
    return [j for j in jobs if j.plugin_config_id == config]


def _add(queue, config, name="job", payload=None, at=None):
    queue.enqueue(
        plugin_config_id=config,
        team_id=2,
        name=name,
        payload=payload,
        run_at=at or datetime.now(UTC),
    )


def _rows(engine, config):
    with engine.connect() as conn:
        return conn.execute(
            select(plugin_jobs).where(plugin_jobs.c.plugin_config_id == config)
        ).all()


def test_only_due_jobs_are_claimed_oldest_first_with_their_payload(engine):
    queue, config, now = SqlJobQueue(engine, lease=LEASE), _config(), datetime.now(UTC)
    _add(queue, config, "second", {"n": 2}, now - timedelta(seconds=1))
    _add(queue, config, "first", [1, "x"], now - timedelta(seconds=5))
    _add(queue, config, "later", None, now + timedelta(seconds=30))
    claimed = _mine(queue.claim_due(now, 100), config)
    assert [(j.name, j.payload, j.attempts) for j in claimed] == [
        ("first", [1, "x"], 1),
        ("second", {"n": 2}, 1),
    ]
    assert _mine(queue.claim_due(now, 100), config) == []  # held, not due again
    (later,) = _mine(queue.claim_due(now + timedelta(seconds=30), 100), config)
    assert later.name == "later"


def test_a_job_has_one_holder_however_many_workers_poll_at_once(engine):
    config = _config()
    for n in range(60):
        _add(SqlJobQueue(engine, lease=LEASE), config, payload=n)
    now = datetime.now(UTC)
    taken: list[list[int]] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        queue, got = SqlJobQueue(engine, lease=LEASE), []
        barrier.wait()
        while batch := _mine(queue.claim_due(now, 7), config):
            got.extend(j.payload for j in batch)
        taken.append(got)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [n for got in taken for n in got]
    assert sorted(every) == list(range(60))


def test_a_dead_workers_job_is_claimed_again_when_its_lease_ends(engine):
    queue, config, now = SqlJobQueue(engine, lease=LEASE), _config(), datetime.now(UTC)
    _add(queue, config, at=now)
    (first,) = _mine(queue.claim_due(now, 10), config)
    assert _mine(queue.claim_due(now + LEASE - timedelta(seconds=1), 10), config) == []
    (again,) = _mine(queue.claim_due(now + LEASE, 10), config)
    assert again.id == first.id and again.attempts == 2 and again.claim != first.claim
    # the first holder wakes up late: its outcome must not undo the new claim
    queue.succeeded(first)
    queue.failed(first, "late")
    (row,) = _rows(engine, config)
    assert row.state == "running" and row.claim == again.claim
    queue.succeeded(again)
    assert _rows(engine, config) == []


def test_retry_reschedules_failed_stays_and_release_does_not_count(engine):
    queue, config, now = SqlJobQueue(engine, lease=LEASE), _config(), datetime.now(UTC)
    _add(queue, config, "a", at=now)
    (job,) = _mine(queue.claim_due(now, 10), config)
    queue.retry(job, run_at=now + timedelta(seconds=6), error="RetryError: later")
    assert _mine(queue.claim_due(now, 10), config) == []
    (job,) = _mine(queue.claim_due(now + timedelta(seconds=6), 10), config)
    assert job.attempts == 2
    queue.release(job, run_at=now, error="OperationalError: down")
    (job,) = _mine(queue.claim_due(now, 10), config)
    assert job.attempts == 2
    queue.failed(job, "ValueError: broken")
    (row,) = _rows(engine, config)
    assert (row.state, row.error) == ("failed", "ValueError: broken")
    assert _mine(queue.claim_due(now + timedelta(days=1), 10), config) == []
    assert queue.pending([config]) == 0


def test_a_payload_json_cannot_hold_is_refused_at_enqueue(engine):
    queue = SqlJobQueue(engine, lease=LEASE)
    with pytest.raises(IllegalOperationError, match="JSON"):
        _add(queue, _config(), payload={"s": {1, 2}})


def test_starting_a_job_renews_its_lease_unless_another_worker_took_it(engine):
    queue, config, now = SqlJobQueue(engine, lease=LEASE), _config(), datetime.now(UTC)
    _add(queue, config, "a", at=now)
    _add(queue, config, "b", at=now)
    first, second = _mine(queue.claim_due(now, 10), config)
    later = now + LEASE - timedelta(seconds=1)
    assert queue.start(first, later)  # the first ran long; the second waited behind it
    (taken,) = _mine(queue.claim_due(now + LEASE, 10), config)
    assert taken.id == second.id
    assert not queue.start(second, now + LEASE)
    assert _mine(queue.claim_due(later + LEASE - timedelta(seconds=1), 10), config) == []

"""`docs/operating.md`'s walkthrough, run exactly as the document has it, on the local
servers: migrate, a team, a plugin installed and configured, two workers, events
captured over HTTP and stored, a config change applied without a restart, the logs.

The commands are read from the document (the block after `<!-- walkthrough -->`); only
the environment differs from a reader's: a database, ClickHouse database and topics of
this run's own, removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import CLICKHOUSE_HOST, CLICKHOUSE_PORT, DATABASE_URL, KAFKA_HOSTS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
OPERATING = ROOT / "docs" / "operating.md"
PORTS = (6066, 6067)  # the ones the document names


def walkthrough() -> str:
    text = OPERATING.read_text()
    found = re.search(r"<!-- walkthrough -->\n```bash\n(.*?)\n```", text, re.S)
    assert found, "docs/operating.md has no walkthrough block"
    return found.group(1)


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _cleanup(run: str, database: str) -> None:
    import psycopg
    from kafka.admin import KafkaAdminClient

    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    from clickhouse_driver import Client

    Client(host=CLICKHOUSE_HOST, port=CLICKHOUSE_PORT).execute(f"DROP DATABASE IF EXISTS {run}")
    admin = KafkaAdminClient(bootstrap_servers=KAFKA_HOSTS)
    try:
        mine = [t for t in admin.list_topics() if t.startswith(run)]
        if mine:
            admin.delete_topics(mine)
    finally:
        admin.close()


def test_the_walkthrough_in_operating_md_works_as_written(tmp_path: Path) -> None:
    assert all(_free(p) for p in PORTS), f"ports {PORTS} are taken"
    import psycopg

    run = f"walk_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{run}"')
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DATABASE_URL": DATABASE_URL.rsplit("/", 1)[0] + "/" + run,
        "CLICKHOUSE_DATABASE": run,
        "KAFKA_TOPIC_PREFIX": f"{run}_",
        "KAFKA_CONSUMPTION_TOPIC": f"{run}_input",
        "DATA_DIR": str(tmp_path / "data"),
        "LOG_LEVEL": "warning",
    }
    script = "set -euo pipefail\n" + walkthrough()
    shell = subprocess.Popen(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = shell.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(shell.pid, signal.SIGKILL)
        output, _ = shell.communicate()
        logs = "".join(p.read_text()[-3000:] for p in tmp_path.glob("worker-*.log"))
        pytest.fail(f"the walkthrough did not finish in 300 s:\n{output}\n{logs}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGKILL)
        _cleanup(run, run)
    assert shell.returncode == 0, output
    assert '"greeting":"welcome"' in output and "logged in" in output
    assert "plugin Hello World loaded" in output  # the logs, read back

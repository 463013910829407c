"""What the cluster tests share: a plugin written to a folder, a loopback HTTP sink that
counts what plugins send it, counting stored events, and reading a worker's /metrics."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from sqlalchemy import text

from app.local_cluster import LocalCluster


def write_plugin(
    folder: Path, code: str, *, name: str, config: list[dict[str, Any]] | None = None
) -> Path:
    """A plugin folder with `code` as plugin.py and a plugin.json declaring `config`."""
    folder.mkdir(exist_ok=True)
    (folder / "plugin.py").write_text(code)
    (folder / "plugin.json").write_text(
        json.dumps({"name": name, "main": "plugin.py", "config": config or []})
    )
    return folder


class Sink:
    """A loopback webhook: counts the uuids `uuids_of` finds in each POSTed JSON body."""

    def __init__(self, uuids_of: Callable[[Any], Iterable[str]]) -> None:
        self.received: Counter[str] = Counter()
        self.lock = threading.Lock()
        self._uuids_of = uuids_of

    def handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with sink.lock:
                    sink.received.update(sink._uuids_of(orjson.loads(body)))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@contextmanager
def serving(sink: Sink, path: str) -> Iterator[str]:
    """Serve `sink` on a free loopback port; yields its URL (ending in `path`)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), sink.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{path}"
    finally:
        server.shutdown()
        server.server_close()


async def stored_count(cluster: LocalCluster, team_id: int) -> int:
    """The team's stored events (the warm-up one left out); a count, so polling it takes
    little of the worker's CPU."""
    async with cluster._engine.connect() as conn:
        found = await conn.execute(
            text("SELECT count(*) FROM events WHERE team_id = :t AND distinct_id <> 'warm-up'"),
            {"t": team_id},
        )
        return int(found.scalar_one())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (Prometheus text)."""
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


async def metrics_text(port: int) -> str:
    """A worker's GET /metrics."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        assert response.status == 200
        return await response.text()


async def stage_batches(port: int, *stages: str) -> dict[str, float]:
    """Batches each of `stages` has taken so far, from the worker's /metrics."""
    text = await metrics_text(port)
    return {s: metric(text, "plugin_server_stage_batch_size_count", stage=s) for s in stages}

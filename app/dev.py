"""`plugin-server dev` and `plugin-server ingest`: the embedded mode, no servers.

Both start from an empty local store (SQLite and chDB in DATA_DIR/dev), install the
plugins for the teams of the events, run the events through the same stages as the
cluster and show what was stored.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

import orjson

from app import telemetry
from app.connections import async_engine
from app.embedded import ChainResult, run_chain
from app.migrate import migrate_sql
from app.resources import Resources, open_embedded_resources
from app.schedule import tick_seconds
from app.settings import Settings
from app.stores.plugin_configs import ensure_team, install_plugin
from plugin_runtime.authoring import default_config
from plugin_runtime.loading import load_plugin
from schemas.records import DeadLetter

EXAMPLE = Path(__file__).resolve().parent / "example"
DEV_TEAM_ID = 1
DEV_API_TOKEN = "phc_dev"  # the project API key of the embedded mode's team
DEAD_LETTERS_FILE = "dead_letters.jsonl"


def read_messages(path: str) -> list[bytes]:
    """Capture messages, one JSON object per line; blank lines are skipped."""
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    with stream:
        return [line.strip() for line in stream if line.strip()]


def _team_ids(messages: Iterable[bytes]) -> set[int]:
    teams = {DEV_TEAM_ID}
    for raw in messages:
        try:
            team_id = orjson.loads(raw).get("team_id")
        except (orjson.JSONDecodeError, AttributeError):
            continue  # the parse stage reports it
        if isinstance(team_id, int) and not isinstance(team_id, bool):
            teams.add(team_id)
    return teams


async def open_local(
    settings: Settings, plugin_paths: list[str], teams: set[int]
) -> tuple[Settings, Resources, Path]:
    """A fresh embedded store with the plugins installed for `teams`."""
    data_dir = Path(settings.DATA_DIR).resolve() / "dev"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    settings = settings.model_copy(
        update={"DATABASE_URL": f"sqlite:///{data_dir / 'plugin-server.db'}"}
    )
    await migrate_sql(settings.DATABASE_URL)
    engine = async_engine(settings)
    try:
        sources = [load_plugin(Path(p)) for p in plugin_paths]
        for team_id in sorted(teams):
            await ensure_team(
                engine, team_id, api_token=DEV_API_TOKEN if team_id == DEV_TEAM_ID else None
            )
            for order, source in enumerate(sources):
                await install_plugin(
                    engine,
                    source,
                    team_id=team_id,
                    config=default_config(source.plugin_json),
                    order=order,
                )
    finally:
        await engine.dispose()

    async def keep(letter: DeadLetter) -> None:
        keep_dead_letters([letter], data_dir)

    resources = await open_embedded_resources(settings, data_dir, on_dead_letter=keep)
    return settings, resources, data_dir


CAPTURE_ROUNDS = 5  # plugins that capture on every captured event would loop for ever


async def ingest_all(resources: Resources, messages: list[bytes]) -> ChainResult:
    """Run the messages, then what plugins captured while they ran (a few rounds)."""
    result = await run_chain(resources.context, messages)
    for _round in range(CAPTURE_ROUNDS):
        await resources.host.run_due_jobs()
        await resources.metrics.flush()
        captured = resources.take_captured()
        if not captured:
            break
        more = await run_chain(resources.context, captured)
        result.received += more.received
        result.stored.extend(more.stored)
        result.dead_letters.extend(more.dead_letters)
    return result


async def keep_time(resources: Resources, settings: Settings) -> None:
    """While the embedded server runs, what a worker's timers do: dispatch the schedule,
    run due jobs, ingest what plugins captured."""
    tick = tick_seconds(settings.SCHEDULE_TEST_PERIOD_SECONDS)
    while True:
        await resources.scheduler.tick()
        await resources.host.run_due_jobs()
        await resources.metrics.flush()
        captured = resources.take_captured()
        if captured:
            result = await run_chain(resources.context, captured)
            keep_dead_letters(result.dead_letters, Path(settings.DATA_DIR).resolve() / "dev")
        await asyncio.sleep(tick)


def show(result: ChainResult, data_dir: Path, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    for event in result.stored:
        person = event.get("person") or {}
        print(
            f"{event['timestamp']}  {event['event']:<16} {event['distinct_id']:<18} "
            f"person {str(person.get('uuid', '-'))[:8]}",
            file=out,
        )
        print(f"    {orjson.dumps(event['properties']).decode()}", file=out)
    for letter in result.dead_letters:
        print(f"dead letter ({letter.stage}): {letter.error}", file=out)
    where = f" (in {data_dir / DEAD_LETTERS_FILE})" if result.dead_letters else ""
    print(f"\n{summary(result)}{where}", file=out)


def summary(result: ChainResult) -> str:
    return (
        f"{result.received} events in: {len(result.stored)} stored, "
        f"{result.dropped} dropped by plugins, {len(result.dead_letters)} dead letters"
    )


def keep_dead_letters(letters: list[DeadLetter], data_dir: Path) -> None:
    """Append dead letters to the embedded store's file, one JSON record a line."""
    if letters:
        with open(data_dir / DEAD_LETTERS_FILE, "ab") as file:
            for letter in letters:
                file.write(letter.dumps() + b"\n")


async def run_ingest(settings: Settings, args: argparse.Namespace) -> int:
    messages = read_messages(args.file)
    settings, resources, data_dir = await open_local(settings, args.plugin, _team_ids(messages))
    try:
        before = telemetry.snapshot()
        result = await ingest_all(resources, messages)
        keep_dead_letters(result.dead_letters, data_dir)
        if args.show:
            show(result, data_dir)
        else:
            print(summary(result))
        print(f"\n{telemetry.summary(before, telemetry.snapshot())}")
    finally:
        await resources.close()
    return 0


async def run_dev(settings: Settings, args: argparse.Namespace) -> int:
    messages = read_messages(args.events or str(EXAMPLE / "events.jsonl"))
    plugins = args.plugin or [str(EXAMPLE / "plugin")]
    settings, resources, data_dir = await open_local(settings, plugins, _team_ids(messages))
    try:
        print(f"embedded mode: plugins {', '.join(plugins)}; store {data_dir}\n")
        for record, reason in resources.host.runtime.not_loaded():
            print(f"plugin {record.plugin.name!r} (team {record.team_id}) did not load: {reason}\n")
        before = telemetry.snapshot()
        result = await ingest_all(resources, messages)
        keep_dead_letters(result.dead_letters, data_dir)
        show(result, data_dir)
        print(f"\n{telemetry.summary(before, telemetry.snapshot())}")
        if not args.once:
            from app.capture_server import serve

            clock = asyncio.create_task(keep_time(resources, settings))
            try:
                await serve(
                    resources.context, host="127.0.0.1", port=args.port, token=DEV_API_TOKEN
                )
            finally:
                clock.cancel()
    finally:
        await resources.close()
    return 0

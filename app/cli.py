"""`plugin-server`: the command line of both run modes.

Modes, in the original's order of precedence: --help, --version, --healthcheck,
--migrate, --idle (or PLUGIN_SERVER_IDLE); then the subcommands `dev`, `worker`,
`ingest FILE`, `replay`, `team create|list|set`, `events list`, `jobs list`,
`plugin install|config|list|logs|test`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, Literal, get_args, get_origin

from app.cli_values import iso_time
from app.settings import Settings, SettingsError, load_settings
from app.topic_names import STAGE_TOPICS

IDLE_LOG_INTERVAL = 30.0  # seconds between the idle mode's reminders, as the original

_DESCRIPTION = """\
A plugin server for product-analytics events: it ingests PostHog capture messages,
resolves persons, runs each team's sandboxed Python plugins and stores the events.

commands:
  dev                 embedded mode, no servers: runs example (or your) events through the
                      pipeline with SQLite and chDB, shows them, then serves /capture
  worker              cluster mode: a Faust worker on Kafka (same as `faust -A app worker`)
  ingest FILE         run the embedded pipeline over a JSON-lines file of capture messages
  replay [filters]    publish dead letters again to the stage that failed on them
  team create NAME    create a team; prints its id and API key (on DATABASE_URL)
  team list           every team with its settings
  team set ID k=v...  change a team's settings (name, anonymize_ips)
  events list --team ID   a team's latest stored events
  jobs list           plugin jobs and export retries waiting, running or failed
  plugin install PATH store a plugin (folder, zip or tar.gz); prints its id
  plugin config TEAM PLUGIN [--set k=v] [--attachment k=FILE] [--enable|--disable]
                      create or change a team's config of a plugin (workers reload it)
  plugin list         installed plugins and each config's state and last error
  plugin logs CONFIG  a config's log entries [--level L] [--since T] [--follow]
  plugin test PATH    run a plugin folder on sample events and print results and logs
"""


def _settings_help() -> str:
    lines = ["settings (environment variables):"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "null" if default is None else repr(default)
        choices = get_args(field.annotation) if get_origin(field.annotation) is Literal else ()
        one_of = f"; one of {', '.join(map(str, choices))}" if choices else ""
        lines.append(f"  {name:<32} {field.description or ''}{one_of} (default {shown})")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plugin-server",
        description=_DESCRIPTION,
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--version", action="store_true", help="print the version")
    parser.add_argument(
        "--healthcheck",
        action="store_true",
        help="exit 0 if a worker pinged Redis in the last minute, else 1",
    )
    parser.add_argument(
        "--migrate",
        action="store_true",
        help="apply the SQL migrations to DATABASE_URL and the ClickHouse DDL, then exit",
    )
    parser.add_argument("--idle", action="store_true", help="start without processing anything")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    dev = commands.add_parser("dev", help="embedded mode with no servers")
    dev.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="PATH",
        help="plugin folder, zip or tar.gz to install (repeatable); default: the bundled example",
    )
    dev.add_argument("--events", metavar="FILE", help="JSON-lines capture messages to run first")
    dev.add_argument("--once", action="store_true", help="exit after showing the events")
    dev.add_argument("--port", type=int, default=8000, help="capture endpoint port (default 8000)")

    commands.add_parser("worker", help="cluster mode: a Faust worker", add_help=False)

    ingest = commands.add_parser("ingest", help="embedded pipeline over a JSON-lines file")
    ingest.add_argument("file", help="JSON-lines capture messages ('-' for standard input)")
    ingest.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="PATH",
        help="plugin folder, zip or tar.gz to install for every team in the file",
    )
    ingest.add_argument("--show", action="store_true", help="print the stored events")

    replay = commands.add_parser(
        "replay",
        help="publish dead letters again to the stage that failed on them",
        description="Publish the dead letters that match every filter given to the input of "
        "the stage that failed on them; the others stay where they are. Safe to run twice: "
        "the event uuid makes the second write a no-op.",
    )
    replay.add_argument(
        "--stage",
        choices=list(STAGE_TOPICS),
        help="only this stage's",
    )
    replay.add_argument("--team", type=int, metavar="ID", help="only this team's")
    replay.add_argument("--reason", metavar="TEXT", help="only those whose error contains TEXT")
    replay.add_argument(
        "--since", type=iso_time, metavar="TIME", help="first failed at or after (ISO)"
    )
    replay.add_argument("--until", type=iso_time, metavar="TIME", help="first failed before (ISO)")
    replay.add_argument("--limit", type=int, metavar="N", help="at most N")
    replay.add_argument(
        "--dry-run", action="store_true", help="count what would be replayed, publish nothing"
    )

    team = commands.add_parser("team", help="create, list and configure teams")
    team_commands = team.add_subparsers(dest="team_command", metavar="ACTION", required=True)
    team_create = team_commands.add_parser("create", help="create a team with an API key")
    team_create.add_argument("name", help="the team's name")
    team_commands.add_parser("list", help="every team with its settings")
    team_set = team_commands.add_parser(
        "set",
        help="change a team's settings",
        description="Change a team's settings; running workers see the change within 30 s.",
    )
    team_set.add_argument("team_id", type=int, metavar="ID")
    team_set.add_argument(
        "assignments", nargs="+", metavar="KEY=VALUE", help="name=TEXT or anonymize_ips=true|false"
    )

    events = commands.add_parser("events", help="what was stored")
    events_commands = events.add_subparsers(dest="events_command", metavar="ACTION", required=True)
    events_list = events_commands.add_parser(
        "list", help="a team's latest stored events, newest first (from EVENTS_STORE)"
    )
    events_list.add_argument("--team", type=int, metavar="ID", required=True)
    events_list.add_argument("--limit", type=int, default=20, metavar="N", help="(default 20)")

    jobs = commands.add_parser("jobs", help="plugin jobs and export retries")
    jobs_commands = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)
    jobs_list = jobs_commands.add_parser(
        "list",
        help="jobs waiting, running or failed",
        description="Jobs and export retries in plugin_jobs, oldest first; a job that "
        "succeeded is no longer listed.",
    )
    jobs_list.add_argument("--team", type=int, metavar="ID", help="only this team's")
    jobs_list.add_argument(
        "--state", choices=["scheduled", "running", "failed"], help="only jobs in this state"
    )

    from app.admin.plugin_cli import add_plugin_commands

    add_plugin_commands(commands)
    return parser


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from app.replay import Selection, replay

    selection = Selection(
        stage=args.stage,
        team_id=args.team,
        reason=args.reason,
        since=args.since,
        until=args.until,
        limit=args.limit,
    )
    replay(settings, selection, dry_run=args.dry_run)
    return 0


def _team(settings: Settings, args: argparse.Namespace) -> int:
    from app.admin.run import run_admin
    from app.admin.teams import create_team, list_teams, parse_assignments, set_team

    async def run(engine: Any) -> list[str]:
        if args.team_command == "create":
            team = await create_team(engine, args.name)
            return [f"team_id: {team.id}", f"api_key: {team.api_token}"]
        if args.team_command == "set":
            team = await set_team(engine, args.team_id, parse_assignments(args.assignments))
            anonymize = str(team.anonymize_ips).lower()
            return [f"team {team.id}: name={team.name!r} anonymize_ips={anonymize}"]
        rows = [f"{'id':>6}  {'anonymize_ips':<13}  {'ingested':<8}  name"]
        for t in await list_teams(engine):
            rows.append(
                f"{t.id:>6}  {str(t.anonymize_ips).lower():<13}  "
                f"{str(t.ingested_event).lower():<8}  {t.name}"
            )
        return rows

    return run_admin(settings, run)


def _events(settings: Settings, args: argparse.Namespace) -> int:
    from app.admin.events import event_lines, latest_events
    from app.admin.run import run_admin

    async def run(engine: Any) -> list[str]:
        return event_lines(await latest_events(settings, engine, args.team, args.limit))

    return run_admin(settings, run)


def _jobs(settings: Settings, args: argparse.Namespace) -> int:
    from app.admin.jobs import job_lines, list_jobs
    from app.admin.run import run_admin

    async def run(engine: Any) -> list[str]:
        return job_lines(await list_jobs(engine, team_id=args.team, state=args.state))

    return run_admin(settings, run)


def _run_worker(settings: Settings, extra: Sequence[str]) -> int:
    # `faust -A app worker`; the app applies LOG_LEVEL itself, whichever command ran, but
    # Faust's worker command turns the web on unless told otherwise
    argv = [sys.executable, "-m", "faust", "-A", "app", "worker"]
    if settings.WORKER_HTTP_PORT == 0:
        argv.append("--without-web")
    argv.extend(extra)
    os.execv(sys.executable, argv)
    return 0  # not reached


def _idle() -> int:
    print("plugin server is idle: PLUGIN_SERVER_IDLE or --idle is set, nothing is processed")
    try:
        while True:
            time.sleep(IDLE_LOG_INTERVAL)
            print("plugin server is still idle")
    except KeyboardInterrupt:
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # everything after `worker` goes to Faust's own worker options
    worker_extra: list[str] = []
    if "worker" in args_list:
        index = args_list.index("worker")
        args_list, worker_extra = args_list[: index + 1], args_list[index + 1 :]
    args = parser.parse_args(args_list)

    if args.version:
        from app.health import server_version

        print(f"plugin-server {server_version()}")
        return 0
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"plugin-server: {exc}", file=sys.stderr)
        return 2
    if args.healthcheck:
        from app.health import check

        healthy, detail = asyncio.run(check(settings))
        print(("healthy: " if healthy else "unhealthy: ") + detail)
        return 0 if healthy else 1
    if args.migrate:
        from app.migrate import migrate_all

        return asyncio.run(migrate_all(settings))
    if args.idle or settings.PLUGIN_SERVER_IDLE:
        return _idle()
    if args.command == "worker":
        return _run_worker(settings, worker_extra)
    if args.command == "dev":
        from app.dev import run_dev

        return asyncio.run(run_dev(settings, args))
    if args.command == "ingest":
        from app.dev import run_ingest

        return asyncio.run(run_ingest(settings, args))
    if args.command == "replay":
        return _replay(settings, args)
    if args.command == "team":
        return _team(settings, args)
    if args.command == "events":
        return _events(settings, args)
    if args.command == "jobs":
        return _jobs(settings, args)
    if args.command == "plugin":
        from app.admin.plugin_cli import run_plugin_command

        return run_plugin_command(settings, args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())

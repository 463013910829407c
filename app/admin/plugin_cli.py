"""`plugin-server plugin install|config|list|logs|test`: the command line of plugins."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC
from typing import Any

from app.admin.errors import AdminError
from app.admin.plugins import (
    LOG_LEVELS,
    ConfigRow,
    config_exists,
    configure,
    install,
    list_configs,
    list_plugins,
    parse_settings,
    read_attachments,
    read_logs,
)
from app.admin.run import run_admin
from app.cli_values import iso_time
from app.settings import Settings
from app.stores.plugin_metrics import PluginMetricStore
from plugin_runtime.backends.sql import as_utc

FOLLOW_POLL_SECONDS = 1.0


def add_plugin_commands(commands: Any) -> None:
    plugin = commands.add_parser("plugin", help="install, configure, list, test plugins")
    actions = plugin.add_subparsers(dest="plugin_command", metavar="ACTION", required=True)

    add = actions.add_parser(
        "install",
        help="store a plugin (folder, zip or tar.gz); prints its id",
        description="Check and store a plugin; `plugin config` then enables it for a team.",
    )
    add.add_argument("path", help="plugin folder, .zip or .tar.gz")
    add.add_argument(
        "--replace",
        type=int,
        metavar="PLUGIN",
        help="a new version of this installed plugin: its configs run the new code",
    )

    config = actions.add_parser(
        "config",
        help="create or change a team's config of a plugin",
        description="Create or change TEAM's config of PLUGIN, checked against its "
        "plugin.json; running workers load the change within a second or two. "
        "Secret values are never printed.",
    )
    config.add_argument("team_id", type=int, metavar="TEAM")
    config.add_argument("plugin_id", type=int, metavar="PLUGIN")
    config.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config value (KEY= removes it); repeat for more",
    )
    config.add_argument(
        "--attachment",
        action="append",
        default=[],
        metavar="KEY=FILE",
        help="upload FILE as the attachment KEY; repeat for more",
    )
    state = config.add_mutually_exclusive_group()
    state.add_argument("--enable", dest="enabled", action="store_true", default=None)
    state.add_argument("--disable", dest="enabled", action="store_false")
    config.add_argument("--order", type=int, metavar="N", help="position in the team's chain")

    listing = actions.add_parser("list", help="installed plugins and each team's configs")
    listing.add_argument("--team", type=int, metavar="ID", help="only this team's configs")

    logs = actions.add_parser("logs", help="a plugin config's log entries, oldest first")
    logs.add_argument("config_id", type=int, metavar="CONFIG")
    logs.add_argument("--level", choices=LOG_LEVELS, help="this level and above")
    logs.add_argument("--since", type=iso_time, metavar="TIME", help="from this time (ISO)")
    logs.add_argument(
        "--follow", action="store_true", help="keep printing new entries until interrupted"
    )

    shown = actions.add_parser(
        "metrics", help="a plugin config's own meta.metrics, across workers and restarts"
    )
    shown.add_argument("config_id", type=int, metavar="CONFIG")

    test = actions.add_parser("test", help="run a plugin on sample events, no servers")
    test.add_argument("path", help="plugin folder, zip or tar.gz")
    test.add_argument("--events", metavar="FILE", help="JSON lines or a JSON array of events")
    test.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config value over the plugin.json defaults; repeat for more",
    )
    test.add_argument(
        "--attachment", action="append", default=[], metavar="KEY=FILE", help="an attachment"
    )


def _config_line(c: ConfigRow) -> str:
    return (
        f"plugin config {c.id}: team {c.team_id}, plugin {c.plugin_id} ({c.plugin_name}), "
        f"{c.state}, order {c.order}, config {c.config}"
    )


def _list_lines(plugins: list[Any], configs: list[ConfigRow], team: int | None) -> list[str]:
    lines = []
    if team is None:
        lines.append("plugins:")
        lines.append(f"{'id':>6}  name (capabilities)")
        for p in plugins:
            lines.append(f"{p.id:>6}  {p.name} ({', '.join(p.capabilities) or 'none'})")
        lines.append("")
    lines.append("configs:")
    lines.append(f"{'id':>6}  {'team':>5}  {'plugin':>6}  {'order':>5}  {'state':<8}  name")
    for c in configs:
        line = f"{c.id:>6}  {c.team_id:>5}  {c.plugin_id:>6}  {c.order:>5}  {c.state:<8}  "
        line += c.plugin_name
        if c.budget:
            until = f" until {c.budget['until']}" if c.budget.get("until") else ""
            line += f"\n{'':>8}budget {c.budget.get('state')}{until}: {c.budget.get('reason')}"
        if c.error:
            when = str(c.error.get("time", ""))
            line += f"\n{'':>8}last error {when}: {str(c.error.get('message', ''))[:200]}"
        lines.append(line)
    return lines


def run_plugin_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.plugin_command == "test":
        return _test(args)
    if args.plugin_command == "logs":
        return _logs(settings, args)
    if args.plugin_command == "metrics":
        return _metrics(settings, args)

    async def run(engine: Any) -> list[str]:
        if args.plugin_command == "install":
            plugin = await install(engine, args.path, replace=args.replace)
            await _announce(settings)
            return [
                f"plugin_id: {plugin.id}",
                f"name: {plugin.name}",
                f"capabilities: {', '.join(plugin.capabilities) or 'none'}",
            ]
        if args.plugin_command == "config":
            row = await configure(
                engine,
                args.team_id,
                args.plugin_id,
                settings=parse_settings(args.settings),
                attachments=read_attachments(args.attachment),
                enabled=args.enabled,
                order=args.order,
            )
            await _announce(settings)
            return [_config_line(row)]
        plugins = await list_plugins(engine)
        return _list_lines(plugins, await list_configs(engine, team_id=args.team), args.team)

    return run_admin(settings, run)


async def _announce(settings: Settings) -> None:
    from app.reloads import RELOAD_CHECK_SECONDS, announce

    if not settings.DATABASE_URL.startswith("sqlite") and not await announce(settings):
        print(
            f"plugin-server: Redis did not take the reload announcement; running workers "
            f"load the change within {RELOAD_CHECK_SECONDS:.0f} s",
            file=sys.stderr,
        )


def _metrics(settings: Settings, args: argparse.Namespace) -> int:
    async def run(engine: Any) -> list[str]:
        if not await config_exists(engine, args.config_id):
            raise AdminError(f"no plugin config with id {args.config_id}")
        stored = await PluginMetricStore(engine).read(args.config_id)
        if not stored:
            return [f"plugin config {args.config_id} has counted no metrics yet"]
        lines = [f"{'metric':<32}  {'kind':<4}  {'value':>14}  updated"]
        for m in stored:
            updated = as_utc(m.updated_at).isoformat(timespec="seconds")
            lines.append(f"{m.name:<32}  {m.kind:<4}  {m.value:>14,.6g}  {updated}")
        return lines

    return run_admin(settings, run)


def _logs(settings: Settings, args: argparse.Namespace) -> int:
    async def run(engine: Any) -> list[str]:
        if not await config_exists(engine, args.config_id):
            raise AdminError(f"no plugin config with id {args.config_id}")
        last: str | None = None
        while True:
            entries = await read_logs(
                engine, args.config_id, level=args.level, since=args.since, after_id=last
            )
            for e in entries:
                stamp = e.timestamp.astimezone(UTC).isoformat(timespec="milliseconds")
                print(f"{stamp}  {e.level.upper():<7}  {e.source:<7}  {e.message}", flush=True)
            if entries:
                last = entries[-1].id
            if not args.follow:
                return []
            await asyncio.sleep(FOLLOW_POLL_SECONDS)

    try:
        return run_admin(settings, run)
    except KeyboardInterrupt:
        return 0


def _test(args: argparse.Namespace) -> int:
    from plugin_runtime.authoring import EXIT_UNUSABLE, read_attachment_files, run_plugin_test

    try:
        config = {k: v for k, v in parse_settings(args.config).items() if v is not None}
        attachments = read_attachment_files(args.attachment)
    except (AdminError, ValueError) as exc:
        print(f"plugin-server: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    return run_plugin_test(
        args.path, args.events, sys.stdout, config=config, attachments=attachments
    )

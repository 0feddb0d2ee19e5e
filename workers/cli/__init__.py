"""The ``mirsad`` command line: run the stack, push URLs, watch and query what is stored."""

from __future__ import annotations

import argparse
import logging

import yaml
from rich.markup import escape

from workers.cli import api, demo, items, reindex, replay, running, sources, tokens, vocab, watches
from workers.cli.output import PLAIN, broken_config_file, err, offer_plain, require_schema, safe_url
from workers.core.errors import DatabaseUnavailable, MirsadError
from workers.core.settings import SettingError, get_settings, seed_config_dir

# One module per command group, in the order ``mirsad --help`` lists them.
COMMAND_GROUPS = (running, api, items, replay, vocab, sources, tokens, reindex, watches, demo)
DATABASE_COMMANDS = {"push", "watch", "items", "stories", "show", "status", "sites", "sources", "requeue"}
SERVICE_COMMANDS = {"worker", "beat", "api"}  # long-running services log as configured (MIRSAD_LOG_LEVEL)
QUIET_LIBRARIES = ("alembic", "httpx", "httpcore", "celery", "kombu", "trafilatura", "htmldate", "courlan")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    PLAIN["on"] = getattr(args, "plain", False)
    try:
        settings = get_settings()
    except SettingError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if seed_config_dir(settings.config_dir):
        err.print(f"created {settings.config_dir} with the default config files (edit them there)")
    if not getattr(args, "verbose", False) and args.command not in SERVICE_COMMANDS:
        for noisy in QUIET_LIBRARIES:  # their INFO lines are not the user's business in a CLI command
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.command in DATABASE_COMMANDS:
            require_schema()
        return args.handler(args) or 0
    except DatabaseUnavailable as exc:
        err.print(
            f"[red]error:[/red] {escape(one_line(str(exc)))} (database {safe_url(settings.database_url)}: "
            f"start it, or set MIRSAD_DATABASE_URL)"
        )
        return 2
    except MirsadError as exc:
        err.print(f"[red]error:[/red] {escape(one_line(exc.reason))}")
        return 2
    except yaml.YAMLError as exc:  # a command that reads config/ directly (extract, entities): say which file
        err.print(f"[red]error:[/red] {escape(one_line(broken_config_file(settings.config_dir) or str(exc)))}")
        return 2
    except KeyboardInterrupt:
        return 130


def one_line(message: str) -> str:
    return " ".join(message.split())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mirsad", description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="also show libraries' INFO logs (alembic, httpx…)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    for group in COMMAND_GROUPS:
        group.register(commands, command)
    offer_plain(parser)
    return parser

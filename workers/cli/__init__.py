"""The ``mirsad`` command line: run the stack, push URLs, watch and query what is stored."""

from __future__ import annotations

import argparse
import logging

from rich.markup import escape

from workers.cli import api, demo, items, reindex, running, sources, tokens, vocab
from workers.cli.output import err
from workers.core.errors import MirsadError
from workers.core.settings import get_settings, seed_config_dir

# One module per command group, in the order ``mirsad --help`` lists them.
COMMAND_GROUPS = (running, api, items, vocab, sources, tokens, reindex, demo)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if seed_config_dir(settings.config_dir):
        err.print(f"created {settings.config_dir} with the default config files (edit them there)")
    try:
        return args.handler(args) or 0
    except MirsadError as exc:
        err.print(f"[red]error:[/red] {escape(exc.reason)}")
        return 2
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mirsad", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    for group in COMMAND_GROUPS:
        group.register(commands, command)
    return parser

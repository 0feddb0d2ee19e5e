"""The feeds and sitemaps followed: list, add, remove, discover."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rich.markup import escape

from workers.cli.output import (
    err,
    fail,
    print_json,
    print_rows,
    require_broker,
)
from workers.core.errors import ConnectionFailed, FetchTimeout
from workers.core.settings import get_settings
from workers.storage.db import migrate, session_scope


def cmd_sources_list(args) -> int:
    from workers.storage.sources import describe, listing

    now = datetime.now(UTC)
    with session_scope() as session:
        rows = [describe(source, now) for source in listing(session)]
    if args.json or getattr(args, "json_listing", False):
        print_json(rows)
        return 0
    print_rows(
        ["url", "kind", "every", "last poll", "last new", "new URLs", "health"],
        [
            [
                row["url"],
                row["kind"] or "?",
                f"{row['every']}s",
                (row["last_polled_at"] or "never")[:19],
                (row["last_new_at"] or "never")[:19],
                row["entries_seen"],
                row["flag"] or "ok",
            ]
            for row in rows
        ],
    )
    flagged = sum(bool(row["flag"]) for row in rows)
    err.print(f"{len(rows)} source(s), {flagged} flagged; they are listed in {_sources_file()}")
    return 0


def cmd_sources_add(args) -> int:
    from workers.storage.sources import DEFAULT_EVERY, add_to_file

    path = _edit_sources_file(lambda config_dir: add_to_file(config_dir, args.url, args.every or DEFAULT_EVERY))
    if path:
        err.print(f"added {escape(args.url)} to {path}; beat polls it every {args.every or DEFAULT_EVERY}s")
    return 0 if path else 2


def cmd_sources_remove(args) -> int:
    from workers.storage.sources import remove_from_file

    path = _edit_sources_file(lambda config_dir: remove_from_file(config_dir, args.url))
    if path:
        err.print(f"removed {escape(args.url)} from {path}")
    return 0 if path else 2


def _edit_sources_file(edit: Callable[[Path], Path]) -> Path | None:
    """The sources file ``edit`` changed, synced into the database; None, said why, when it refused."""
    try:
        path = edit(get_settings().config_dir)
    except ValueError as exc:
        raise fail(str(exc)) from None
    _sync_sources()
    return path


def cmd_sources_discover(args) -> int:
    from workers.intake.discover import discover
    from workers.intake.politeness import MAX_INLINE_WAIT, polite_fetch_fn
    from workers.storage.sources import DEFAULT_EVERY, add_to_file, read_declared

    require_broker()  # the requests take turns with the workers' through Redis
    fetch_fn = polite_fetch_fn(wait_up_to=MAX_INLINE_WAIT)
    if "://" in args.url:
        found = discover(args.url, fetch_fn=fetch_fn)
    else:  # a bare site name: https first; plain http only when https cannot even connect
        try:
            found = discover(f"https://{args.url}", fetch_fn=fetch_fn)
        except (ConnectionFailed, FetchTimeout) as exc:
            err.print(
                f"https://{escape(args.url)} did not answer ({escape(str(exc))}); trying http://{escape(args.url)}"
            )
            found = discover(f"http://{args.url}", fetch_fn=fetch_fn)
    print_rows(
        ["url", "kind", "found in", "entries"],
        [[source.url, source.kind, source.via, source.entries] for source in found],
    )
    err.print(f"{len(found)} feed(s) or sitemap(s) found on {escape(args.url)}")
    if args.add and found:
        config_dir = get_settings().config_dir
        listed = {source.url for source in read_declared(config_dir)}
        for source in found:
            if source.url not in listed:
                add_to_file(config_dir, source.url, args.every or DEFAULT_EVERY)
                err.print(f"added {escape(source.url)}")
        _sync_sources()
    return 0


def _sync_sources() -> None:
    """The database follows the file at once (beat would on its next round)."""
    from workers.storage.sources import sync_from_config

    migrate()
    with session_scope() as session:
        sync_from_config(session, get_settings().config_dir)


def _sources_file() -> Path:
    from workers.storage.sources import SOURCES_FILE

    return get_settings().config_dir / SOURCES_FILE


def register(commands, command: Callable[..., argparse.ArgumentParser]) -> None:
    sources = command("sources", cmd_sources_list, "List, add, remove or discover the feeds and sitemaps polled.")
    sources.set_defaults(json=False)  # `mirsad sources` alone lists them
    sources.add_argument("--json", dest="json_listing", action="store_true", help="list them as JSON")
    source_commands = sources.add_subparsers(dest="sources_command", metavar="list|add|remove|discover")
    source_list = source_commands.add_parser(
        "list", help="every source with its health (failing or quiet ones flagged)"
    )
    source_list.set_defaults(handler=cmd_sources_list)
    source_list.add_argument("--json", action="store_true")
    source_add = source_commands.add_parser("add", help="follow a feed or sitemap (written to config/sources.yaml)")
    source_add.set_defaults(handler=cmd_sources_add)
    source_add.add_argument("url", metavar="URL")
    source_add.add_argument("--every", type=int, default=None, metavar="SECONDS", help="poll interval (default 900)")
    source_remove = source_commands.add_parser("remove", help="stop following a source")
    source_remove.set_defaults(handler=cmd_sources_remove)
    source_remove.add_argument("url", metavar="URL")
    source_discover = source_commands.add_parser(
        "discover", help="find a site's feeds and sitemaps (home page, robots.txt)"
    )
    source_discover.set_defaults(handler=cmd_sources_discover)
    source_discover.add_argument(
        "url", metavar="URL", help="the home page, or a bare name (aa.com.tr): https, or http if https cannot connect"
    )
    source_discover.add_argument("--add", action="store_true", help="follow every source found")
    source_discover.add_argument("--every", type=int, default=None, metavar="SECONDS", help="poll interval for --add")

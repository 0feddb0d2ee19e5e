"""What strip learned per site, and the watchlist of people and organisations."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rich.markup import escape
from rich.table import Column, Table

from workers.cli.output import (
    err,
    fail,
    out,
    print_json,
)
from workers.core.settings import get_settings
from workers.storage.db import session_scope


def cmd_sites(args) -> int:
    from workers.core.urls import site_of
    from workers.storage.sites import site_lines

    min_articles = get_settings().site_line_min_articles
    if args.sites_command == "show":
        site = site_of(args.site)
        with session_scope() as session:
            lines = site_lines(session, site, 1 if args.all else min_articles)
        if args.json:
            print_json(
                {
                    "site": site,
                    "min_articles": min_articles,
                    "lines": [
                        {
                            "line": line.line,
                            "articles": line.articles,
                            "fingerprint": line.fingerprint,
                            "learned": line.articles >= min_articles,
                        }
                        for line in lines
                    ],
                }
            )
            return 0
        table = Table("articles", "learned", Column("line", overflow="fold"), "rule")
        for line in lines:
            table.add_row(
                str(line.articles),
                "yes" if line.articles >= min_articles else "",
                line.line,
                f"site:{line.fingerprint}",
            )
        out.print(table)
        err.print(f"{len(lines)} line(s) of {site}; a line is learned once seen in {min_articles} articles")
        return 0
    from workers.storage.health import sites_overview

    with session_scope() as session:
        overview = sites_overview(session, min_articles)
    if args.json:
        print_json(overview)
        return 0
    table = Table(
        "site", "articles", "lines learned", "median chars", "last item", Column("needs a look", overflow="fold")
    )
    for entry in overview:
        figures = entry["health"] or {}
        days = figures.get("days_since_last_item")
        table.add_row(
            entry["site"],
            str(entry["articles"]),
            str(entry["learned"]),
            f"{figures['median_chars']:.0f}" if figures.get("median_chars") else "",
            f"{days:g} d ago" if days is not None else "",
            "; ".join(figures.get("flags", [])),
        )
    out.print(table)
    bad = sum(1 for entry in overview if entry["health"] and entry["health"]["flags"])
    err.print(f"{len(overview)} site(s), {bad} flagged; details: mirsad sites show SITE")
    return 0


def cmd_entities_list(args) -> int:
    from workers.stages.entities import list_entities

    entities = list_entities(get_settings().config_dir, args.kind)
    if args.json or getattr(args, "json_listing", False):
        print_json(
            [{"kind": e.kind, "name": e.name, "aliases": list(e.aliases), "short": list(e.short)} for e in entities]
        )
        return 0
    table = Table("kind", "name", Column("aliases", overflow="fold"), "short")
    for e in entities:
        table.add_row(e.kind, e.name, ", ".join(e.aliases), ", ".join(e.short))
    out.print(table)
    err.print(f"{len(entities)} entr{'y' if len(entities) == 1 else 'ies'}")
    return 0


def cmd_entities_add(args) -> int:
    from workers.stages.entities import add_entity

    try:
        path = add_entity(get_settings().config_dir, args.kind, args.name, args.alias, args.short)
    except ValueError as exc:
        raise fail(str(exc)) from None
    err.print(
        f"added {args.kind} {escape(args.name)} to {path}; workers tag it from their next item, mirsad extract at once"
    )
    return 0


def register(commands, command: Callable[..., argparse.ArgumentParser]) -> None:
    sites = command(
        "sites", cmd_sites, "List the sites seen, with their health (flagged first), articles and learned lines."
    )
    sites.add_argument("--json", action="store_true")
    site_show = sites.add_subparsers(dest="sites_command", metavar="show").add_parser(
        "show", help="the lines one site repeats, with the articles each was seen in"
    )
    site_show.add_argument("site", metavar="SITE", help="a host (aa.com.tr, www.aa.com.tr) or a URL of the site")
    site_show.add_argument("--all", action="store_true", help="every line counted, not only those learned")
    site_show.add_argument("--json", action="store_true")

    entities = command("entities", cmd_entities_list, "List or extend the watchlist of people and organisations.")
    entities.set_defaults(kind=None, json=False)  # `mirsad entities` alone lists everything
    entities.add_argument("--json", dest="json_listing", action="store_true", help="list them as JSON")
    entity_commands = entities.add_subparsers(dest="entities_command", metavar="list|add")
    entity_list = entity_commands.add_parser("list", help="the watchlist, by kind and name")
    entity_list.set_defaults(handler=cmd_entities_list)
    entity_list.add_argument("--kind", choices=["person", "org"])
    entity_list.add_argument("--json", action="store_true")
    entity_add = entity_commands.add_parser(
        "add", help="add a person or organisation (tags from the next item a worker classifies, or the next extract)"
    )
    entity_add.set_defaults(handler=cmd_entities_add)
    entity_add.add_argument("kind", choices=["person", "org"])
    entity_add.add_argument("name", help="the canonical name (also matched as an alias)")
    entity_add.add_argument("--alias", action="append", default=[], help="another spelling (repeat for several)")
    entity_add.add_argument(
        "--short",
        action="append",
        default=[],
        help="a short form (a surname) that counts only after a full mention (repeatable)",
    )

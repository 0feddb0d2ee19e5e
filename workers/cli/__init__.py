"""The ``mirsad`` command line: run the stack, push URLs, watch and query what is stored."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Column, Table
from rich.text import Text
from sqlalchemy import exists, func, select
from sqlalchemy.orm import selectinload

from workers.cli import api as api_command
from workers.cli import reindex as reindex_command
from workers.cli import tokens as tokens_command
from workers.core.errors import MirsadError
from workers.core.settings import PROJECT_ROOT, get_settings
from workers.core.topology import FINAL_STATES, PushVerdict, UrlState
from workers.storage import ledger
from workers.storage.db import migrate, session_scope
from workers.storage.models import Item, TagRecord, UrlRecord

out = Console(highlight=False, soft_wrap=True, markup=False)  # data ("[en]", "[Reuters]") is never markup
err = Console(stderr=True, highlight=False, soft_wrap=True)  # a message stays one line, its paths whole
PROGRESS_THRESHOLD = 10


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=get_settings().log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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

    command("up", cmd_up, "Run a whole stack in the foreground (migrate, workers for every queue, beat).")
    worker = command("worker", cmd_worker, "Run one Celery worker (scale out by running more).")
    worker.add_argument("--queues", help="comma-separated queues (default: all)")
    worker.add_argument("--concurrency", type=int, help="threads (threads pool) or processes (prefork pool)")
    worker.add_argument("--pool", choices=["solo", "threads", "prefork"],
                        help="default: threads for the fetch queue alone, else solo (one process: run one per core)")
    command("beat", cmd_beat, "Run the scheduler (the reconciler); run exactly one per deployment.")
    command("migrate", cmd_migrate, "Bring the database schema to the newest revision.")

    push = command("push", cmd_push, "Validate and enqueue URLs; exits 1 if any was rejected.")
    push.add_argument("urls", nargs="*", metavar="URL", help="URLs, or - to read them from standard input")
    push.add_argument("-f", "--file", type=Path, help="read URLs from a file, one per line")

    watch = command("watch", cmd_watch, "Follow items as they are stored, until Ctrl-C.")
    watch.add_argument("--json", action="store_true", help="JSON lines")
    watch.add_argument("--interval", type=float, default=0.5, help=argparse.SUPPRESS)

    items = command("items", cmd_items, "List stored items, newest first.")
    items.add_argument("--tag", action="append", default=[], metavar="KIND:VALUE",
                       help="only items with this tag (repeat to require several)")
    items.add_argument("--since", help="stored since an ISO date/time, or a duration such as 2h, 30m, 7d")
    items.add_argument("--limit", type=int, default=20)
    items.add_argument("--json", action="store_true")

    stories = command("stories", cmd_stories,
                      "List stories (reports of one event), latest first, with their items and the first to publish.")
    stories.add_argument("--since", help="with an item stored since an ISO date/time, or a duration such as 2h, 7d")
    stories.add_argument("--limit", type=int, default=20)
    stories.add_argument("--json", action="store_true", help="JSON lines, one story each")

    show = command("show", cmd_show, "Show one item (or URL): text, metadata, tags, removed lines, history.")
    show.add_argument("target", metavar="ID|URL")
    show.add_argument("--json", action="store_true")

    status = command("status", cmd_status, "Queue depths, URLs per state and the latest failures.")
    status.add_argument("--json", action="store_true")

    extract = command("extract", cmd_extract, "Run clean, strip and classify in-process on one page; no queue, no database.")
    extract.add_argument("source", metavar="PATH|URL|-")
    extract.add_argument("--text", action="store_true", help="the input is already extracted plain text")
    extract.add_argument("--json", action="store_true")

    sites = command("sites", cmd_sites, "List the sites strip has seen, with their articles and learned lines.")
    sites.add_argument("--json", action="store_true")
    site_show = sites.add_subparsers(dest="sites_command", metavar="show").add_parser(
        "show", help="the lines one site repeats, with the articles each was seen in")
    site_show.add_argument("site", metavar="SITE", help="a host (aa.com.tr, www.aa.com.tr) or a URL of the site")
    site_show.add_argument("--all", action="store_true", help="every line counted, not only those learned")
    site_show.add_argument("--json", action="store_true")

    entities = command("entities", cmd_entities_list, "List or extend the watchlist of people and organisations.")
    entities.set_defaults(kind=None, json=False)  # `mirsad entities` alone lists everything
    entity_commands = entities.add_subparsers(dest="entities_command", metavar="list|add")
    entity_list = entity_commands.add_parser("list", help="the watchlist, by kind and name")
    entity_list.set_defaults(handler=cmd_entities_list)
    entity_list.add_argument("--kind", choices=["person", "org"])
    entity_list.add_argument("--json", action="store_true")
    entity_add = entity_commands.add_parser(
        "add", help="add a person or organisation (tags from the next item a worker classifies, or the next extract)")
    entity_add.set_defaults(handler=cmd_entities_add)
    entity_add.add_argument("kind", choices=["person", "org"])
    entity_add.add_argument("name", help="the canonical name (also matched as an alias)")
    entity_add.add_argument("--alias", action="append", default=[], help="another spelling (repeat for several)")
    entity_add.add_argument("--short", action="append", default=[],
                            help="a short form (a surname) that counts only after a full mention (repeatable)")

    sources = command("sources", cmd_sources_list, "List, add, remove or discover the feeds and sitemaps polled.")
    sources.set_defaults(json=False)  # `mirsad sources` alone lists them
    source_commands = sources.add_subparsers(dest="sources_command", metavar="list|add|remove|discover")
    source_list = source_commands.add_parser("list", help="every source with its health (failing or quiet ones flagged)")
    source_list.set_defaults(handler=cmd_sources_list)
    source_list.add_argument("--json", action="store_true")
    source_add = source_commands.add_parser("add", help="follow a feed or sitemap (written to config/sources.yaml)")
    source_add.set_defaults(handler=cmd_sources_add)
    source_add.add_argument("url", metavar="URL")
    source_add.add_argument("--every", type=int, default=None, metavar="SECONDS", help="poll interval (default 900)")
    source_remove = source_commands.add_parser("remove", help="stop following a source")
    source_remove.set_defaults(handler=cmd_sources_remove)
    source_remove.add_argument("url", metavar="URL")
    source_discover = source_commands.add_parser("discover", help="find a site's feeds and sitemaps (home page, robots.txt)")
    source_discover.set_defaults(handler=cmd_sources_discover)
    source_discover.add_argument("url", metavar="URL", help="the site's home page")
    source_discover.add_argument("--add", action="store_true", help="follow every source found")
    source_discover.add_argument("--every", type=int, default=None, metavar="SECONDS", help="poll interval for --add")

    demo = command("demo", cmd_demo, "Serve the sample pages in seeds/, run the stack, push them and print the tagged items.")
    demo.add_argument("--port", type=int, default=8765, help="local port for the sample pages")
    demo.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for every item")

    settings = command("settings", cmd_settings, "Print every MIRSAD_* setting with its value and meaning.")
    settings.add_argument("--markdown", action="store_true", help="as a Markdown table (for the README)")
    api_command.register(commands)
    tokens_command.register(commands)
    reindex_command.register(commands)
    return parser


# -- running the stack ---------------------------------------------------------------------------------------

def cmd_migrate(_args) -> int:
    settings = get_settings()
    migrate()
    err.print(f"database {_safe_url(settings.database_url)} is at the newest revision")
    return 0


def cmd_worker(args) -> int:
    from workers.core.topology import CPU_QUEUES, IO_QUEUES
    from workers.runtime.celery_app import app

    settings = get_settings()
    queues = args.queues.split(",") if args.queues else list(IO_QUEUES + CPU_QUEUES)
    io_only = set(queues) <= set(IO_QUEUES)
    pool = args.pool or ("threads" if io_only else "solo")
    argv = ["worker", "--queues", ",".join(queues), "--loglevel", settings.log_level, "--pool", pool,
            "--hostname", f"{'fetch' if io_only else 'process'}-{os.getpid()}@%h"]
    if pool == "threads":  # many requests in flight, and a few messages prefetched per thread
        argv += ["--concurrency", str(args.concurrency or settings.fetch_concurrency), "--prefetch-multiplier", "2"]
    elif pool == "prefork":
        argv += ["--concurrency", str(args.concurrency or settings.process_concurrency)]
    if not io_only:  # before consuming (and before a prefork pool forks, so children inherit it)
        from workers.runtime.pipeline import warm_up
        warm_up()
    app.worker_main(argv)
    return 0


def cmd_beat(_args) -> int:
    """Celery beat with its in-memory scheduler: every entry is an interval that may as well start
    over after a restart, and without a schedule file two stacks on one machine cannot share one."""
    from workers.runtime.celery_app import app

    app.start(["beat", "--scheduler", "celery.beat:Scheduler", "--loglevel", get_settings().log_level])
    return 0


def cmd_up(_args) -> int:
    from workers.runtime.stack import Stack

    settings = get_settings()
    migrate()
    _require_broker()
    stack = Stack().start()
    err.print(f"[bold]Mirsad is running[/bold] (database {_safe_url(settings.database_url)}, broker "
              f"{_safe_url(settings.redis_url)}). Push with [cyan]mirsad push URL[/cyan], follow with "
              f"[cyan]mirsad watch[/cyan]. Ctrl-C stops.")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while not stack.exited():
            time.sleep(0.5)
        err.print(f"[red]a service stopped:[/red] {stack.exited()}; stopping the rest")
        return 1
    except KeyboardInterrupt:
        err.print("stopping (running tasks finish first)…")
        return 0
    finally:
        stack.stop()


# -- pushing and following -----------------------------------------------------------------------------------

def cmd_push(args) -> int:
    from workers.runtime.push import push

    urls = _read_urls(args)
    if not urls:
        err.print("nothing to push: give URLs, -f FILE or - for standard input")
        return 2
    _require_broker()
    counts = dict.fromkeys(PushVerdict, 0)
    style = {PushVerdict.ACCEPTED: "green", PushVerdict.KNOWN: "yellow", PushVerdict.REJECTED: "red"}
    with Progress(console=err, transient=True, disable=len(urls) < PROGRESS_THRESHOLD) as progress:
        bar = progress.add_task("pushing", total=len(urls))
        for result in push(urls):
            counts[result.outcome] += 1
            progress.console.print(f"[{style[result.outcome]}]{result.outcome:<8}[/] {escape(result.url)}  "
                                   f"{escape(result.detail)}", soft_wrap=True)  # one line per URL, for grep
            progress.advance(bar)
    err.print(f"{counts[PushVerdict.ACCEPTED]} accepted, {counts[PushVerdict.KNOWN]} already known, "
              f"{counts[PushVerdict.REJECTED]} rejected")
    return 1 if counts[PushVerdict.REJECTED] else 0


def _read_urls(args) -> list[str]:
    lines: list[str] = []
    for url in args.urls:
        lines += sys.stdin.read().splitlines() if url == "-" else [url]
    if args.file:
        lines += args.file.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def cmd_watch(args) -> int:
    with session_scope() as session:
        last_id = session.scalar(select(func.max(Item.id))) or 0
    err.print("watching for new items (Ctrl-C to stop)…")
    try:
        while True:
            with session_scope() as session:
                new = session.scalars(select(Item).where(Item.id > last_id).order_by(Item.id)
                                      .options(selectinload(Item.tags))).all()
                for item in new:
                    _print_item_line(item, args.json)
                    last_id = item.id
            sys.stdout.flush()
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


def cmd_items(args) -> int:
    query = select(Item).order_by(Item.id.desc()).limit(args.limit).options(selectinload(Item.tags))
    for spec in args.tag:
        kind, sep, value = spec.partition(":")
        if not sep:
            err.print(f"--tag wants KIND:VALUE, got {spec!r}")
            return 2
        query = query.where(exists().where(TagRecord.item_id == Item.id, TagRecord.kind == kind,
                                           TagRecord.value == value))
    if args.since:
        query = query.where(Item.stored_at >= _parse_since(args.since))
    with session_scope() as session:
        rows = session.scalars(query).all()
        if args.json:
            for item in rows:
                _print_item_line(item, True)
            return 0
        table = Table("id", "stored", "lang", "title", "site", "tags")
        for item in rows:
            table.add_row(str(item.id), item.stored_at.strftime("%Y-%m-%d %H:%M"), item.language or "",
                          (item.title or "")[:60], item.site_name or "", _tag_summary(item))
        out.print(table)
        err.print(f"{len(rows)} item(s)")
    return 0


def cmd_stories(args) -> int:
    from workers.storage.store import list_stories

    with session_scope() as session:
        found = list_stories(session, _parse_since(args.since) if args.since else None, args.limit)
    if args.json:
        for story in found:
            print(json.dumps(story, ensure_ascii=False))
        return 0
    table = Table("story", "item", "published", "source", Column("title", overflow="fold"))
    for story in found:  # items in order of publication: the first row is the first source to publish
        for position, member in enumerate(story["items"]):
            copy = f" (copy of #{member['copy_of']})" if member["copy_of"] else ""
            table.add_row(str(story["story"]) if position == 0 else "", f"#{member['id']}",
                          (member["published_at"] or "")[:16].replace("T", " "), member["source"],
                          f"{member['title'] or ''}{copy}", end_section=position == len(story["items"]) - 1)
    out.print(table)
    err.print(f"{len(found)} stor{'y' if len(found) == 1 else 'ies'}")
    return 0


def cmd_show(args) -> int:
    from workers.storage.store import item_to_dict

    with session_scope() as session:
        record = ledger.find(session, args.target) if not args.target.isdigit() else None
        item = session.get(Item, int(args.target)) if args.target.isdigit() else (
            session.get(Item, record.item_id) if record and record.item_id else None)
        if item is not None and record is None:
            record = session.scalar(select(UrlRecord).where(UrlRecord.item_id == item.id)  # the URL that stored it
                                    .order_by(UrlRecord.alias_of.is_not(None), UrlRecord.id).limit(1))
        if item is None and record is None:
            err.print(f"no item or URL {args.target!r}")
            return 1
        data = item_to_dict(item) if item else {"url": record.url, "text": None}
        if record is not None:
            data["state"] = record.state
            data["last_error"] = record.last_error
            data["history"] = [{"at": e.at.isoformat(), "state": e.state, "attempt": e.attempt, "detail": e.detail}
                               for e in record.events]
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    _print_document(data)
    return 0


def cmd_status(args) -> int:
    from workers.core.topology import TASK_ROUTES
    from workers.runtime.celery_app import app

    queues = sorted({route["queue"] for route in TASK_ROUTES.values()})
    try:
        with app.connection_for_read() as connection:
            client = connection.default_channel.client
            depths = {queue: client.llen(queue) for queue in queues}
    except Exception as exc:  # the broker may be down; the database still answers
        depths = {queue: f"? ({type(exc).__name__})" for queue in queues}
    with session_scope() as session:
        counts = ledger.counts_by_state(session)
        failures = [{"url": r.url, "state": r.state, "reason": r.last_error, "at": r.updated_at.isoformat()}
                    for r in ledger.latest_failures(session)]
        flagged = _flagged_sources(session)
    if args.json:
        print(json.dumps({"queues": depths, "states": counts, "latest_failures": failures,
                          "flagged_sources": flagged}, ensure_ascii=False))
        return 0
    table = Table("queue", "waiting")
    for queue, depth in depths.items():
        table.add_row(queue, str(depth))
    out.print(table)
    table = Table("state", "URLs")
    for state in UrlState:
        table.add_row(state, str(counts.get(state, 0)))
    out.print(table)
    if failures:
        table = Table("failed at", "state", "URL", "reason")
        for f in failures:
            table.add_row(f["at"][:19], f["state"], f["url"], f["reason"] or "")
        out.print(table)
    if flagged:
        table = Table("source", "needs a look")
        for source in flagged:
            table.add_row(source["url"], source["flag"])
        out.print(table)
    return 0


# -- one page, in-process ------------------------------------------------------------------------------------

def cmd_extract(args) -> int:
    from workers.runtime.pipeline import extract, extract_text
    from workers.stages.fetch import decode_html, fetch

    source = args.source
    if re.match(r"(?i)^https?://", source):
        page = fetch(source)
        document = extract(page.html, url=page.final_url, fetched_at=page.fetched_at)
    else:
        try:
            raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
        except OSError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            return 2
        text, _codec = decode_html(raw)
        document = extract_text(text) if args.text else extract(text)
    data = document.to_dict()
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        _print_document(data)
    return 0


# -- what strip learned and the watchlist ---------------------------------------------------------------------

def cmd_sites(args) -> int:
    from workers.core.urls import site_of
    from workers.storage.sites import list_sites, site_lines

    min_articles = get_settings().site_line_min_articles
    if args.sites_command == "show":
        site = site_of(args.site)
        with session_scope() as session:
            lines = site_lines(session, site, 1 if args.all else min_articles)
        if args.json:
            print(json.dumps({"site": site, "min_articles": min_articles,
                              "lines": [{"line": line.line, "articles": line.articles,
                                         "fingerprint": line.fingerprint, "learned": line.articles >= min_articles}
                                        for line in lines]}, ensure_ascii=False))
            return 0
        table = Table("articles", "learned", Column("line", overflow="fold"), "rule")
        for line in lines:
            table.add_row(str(line.articles), "yes" if line.articles >= min_articles else "",
                          line.line, f"site:{line.fingerprint}")
        out.print(table)
        err.print(f"{len(lines)} line(s) of {site}; a line is learned once seen in {min_articles} articles")
        return 0
    with session_scope() as session:
        summaries = list_sites(session, min_articles)
    if args.json:
        print(json.dumps([{"site": s.site, "articles": s.articles, "learned": s.learned} for s in summaries]))
        return 0
    table = Table("site", "articles", "lines learned")
    for summary in summaries:
        table.add_row(summary.site, str(summary.articles), str(summary.learned))
    out.print(table)
    err.print(f"{len(summaries)} site(s); details: mirsad sites show SITE")
    return 0


def cmd_entities_list(args) -> int:
    from workers.stages.entities import list_entities

    entities = list_entities(get_settings().config_dir, args.kind)
    if args.json:
        print(json.dumps([{"kind": e.kind, "name": e.name, "aliases": list(e.aliases), "short": list(e.short)}
                          for e in entities], ensure_ascii=False))
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
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        return 2
    err.print(f"added {args.kind} {escape(args.name)} to {path}; workers tag it from their next item, "
              f"mirsad extract at once")
    return 0


# -- sources -------------------------------------------------------------------------------------------------

def cmd_sources_list(args) -> int:
    from workers.storage.sources import describe, listing

    now = datetime.now(timezone.utc)
    with session_scope() as session:
        rows = [describe(source, now) for source in listing(session)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    table = Table("url", "kind", "every", "last poll", "last new", "new URLs", Column("health", overflow="fold"))
    for row in rows:
        table.add_row(row["url"], row["kind"] or "?", f"{row['every']}s", (row["last_polled_at"] or "never")[:19],
                      (row["last_new_at"] or "never")[:19], str(row["entries_seen"]), row["flag"] or "ok")
    out.print(table)
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
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        return None
    _sync_sources()
    return path


def cmd_sources_discover(args) -> int:
    from workers.intake.discover import discover
    from workers.intake.politeness import MAX_INLINE_WAIT, polite_fetch_fn
    from workers.storage.sources import DEFAULT_EVERY, add_to_file, read_declared

    _require_broker()  # the requests take turns with the workers' through Redis
    found = discover(args.url, fetch_fn=polite_fetch_fn(wait_up_to=MAX_INLINE_WAIT))
    table = Table("url", "kind", "found in", "entries")
    for source in found:
        table.add_row(source.url, source.kind, source.via, str(source.entries))
    out.print(table)
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


def _flagged_sources(session) -> list[dict]:
    from workers.storage.sources import flag, listing

    now = datetime.now(timezone.utc)
    return [{"url": source.url, "flag": reason} for source in listing(session) if (reason := flag(source, now))]


# -- the demo ------------------------------------------------------------------------------------------------

def cmd_demo(args) -> int:
    import functools
    import os
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from workers.runtime.push import push
    from workers.runtime.stack import Stack

    pages_dir = PROJECT_ROOT / "seeds" / "pages"
    pages = sorted(p.name for p in pages_dir.glob("*.html"))
    os.environ.setdefault("MIRSAD_ALLOW_PRIVATE_HOSTS", "127.0.0.0/8")  # the sample pages are served locally
    os.environ.setdefault("MIRSAD_API_OPEN_READ", "1")  # the demo's API answers reads without a token
    get_settings.cache_clear()
    settings = get_settings()
    migrate()
    _require_broker()

    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), functools.partial(QuietHandler, directory=str(pages_dir)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    err.print(f"serving {len(pages)} sample pages from {pages_dir} on http://127.0.0.1:{args.port}/; "
              f"database {_safe_url(settings.database_url)}")
    log_path = Path(tempfile.gettempdir()) / "mirsad-demo.log"
    with open(log_path, "ab") as log_file, Stack(log_file=log_file):
        err.print(f"stack started (worker logs: {log_path})")
        results = list(push(f"http://127.0.0.1:{args.port}/{name}" for name in pages))
        for r in results:
            err.print(f"{r.outcome:<8} {r.url}  {r.detail}")
        ids = [r.url_id for r in results if r.url_id is not None]
        states = _wait_until_final(ids, args.timeout)
    server.shutdown()
    _print_demo_items(ids)
    bad = {url_id: state for url_id, state in states.items() if state != UrlState.STORED}
    if bad or len(ids) != len(pages):
        err.print(f"[red]{len(bad)} of {len(pages)} pages did not end stored:[/red] {bad}")
        return 1
    err.print(f"[green]all {len(ids)} pages stored and tagged.[/green] Try: mirsad items --tag country:LY")
    return 0


def _wait_until_final(ids: list[int], timeout: float) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    with Progress(console=err, transient=True) as progress:
        bar = progress.add_task("waiting for items", total=len(ids))
        while True:
            with session_scope() as session:
                states = dict(session.execute(select(UrlRecord.id, UrlRecord.state)
                                              .where(UrlRecord.id.in_(ids))).all())
            done = sum(state in FINAL_STATES for state in states.values())
            progress.update(bar, completed=done)
            if done == len(ids) or time.monotonic() > deadline:
                return states
            time.sleep(0.3)


def _print_demo_items(ids: list[int]) -> None:
    with session_scope() as session:
        records = session.scalars(select(UrlRecord).where(UrlRecord.id.in_(ids)).order_by(UrlRecord.id)).all()
        table = Table("#", "state", "lang", "title", "tags")
        for record in records:
            item = session.get(Item, record.item_id) if record.item_id else None
            table.add_row(str(record.id), record.state, item.language or "" if item else "",
                          (item.title or "")[:50] if item else (record.last_error or ""),
                          _tag_summary(item) if item else "")
        out.print(table)


# -- settings and output helpers -----------------------------------------------------------------------------

def cmd_settings(args) -> int:
    rows = get_settings().describe()
    if args.markdown:
        print("| variable | default | meaning |\n| --- | --- | --- |")
        for name, _value, default, doc in rows:
            print(f"| `{name}` | `{default}` | {doc} |")
        return 0
    table = Table(Column("variable", no_wrap=True), Column("value", overflow="fold"),
                  Column("meaning", overflow="fold"))
    for name, value, _default, doc in rows:
        table.add_row(name, value, doc)
    out.print(table)
    return 0


def _print_item_line(item: Item, as_json: bool) -> None:
    from workers.storage.store import item_to_dict

    if as_json:
        data = item_to_dict(item)
        print(json.dumps(data, ensure_ascii=False))
    else:
        out.print(f"#{item.id} [{item.language or '?'}] {item.title or '(no title)'} — "
                  f"{item.site_name or item.url} — {_tag_summary(item)}")


def _tag_summary(item: Item) -> str:
    order = {"language": 0, "country": 1, "topic": 2}
    tags = sorted(item.tags, key=lambda t: (order.get(t.kind, 9), -t.score))
    return ", ".join(f"{t.kind}:{t.value}" for t in tags if t.kind != "language")


def _print_document(data: dict) -> None:
    out.rule(data.get("title") or "(no title)")
    for key in ("id", "url", "canonical_url", "language", "published_at", "author", "site_name", "credit",
                "fetched_at", "stored_at", "state", "last_error"):
        if data.get(key) is not None:
            out.print(Text.assemble((key, "bold"), f": {data[key]}"))
    if data.get("keywords"):
        out.print(Text.assemble(("keywords", "bold"), f": {', '.join(data['keywords'])}"))
    if data.get("text"):
        out.rule("text")
        out.print(data["text"])
    if data.get("tags"):
        table = Table("kind", "value", "score", "evidence")
        for t in data["tags"]:
            table.add_row(t["kind"], t["value"], f"{t['score']:.2f}", ", ".join(map(str, t["evidence"][:6])))
        out.print(table)
    if data.get("removed"):
        table = Table("removed line", "rule")
        for r in data["removed"]:
            table.add_row(r["line"][:100], r["rule"])
        out.print(table)
    if data.get("history"):
        table = Table("at", "state", "attempt", "detail")
        for h in data["history"]:
            table.add_row(h["at"][:19], h["state"], str(h["attempt"]), h["detail"] or "")
        out.print(table)


def _parse_since(value: str) -> datetime:
    match = re.fullmatch(r"(\d+)\s*([smhd])", value.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return datetime.now(timezone.utc) - timedelta(**{unit: int(match.group(1))})
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _safe_url(url: str) -> str:
    return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)


def _require_broker() -> None:
    """Fail early, with the fix, when Redis is not there (rather than hanging in a retry loop)."""
    import redis

    url = get_settings().redis_url
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        err.print(f"[red]error:[/red] Redis is not reachable at {_safe_url(url)} ({exc}). Start it (e.g. "
                  f"`redis-server --daemonize yes`) or set MIRSAD_REDIS_URL.")
        raise SystemExit(2) from None


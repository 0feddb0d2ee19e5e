"""Pushing URLs and reading what was stored: push, watch, items, stories, show, status, extract."""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.markup import escape
from rich.progress import Progress

from workers.cli.output import (
    PLAIN,
    PROGRESS_THRESHOLD,
    cut_at_word,
    err,
    fail,
    parse_since,
    print_document,
    print_item_line,
    print_json,
    print_rows,
    read_urls,
    require_broker,
    shown_of,
    tag_summary,
)
from workers.core.errors import MirsadError
from workers.core.topology import FETCH_QUEUE, PushVerdict, UrlState
from workers.runtime.status import attached_processes, status_report
from workers.storage import queries
from workers.storage.db import session_scope
from workers.storage.items import SORTS, InvalidFilter, ItemFilter, parse_tag
from workers.text.query import parse as parse_query


def cmd_push(args) -> int:
    from workers.runtime.push import push

    urls = read_urls(args)
    if not urls:
        err.print("nothing to push: give URLs, -f FILE or - for standard input")
        return 2
    require_broker()
    warn_without_fetch_worker()
    counts = dict.fromkeys(PushVerdict, 0)
    style = {PushVerdict.ACCEPTED: "green", PushVerdict.KNOWN: "yellow", PushVerdict.REJECTED: "red"}
    with Progress(console=err, transient=True, disable=len(urls) < PROGRESS_THRESHOLD) as progress:
        bar = progress.add_task("pushing", total=len(urls))
        for result in push(urls):
            counts[result.outcome] += 1
            progress.console.print(
                f"[{style[result.outcome]}]{result.outcome:<8}[/] {escape(result.url)}  {escape(result.detail)}",
                soft_wrap=True,
            )  # one line per URL, for grep
            progress.advance(bar)
    err.print(
        f"{counts[PushVerdict.ACCEPTED]} accepted, {counts[PushVerdict.KNOWN]} already known, "
        f"{counts[PushVerdict.REJECTED]} rejected"
    )
    return 1 if counts[PushVerdict.REJECTED] else 0


def warn_without_fetch_worker() -> None:
    processes = attached_processes()
    if processes is not None and not any(FETCH_QUEUE in (p["queues"] or "").split(",") for p in processes):
        err.print(
            f"[yellow]warning:[/yellow] no worker consumes the {FETCH_QUEUE} queue; the URLs wait until one starts"
        )  # fits 80 columns: one line


def cmd_watch(args) -> int:
    with session_scope() as session:
        last_id = queries.latest_item_id(session)
    err.print("watching for new items (Ctrl-C to stop)…")
    try:
        while True:
            with session_scope() as session:
                for item in queries.items_after(session, last_id):
                    print_item_line(item, args.json)
                    last_id = item.id
            sys.stdout.flush()
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


def item_filter(args) -> ItemFilter:
    """The listing ``args`` ask for: words of the query language, ``--tag`` (kind and value in any case),
    ``--lang``, ``--site``, ``--story`` and ``--since``; the same filter the API's /items builds."""
    try:
        tags = []
        for spec in args.tag:
            kind, sep, value = spec.partition(":")
            tags.append(parse_tag(f"{kind.strip().lower()}{sep}{value}"))
        query = parse_query(" ".join(args.words))
    except MirsadError as exc:
        raise fail(f"{exc} (see mirsad items --help)") from None
    return ItemFilter(
        query=query,
        tags=tuple(tags),
        language=args.lang,
        site=args.site,
        story=args.story,
        since=parse_since(args.since) if args.since else None,
    )


def cmd_items(args) -> int:
    from workers.storage.items import count_items, list_items, stored_spelling

    wanted = item_filter(args)
    with session_scope() as session:
        tags = tuple((kind, stored_spelling(session, kind, value)) for kind, value in wanted.tags)
        wanted = dataclasses.replace(wanted, tags=tags)
        try:
            page = list_items(session, wanted, args.sort, args.limit, args.cursor)
        except InvalidFilter as exc:
            raise fail(str(exc)) from None
        total = count_items(session, wanted) if page.next_cursor or args.cursor else len(page.items)
        if args.json:
            for item in page.items:
                print_item_line(item, True)
        else:
            print_rows(
                ["item", "date", "lang", "title", "site", "tags"],
                [
                    [
                        item.id,
                        (item.published_at or item.stored_at.isoformat())[:16].replace("T", " "),
                        item.language or "",
                        cut_at_word(item.title, 60),
                        item.site_name or "",
                        tag_summary(item),
                    ]
                    for item in page.items
                ],
            )
    next_page = f"; next page: --cursor {page.next_cursor}" if page.next_cursor else ""
    err.print(shown_of(len(page.items), total, "item(s)") + next_page)
    return 0


def cmd_stories(args) -> int:
    from workers.storage.items import stories_page
    from workers.storage.store import count_stories

    since = parse_since(args.since) if args.since else None
    with session_scope() as session:
        try:
            found, next_cursor = stories_page(session, since, args.limit, args.cursor)
        except InvalidFilter as exc:
            raise fail(str(exc)) from None
        total = count_stories(session, since) if next_cursor or args.cursor else len(found)
    if args.json:
        for story in found:
            print_json(story)
    else:
        rows, ends = [], set()
        for story in found:  # items in order of publication: the first row is the first source to publish
            for position, member in enumerate(story["items"]):
                copy = f" (copy of item {member['copy_of']})" if member["copy_of"] else ""
                rows.append(
                    [
                        story["story"] if position == 0 or PLAIN["on"] else "",
                        member["id"],
                        (member["published_at"] or "")[:16].replace("T", " "),
                        member["source"],
                        cut_at_word(member["title"], 80) + copy,
                    ]
                )
            ends.add(len(rows) - 1)
        print_rows(["story", "item", "published", "source", "title"], rows, section_ends=ends)
    next_page = f"; next page: --cursor {next_cursor}" if next_cursor else ""
    err.print(shown_of(len(found), total, "stories" if total != 1 else "story") + next_page)
    return 0


def cmd_show(args) -> int:
    from workers.storage.store import item_to_dict

    with session_scope() as session:
        item, record = queries.item_or_url(session, args.target)
        if item is not None:
            data = item_to_dict(item)
        elif record is not None:
            data = {"url": record.url, "text": None}
        else:
            err.print(f"no item or URL {args.target!r}")
            return 1
        if record is not None:
            data["state"] = record.state
            data["last_error"] = record.last_error
            data["history"] = [
                {"at": e.at.isoformat(), "state": e.state, "attempt": e.attempt, "detail": e.detail}
                for e in record.events
            ]
    if args.json:
        print_json(data, indent=2)
        return 0
    print_document(data)
    return 0


def cmd_status(args) -> int:
    with session_scope() as session:
        report = status_report(session)
    if args.json:
        print_json(report)
        return 0
    depths, counts, failures = report["queues"], report["states"], report["latest_failures"]
    flagged, sick_sites, processes = report["flagged_sources"], report["flagged_sites"], report["processes"]
    if processes is not None:
        print_rows(
            ["process", "role", "queues", "last heartbeat"],
            [[p["name"], p["role"], p["queues"], f"{p['seconds_ago']:g} s ago"] for p in processes],
        )
        if not any(p["role"] == "beat" for p in processes):
            err.print(
                "[yellow]warning:[/yellow] no beat attached: stuck URLs are not re-enqueued and sources are "
                "not polled (mirsad up, or mirsad beat)"
            )
        if not processes:
            err.print("[yellow]warning:[/yellow] no worker attached: nothing is processed (mirsad up)")
    print_rows(["queue", "waiting"], [[queue, depth] for queue, depth in depths.items()])
    print_rows(["state", "URLs"], [[state, counts.get(state, 0)] for state in UrlState])
    if failures:
        print_rows(
            ["failed at", "state", "URL", "reason"],
            [[(f["at"] or "")[:19], f["state"], f["url"], f["reason"] or ""] for f in failures],
        )
    if flagged:
        print_rows(["source", "needs a look"], [[source["url"], source["flag"]] for source in flagged])
    if sick_sites:
        print_rows(["site", "needs a look"], [[site["site"], "; ".join(site["flags"])] for site in sick_sites])
    return 0


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
            raise fail(str(exc)) from None
        text, _codec = decode_html(raw)
        document = extract_text(text) if args.text else extract(text)
    data = document.to_dict()
    if args.json:
        print_json(data, indent=2)
    else:
        print_document(data)
    return 0


def register(commands, command: Callable[..., argparse.ArgumentParser]) -> None:
    push = command("push", cmd_push, "Validate and enqueue URLs; exits 1 if any was rejected.")
    push.add_argument("urls", nargs="*", metavar="URL", help="URLs, or - to read them from standard input")
    push.add_argument("-f", "--file", type=Path, help="read URLs from a file, one per line")

    watch = command("watch", cmd_watch, "Follow items as they are stored, until Ctrl-C.")
    watch.add_argument("--json", action="store_true", help="JSON lines")
    watch.add_argument("--interval", type=float, default=0.5, help=argparse.SUPPRESS)

    items = command("items", cmd_items, "List stored items, newest first (or most relevant first with words).")
    items.add_argument(
        "words", nargs="*", metavar="QUERY", help='words of the query language: "a phrase", OR, -word, prefix*, lang:ar'
    )
    items.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KIND:VALUE",
        help="only items with this tag, in any case (repeat to require several)",
    )
    items.add_argument("--lang", help="only items in this language (ar, tr, en)")
    items.add_argument("--site", help="only items of this site (aa.com.tr also takes www.aa.com.tr)")
    items.add_argument("--story", type=int, help="only the items of this story")
    items.add_argument("--since", help="published (or stored) since an ISO date/time, or a duration such as 2h, 7d")
    items.add_argument("--sort", choices=SORTS, help="default: relevance with words, else date")
    items.add_argument("--limit", type=int, default=20)
    items.add_argument("--cursor", help="the next page, as the previous page's last line gave it")
    items.add_argument("--json", action="store_true")

    stories = command(
        "stories",
        cmd_stories,
        "List stories (reports of one event), latest first, with their items and the first to publish.",
    )
    stories.add_argument("--since", help="with an item stored since an ISO date/time, or a duration such as 2h, 7d")
    stories.add_argument("--limit", type=int, default=20)
    stories.add_argument("--cursor", help="the next page, as the previous page's last line gave it")
    stories.add_argument("--json", action="store_true", help="JSON lines, one story each")

    show = command("show", cmd_show, "Show one item (or URL): text, metadata, tags, removed lines, history.")
    show.add_argument("target", metavar="ID|URL")
    show.add_argument("--json", action="store_true")

    status = command("status", cmd_status, "Queue depths, URLs per state and the latest failures.")
    status.add_argument("--json", action="store_true")

    extract = command(
        "extract", cmd_extract, "Run clean, strip and classify in-process on one page; no queue, no database."
    )
    extract.add_argument("source", metavar="PATH|URL|-")
    extract.add_argument("--text", action="store_true", help="the input is already extracted plain text")
    extract.add_argument("--json", action="store_true")

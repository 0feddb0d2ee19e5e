"""Pushing URLs and reading what was stored: push, watch, items, stories, show, status, extract."""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.markup import escape
from rich.progress import Progress
from rich.table import Column, Table

from workers.cli.output import (
    PROGRESS_THRESHOLD,
    cut_at_word,
    err,
    fail,
    out,
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
from workers.core.topology import FETCH_QUEUE, PushVerdict, UrlState
from workers.runtime.status import attached_processes, status_report
from workers.storage import queries
from workers.storage.db import session_scope


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


TAG_KINDS = ("language", "country", "person", "org", "place", "topic")  # what classify tags


def cmd_items(args) -> int:
    tags = []
    for spec in args.tag:
        kind, sep, value = spec.partition(":")
        if not sep or not value:
            raise fail(f"--tag wants KIND:VALUE (such as country:LY), got {spec!r}")
        if kind.lower() not in TAG_KINDS:
            raise fail(f"--tag {spec!r}: unknown kind {kind!r}; the kinds are {', '.join(TAG_KINDS)}")
        tags.append((kind.lower(), value))
    since = parse_since(args.since) if args.since else None
    with session_scope() as session:
        rows = queries.newest_items(session, tags, since, args.limit)
        total = queries.count_items(session, tags, since) if len(rows) >= args.limit else len(rows)
        if args.json:
            for item in rows:
                print_item_line(item, True)
        else:
            print_rows(
                ["item", "stored", "lang", "title", "site", "tags"],
                [
                    [
                        item.id,
                        item.stored_at.strftime("%Y-%m-%d %H:%M"),
                        item.language or "",
                        cut_at_word(item.title, 60),
                        item.site_name or "",
                        tag_summary(item),
                    ]
                    for item in rows
                ],
            )
    err.print(shown_of(len(rows), total, "item(s)"))
    return 0


def cmd_stories(args) -> int:
    from workers.storage.store import list_stories

    with session_scope() as session:
        found = list_stories(session, parse_since(args.since) if args.since else None, args.limit)
    if args.json:
        for story in found:
            print_json(story)
        return 0
    table = Table("story", "item", "published", "source", Column("title", overflow="fold"))
    for story in found:  # items in order of publication: the first row is the first source to publish
        for position, member in enumerate(story["items"]):
            copy = f" (copy of #{member['copy_of']})" if member["copy_of"] else ""
            table.add_row(
                str(story["story"]) if position == 0 else "",
                f"#{member['id']}",
                (member["published_at"] or "")[:16].replace("T", " "),
                member["source"],
                f"{member['title'] or ''}{copy}",
                end_section=position == len(story["items"]) - 1,
            )
    out.print(table)
    err.print(f"{len(found)} stor{'y' if len(found) == 1 else 'ies'}")
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
    table = Table("queue", "waiting")
    for queue, depth in depths.items():
        table.add_row(queue, str(depth))
    out.print(table)
    table = Table("state", "URLs")
    for state in UrlState:
        table.add_row(state, str(counts.get(state, 0)))
    out.print(table)
    if failures:
        print_rows(
            ["failed at", "state", "URL", "reason"],
            [[(f["at"] or "")[:19], f["state"], f["url"], f["reason"] or ""] for f in failures],
        )
    if flagged:
        table = Table("source", "needs a look")
        for source in flagged:
            table.add_row(source["url"], source["flag"])
        out.print(table)
    if sick_sites:
        table = Table("site", Column("needs a look", overflow="fold"))
        for site in sick_sites:
            table.add_row(site["site"], "; ".join(site["flags"]))
        out.print(table)
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

    items = command("items", cmd_items, "List stored items, newest first.")
    items.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KIND:VALUE",
        help="only items with this tag (repeat to require several)",
    )
    items.add_argument("--since", help="stored since an ISO date/time, or a duration such as 2h, 30m, 7d")
    items.add_argument("--limit", type=int, default=20)
    items.add_argument("--json", action="store_true")

    stories = command(
        "stories",
        cmd_stories,
        "List stories (reports of one event), latest first, with their items and the first to publish.",
    )
    stories.add_argument("--since", help="with an item stored since an ISO date/time, or a duration such as 2h, 7d")
    stories.add_argument("--limit", type=int, default=20)
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

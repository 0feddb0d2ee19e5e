"""What every command shares: the two consoles, JSON and error output, and the formatting of items."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.segment import Segment, Segments
from rich.table import Column, Table
from rich.text import Text

from workers.core.errors import MirsadError
from workers.core.settings import get_settings, redacted
from workers.storage.models import Item

out = Console(highlight=False, soft_wrap=True, markup=False)  # data ("[en]", "[Reuters]") is never markup
err = Console(stderr=True, highlight=False, soft_wrap=True)  # a message stays one line, its paths whole
PROGRESS_THRESHOLD = 10
FSI, PDI = "\u2068", "\u2069"  # first-strong isolate … pop directional isolate
BOX_DRAWING = re.compile("[\u2500-\u257f]+")  # a table's borders, drawn between the cells
PLAIN = {"on": False}  # --plain: one field per line instead of tables (set by main)


class CommandError(MirsadError):
    """A user's mistake a command refuses, said in one line (``main`` prints it and exits 2)."""

    @property
    def reason(self) -> str:
        return str(self)


def fail(message: str) -> CommandError:
    """The error to raise for ``message``: ``raise fail("no such file")``."""
    return CommandError(message)


def isolated(line: list[Segment]) -> list[Segment]:
    """One rendered table line with each cell's text (between two borders) in Unicode isolates, so that
    right-to-left cells side by side keep their order on a bidi terminal, and a digit or Latin word next to
    Arabic is not pulled into its run. Per line, not per cell: a folded cell is isolated on each of its lines."""
    result: list[Segment] = []
    run: list[Segment] = []

    def close_run() -> None:
        filled = [n for n, segment in enumerate(run) if segment.text.strip()]
        for n, segment in enumerate(run):
            text = segment.text
            if filled and n == filled[-1]:
                body = text.rstrip()
                text = body + PDI + text[len(body) :]
            if filled and n == filled[0]:
                body = text.lstrip()
                text = text[: len(text) - len(body)] + FSI + body
            result.append(Segment(text, segment.style, segment.control))
        run.clear()

    for segment in line:
        if segment.text and not segment.control and BOX_DRAWING.fullmatch(segment.text):
            close_run()
            result.append(segment)
        else:
            run.append(segment)
    close_run()
    return result


def cut_at_word(text: str | None, limit: int) -> str:
    """``text`` within ``limit`` characters, cut at a word boundary with … when it is longer."""
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,.;:—-") + "…"


def print_rows(
    headers: list[str], rows: list[list[object]], no_wrap: tuple[str, ...] = (), section_ends: Collection[int] = ()
) -> None:
    """Every table the CLI prints: cells isolated (``isolated``) and folded, never cut (a URL stays whole);
    with --plain one ``field: value`` per line, a blank line between rows (for grep, screen readers and
    terminals without bidi). ``section_ends``: the rows after which the table draws a line."""
    if PLAIN["on"]:
        for row in rows:
            for header, value in zip(headers, row, strict=True):
                if value not in (None, ""):
                    out.print(f"{header}: {value}")
            out.print("")
        return
    table = Table(*(Column(header, overflow="fold", no_wrap=header in no_wrap) for header in headers))
    for number, row in enumerate(rows):
        table.add_row(*("" if value is None else str(value) for value in row), end_section=number in section_ends)
    lines = out.render_lines(table, out.options, pad=False)
    out.print(Segments([segment for line in lines for segment in [*isolated(line), Segment.line()]]), end="")


def offer_plain(parser: argparse.ArgumentParser, top: bool = True) -> None:
    """``--plain`` on ``parser`` and on every command and subcommand below it (``mirsad sources list --plain``
    as well as ``mirsad --plain sources``); below the top it is absent unless given, so it never resets one
    given before."""
    if "--plain" not in parser._option_string_actions:
        parser.add_argument(
            "--plain",
            action="store_true",
            default=False if top else argparse.SUPPRESS,
            help="one field per line instead of tables",
        )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                offer_plain(sub, top=False)


def shown_of(shown: int, total: int, noun: str) -> str:
    """``20 of 37 items shown; --limit N for more`` when the list was cut, else ``37 items``."""
    return f"{shown} of {total} {noun} shown; --limit N for more" if total > shown else f"{total} {noun}"


def print_json(data, indent: int | None = None) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=indent))


def read_urls(args) -> list[str]:
    lines: list[str] = []
    for url in args.urls:
        lines += sys.stdin.read().splitlines() if url == "-" else [url]
    if args.file:
        lines += args.file.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def print_item_line(item: Item, as_json: bool) -> None:
    from workers.storage.store import item_to_dict

    if as_json:
        data = item_to_dict(item)
        print(json.dumps(data, ensure_ascii=False))
    else:
        out.print(
            f"#{item.id} [{item.language or '?'}] {item.title or '(no title)'} — "
            f"{item.site_name or item.url} — {tag_summary(item)}"
        )


def tag_summary(item: Item) -> str:
    order = {"language": 0, "country": 1, "topic": 2}
    tags = sorted(item.tags, key=lambda t: (order.get(t.kind, 9), -t.score))
    return ", ".join(f"{t.kind}:{t.value}" for t in tags if t.kind != "language")


def heading(label: str, value: str | None = None) -> None:
    """A rule across the terminal naming a part of a document; with --plain a ``label: value`` line."""
    if PLAIN["on"]:
        out.print(f"{label}: {value}" if value else f"{label}:")
    else:
        out.rule(value or label)


def print_document(data: dict) -> None:
    heading("title", data.get("title") or "(no title)")
    for key in (
        "id",
        "url",
        "canonical_url",
        "language",
        "published_at",
        "author",
        "site_name",
        "credit",
        "fetched_at",
        "stored_at",
        "state",
        "last_error",
    ):
        if data.get(key) is not None:
            out.print(Text.assemble((key, "bold"), f": {data[key]}"))
    if data.get("keywords"):
        out.print(Text.assemble(("keywords", "bold"), f": {', '.join(data['keywords'])}"))
    if data.get("text"):
        heading("text")
        out.print(data["text"])
    if data.get("tags"):
        print_rows(
            ["kind", "value", "score", "evidence"],
            [
                [t["kind"], t["value"], f"{t['score']:.2f}", ", ".join(map(str, t["evidence"][:6]))]
                for t in data["tags"]
            ],
        )
    if data.get("removed"):
        print_rows(["removed line", "rule"], [[cut_at_word(r["line"], 100), r["rule"]] for r in data["removed"]])
    if data.get("history"):
        print_rows(
            ["at", "state", "attempt", "detail"],
            [[h["at"][:19], h["state"], h["attempt"], h["detail"] or ""] for h in data["history"]],
        )


def parse_since(value: str) -> datetime:
    match = re.fullmatch(r"(\d+)\s*([smhd])", value.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return datetime.now(UTC) - timedelta(**{unit: int(match.group(1))})
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


safe_url = redacted


def broken_config_file(config_dir: Path) -> str | None:
    """``config/x.yaml line L column C: problem (fix the file)`` for the first file of ``config_dir`` that is
    not valid YAML, or None."""
    from workers.core.config_files import yaml_error

    found = next(filter(None, map(yaml_error, sorted(config_dir.glob("*.yaml")))), None)
    return f"{found} (fix the file)" if found else None


def require_free_port(host: str, port: int) -> None:
    """Fail, with the ``--port`` hint, when ``host:port`` is taken (before starting a server that would die on it)."""
    import socket

    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise fail(f"port {port} on {host} is not free ({exc.strerror}); pick another with --port N") from None


def require_broker() -> None:
    """Fail early, with the fix, when Redis is not there (rather than hanging in a retry loop), or when it
    already serves another database (whose workers would take our messages and find nothing)."""
    import redis

    from workers.runtime.deployment import broker_client, check_broker

    settings = get_settings()
    try:
        client = broker_client(settings)
        client.ping()
    except redis.RedisError as exc:
        raise fail(
            f"Redis is not reachable at {safe_url(settings.redis_url)} ({exc}). Start it (e.g. "
            f"`redis-server --daemonize yes`) or set MIRSAD_REDIS_URL."
        ) from None
    check_broker(client, settings)


def require_schema() -> None:
    """A database that was never migrated is migrated on first use (nothing in it to lose); one behind the
    code is left alone, with the fix, since workers of the older code may still be running on it."""
    from workers.storage.db import migrate, schema_revisions

    settings = get_settings()
    current, head = schema_revisions()
    if current is None:
        migrate()
        err.print(f"database {safe_url(settings.database_url)} was never migrated: created its tables")
    elif current != head:
        raise fail(
            f"database {safe_url(settings.database_url)} is at revision {current}, this Mirsad needs {head}: "
            f"run `mirsad migrate`"
        )

"""The demo: sample pages served locally, pushed through a real stack, printed tagged."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.progress import Progress

from workers.cli.output import (
    cut_at_word,
    err,
    fail,
    print_rows,
    require_broker,
    safe_url,
    tag_summary,
)
from workers.core.settings import SAMPLE_PAGES, get_settings
from workers.core.topology import FINAL_STATES, UrlState
from workers.storage import queries
from workers.storage.db import migrate, session_scope


def cmd_demo(args) -> int:
    import functools
    import os
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from workers.runtime.push import push
    from workers.runtime.stack import Stack

    pages_dir = SAMPLE_PAGES
    pages = sorted(p.name for p in pages_dir.glob("*.html"))
    os.environ.setdefault("MIRSAD_ALLOW_PRIVATE_HOSTS", "127.0.0.0/8")  # the sample pages are served locally
    os.environ.setdefault("MIRSAD_API_OPEN_READ", "1")  # the demo's API answers reads without a token
    get_settings.cache_clear()
    settings = get_settings()
    migrate()
    require_broker()

    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, *_):
            pass

    try:
        server = ThreadingHTTPServer(
            ("127.0.0.1", args.port), functools.partial(QuietHandler, directory=str(pages_dir))
        )
    except OSError as exc:
        raise fail(f"port {args.port} on 127.0.0.1 is not free ({exc.strerror}); pick another with --port N") from None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    err.print(
        f"serving {len(pages)} sample pages from {pages_dir} on http://127.0.0.1:{args.port}/; "
        f"database {safe_url(settings.database_url)}"
    )
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
                states = queries.url_states(session, ids)
            done = sum(state in FINAL_STATES for state in states.values())
            progress.update(bar, completed=done)
            if done == len(ids) or time.monotonic() > deadline:
                return states
            time.sleep(0.3)


def _print_demo_items(ids: list[int]) -> None:
    """One row per page: the item id (what ``show``, ``items`` and ``stories`` take) and the URL id (``url:N``)."""
    with session_scope() as session:
        print_rows(
            ["item", "state", "lang", "title", "tags", "url id"],
            [
                [
                    item.id if item else "",
                    record.state,
                    (item.language or "") if item else "",
                    cut_at_word(item.title, 50) if item else (record.last_error or ""),
                    tag_summary(item) if item else "",
                    f"url:{record.id}",
                ]
                for record, item in queries.urls_with_items(session, ids)
            ],
        )
        err.print("show one with: mirsad show ITEM (or mirsad show url:N)")


def register(commands, command: Callable[..., argparse.ArgumentParser]) -> None:
    demo = command(
        "demo", cmd_demo, "Serve the sample pages in seeds/, run the stack, push them and print the tagged items."
    )
    demo.add_argument("--port", type=int, default=8765, help="local port for the sample pages")
    demo.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for every item")

#!/usr/bin/env python3
"""How long a stored item takes to appear on an open feed page, and the pages' server response times.

    python bench/web_latency.py [-n 50] [--gap 0.5] [--database sqlite|postgresql]

Starts a real stack (`mirsad up`'s workers, beat and API) on a fresh database, opens the feed in
Debian's headless Chromium (signed in through the form), and pushes ``-n`` generated articles from
a local server one at a time, ``--gap`` seconds apart. A MutationObserver in the page notes when
each row arrives (Date.now()); the latency of an item is that moment minus its ``stored_at`` (the
same clock: one machine). Then each page is requested a few times with httpx (Accept: text/html).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MIRSAD_REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ["MIRSAD_ALLOW_PRIVATE_HOSTS"] = "127.0.0.0/8"
os.environ["MIRSAD_LOG_LEVEL"] = "WARNING"
os.environ["MIRSAD_HOST_INTERVAL"] = "0"  # every page comes from one local server

import httpx  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import select  # noqa: E402

from tests.api_server import healthy  # noqa: E402
from tests.browser import DESKTOP, chromium, sign_in  # noqa: E402
from tests.fixture_server import FixtureServer  # noqa: E402
from tests.stack_helpers import free_port, wait_final, wait_until  # noqa: E402
from workers.runtime.stack import Stack  # noqa: E402
from workers.storage import tokens  # noqa: E402
from workers.storage.db import forget_engines, migrate, session_scope  # noqa: E402
from workers.storage.models import Item, UrlRecord  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
OBSERVE = """() => {
  window.__arrived = {};
  new MutationObserver(records => {
    const now = Date.now();
    for (const record of records) for (const node of record.addedNodes)
      if (node.id && node.id.startsWith("item-")) window.__arrived[node.id.slice(5)] = now;
  }).observe(document.querySelector("#feed"), { childList: true });
}"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def database(kind: str, folder: str) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{folder}/mirsad.db", None
    name = f"mirsad_bench_web_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", name


def feed_latencies(base_url: str, database_url: str, token: str, pages: FixtureServer, n: int, gap: float) -> dict:
    with chromium(DESKTOP) as fresh_context:
        page = fresh_context().new_page()
        sign_in(page, base_url, token)
        page.wait_for_function("() => document.querySelector('#feed').getAttribute('sse-connect')")
        page.wait_for_timeout(1000)  # the EventSource connected
        page.evaluate(OBSERVE)
        run = uuid.uuid4().hex[:8]
        pushed = []
        for i in range(n):
            response = httpx.post(
                f"{base_url}/urls",
                json={"urls": [pages.url(f"/article/web-latency-{run}-{i}")]},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            pushed.append(response.json()["results"][0]["id"])
            time.sleep(gap)

        records = wait_final(database_url, pushed, timeout=300)
        failed = [f"{r.url}: {r.state} ({r.last_error})" for r in records.values() if r.state != "stored"]
        with session_scope(database_url) as session:
            items: dict[int, datetime] = dict(
                session.execute(
                    select(Item.id, Item.stored_at)
                    .join(UrlRecord, UrlRecord.item_id == Item.id)
                    .where(UrlRecord.id.in_(pushed))
                ).all()
            )
        wait_until(
            lambda: len(page.evaluate("() => Object.keys(window.__arrived)")) >= len(items), 30, "every row", 0.2
        )
        arrived = {int(k): v for k, v in page.evaluate("() => window.__arrived").items()}
    seconds = [(arrived[i] / 1000 - at.timestamp()) for i, at in items.items() if i in arrived]
    return {
        "items": len(seconds),
        "not_stored": failed,
        "p50_ms": round(statistics.median(seconds) * 1000, 1),
        "p95_ms": round(percentile(seconds, 0.95) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
    }


def page_times(base_url: str, token: str, item_id: int, story_id: int | None, repeats: int = 5) -> dict:
    paths = {
        "feed /": "/",
        "search /search?q=article": "/search?q=article",
        f"item /items/{item_id}": f"/items/{item_id}",
        "entity /entities/country/LY": "/entities/country/LY",
        "sources /sources": "/sources",
        "status /status": "/status",
    }
    if story_id is not None:
        paths[f"story /stories/{story_id}"] = f"/stories/{story_id}"
    headers = {"Accept": "text/html", "Authorization": f"Bearer {token}"}
    found = {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        for name, path in paths.items():
            client.get(path)  # warm
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            found[name] = {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="articles pushed (default 50)")
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between two pushes (default 0.5)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    redis.Redis.from_url(os.environ["MIRSAD_REDIS_URL"]).flushdb()
    with tempfile.TemporaryDirectory(prefix="mirsad-bench-web-") as folder, FixtureServer() as pages:
        database_url, pg_name = database(args.database, folder)
        try:
            migrate(database_url)
            with session_scope(database_url) as session:
                token = tokens.add(session, "bench", "write")
            port = free_port()
            env = {"MIRSAD_DATABASE_URL": database_url, "MIRSAD_API_PORT": str(port)}
            base_url = f"http://127.0.0.1:{port}"
            with open(Path(folder) / "stack.log", "ab") as log, Stack(env=env, log_file=log):
                wait_until(lambda: healthy(base_url), 60, "the API")
                feed = feed_latencies(base_url, database_url, token, pages, args.n, args.gap)
                with session_scope(database_url) as session:
                    item = session.scalars(select(Item).order_by(Item.id.desc()).limit(1)).one()
                    item_id, story_id = item.id, item.story_id
                pages_ms = page_times(base_url, token, item_id, story_id)
        finally:
            forget_engines()
            if pg_name:
                with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    print(json.dumps({"database": args.database, "feed_latency": feed, "page_response": pages_ms}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

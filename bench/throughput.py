#!/usr/bin/env python3
"""Throughput of the queued pipeline next to the same stages called in-process.

    python bench/throughput.py [-n 300] [--database-url URL]

Serves the sample pages of seeds/pages from a local server (each page under
many distinct URLs), then
1. in-process: one loop, one process: fetch → clean → strip → classify → store;
2. queued: a real stack (fetch worker + processing worker + beat, as `mirsad up`
   runs it) on a fresh database; all URLs pushed, timed until the last is stored.
Prints items/s for both, p50/p95 latency from push to stored, and the ratio.
Default database: a throwaway PostgreSQL database (the deployment database).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MIRSAD_REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ["MIRSAD_ALLOW_PRIVATE_HOSTS"] = "127.0.0.0/8"
os.environ["MIRSAD_LOG_LEVEL"] = "WARNING"

import psycopg  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import select  # noqa: E402

from tests.fixture_server import FixtureServer  # noqa: E402
from workers import ledger  # noqa: E402
from workers.db import UrlRecord, migrate, session_scope  # noqa: E402
from workers.intake import push  # noqa: E402
from workers.pipeline import STAGES  # noqa: E402
from workers.stack import Stack  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def fresh_database(kind: str) -> tuple[str, callable]:
    if kind == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp()}/bench.db", lambda: None
    name = f"mirsad_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", drop


def page_urls(server: FixtureServer, count: int, run: str) -> list[str]:
    pages = sorted(p.name for p in (ROOT / "seeds" / "pages").glob("*.html"))
    return [server.url(f"/pages/{pages[i % len(pages)]}?copy={run}-{i}") for i in range(count)]


def in_process(database_url: str, urls: list[str]) -> float:
    """Every stage in one loop, in this process, with the same ledger writes as the workers."""
    started = time.perf_counter()
    for result in push(urls, database_url=database_url, enqueue=False):
        for stage in STAGES:
            with session_scope(database_url) as session:
                claim = ledger.begin(session, result.url_id, stage.takes, 5)
            output = stage.run(claim)
            with session_scope(database_url) as session:
                item_id = stage.persist(session, claim, output) if stage.persist else None
                ledger.advance(session, claim, stage.takes, stage.gives, None if stage.persist else output, item_id)
    return len(urls) / (time.perf_counter() - started)


def queued(database_url: str, urls: list[str], server: FixtureServer) -> tuple[float, list[float]]:
    env = {"MIRSAD_DATABASE_URL": database_url}
    log = open(Path(tempfile.gettempdir()) / "mirsad-bench-stack.log", "ab")
    with Stack(env=env, log_file=log):
        warm = page_urls(server, 4, "warm-" + uuid.uuid4().hex[:6])
        wait_stored(database_url, [r.url_id for r in push(warm, database_url=database_url)])
        started = time.perf_counter()
        ids = [r.url_id for r in push(urls, database_url=database_url)]
        records = wait_stored(database_url, ids)
        elapsed = time.perf_counter() - started
    latencies = sorted((r.updated_at - r.created_at).total_seconds() for r in records)
    return len(ids) / elapsed, latencies


def wait_stored(database_url: str, ids: list[int], timeout: float = 600) -> list[UrlRecord]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(database_url) as session:
            records = session.scalars(select(UrlRecord).where(UrlRecord.id.in_(ids))).all()
        if all(r.state in ledger.FINAL_STATES for r in records):
            failed = [(r.url, r.last_error) for r in records if r.state != "stored"]
            if failed:
                raise SystemExit(f"{len(failed)} URLs did not store: {failed[:3]}")
            return records
        time.sleep(0.1)
    raise SystemExit("timed out waiting for the stack")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=300, help="pages per run")
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    args = parser.parse_args()
    redis.Redis.from_url(os.environ["MIRSAD_REDIS_URL"]).flushdb()
    with FixtureServer() as server:
        database_url, drop = fresh_database(args.database)
        try:
            migrate(database_url)
            run = uuid.uuid4().hex[:6]
            baseline = in_process(database_url, page_urls(server, args.n, f"inproc-{run}"))
            rate, latencies = queued(database_url, page_urls(server, args.n, f"queued-{run}"), server)
        finally:
            drop()
    p50 = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    print(f"pages: {args.n}  database: {args.database}  cores: {os.cpu_count()}")
    print(f"in-process (1 process, all stages in a loop): {baseline:6.1f} items/s")
    print(f"queued (fetch worker + processing worker):     {rate:6.1f} items/s  "
          f"push→stored p50 {p50:.2f}s p95 {p95:.2f}s")
    print(f"ratio queued / in-process: {rate / baseline:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

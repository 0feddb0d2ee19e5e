#!/usr/bin/env python3
"""Throughput of the queued pipeline next to the same stages called in-process.

    python bench/throughput.py [-n 200] [--rounds 3] [--database postgresql|sqlite]

Serves the sample pages of seeds/pages from a local server (each page under
many distinct URLs), then
1. in-process, one loop in one process: the stage functions alone (fetch, clean, strip,
   classify, one store per page), and again with the ledger steps the workers make;
2. queued: a real stack (fetch worker + processing worker + beat, as `mirsad up`
   runs it) on a fresh database; all URLs pushed, timed until the last is stored.
Rounds are interleaved (this machine's speed drifts) and medians reported: items/s,
p50/p95 latency from push to stored, and the ratio queued / in-process.
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
os.environ["MIRSAD_HOST_INTERVAL"] = "0"  # every page comes from one local server: measure the pipeline, not pacing

import psycopg  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import select  # noqa: E402

from tests.fixture_server import FixtureServer  # noqa: E402
from workers.core.settings import get_settings  # noqa: E402
from workers.core.topology import FINAL_STATES  # noqa: E402
from workers.core.urls import canonicalize, url_hash  # noqa: E402
from workers.runtime.pipeline import STEPS, extract, run_step, warm_up  # noqa: E402
from workers.runtime.push import push  # noqa: E402
from workers.runtime.stack import Stack  # noqa: E402
from workers.stages.fetch import fetch  # noqa: E402
from workers.storage.db import migrate, session_scope  # noqa: E402
from workers.storage.models import UrlRecord  # noqa: E402
from workers.storage.store import store_item  # noqa: E402

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


def in_process_bare(database_url: str, urls: list[str]) -> float:
    """The stage functions alone: fetch, clean, strip, classify, then one store per page; no ledger."""
    started = time.perf_counter()
    for url in urls:
        page = fetch(url)
        document = extract(page.html, url=page.final_url, fetched_at=page.fetched_at)
        with session_scope(database_url, durable=False) as session:
            store_item(session, url_hash(canonicalize(url)), url, document)
    return len(urls) / (time.perf_counter() - started)


def in_process(database_url: str, urls: list[str]) -> float:
    """Every stage in one loop, in this process, with the ledger steps the workers make (pipeline.run_step)."""
    started = time.perf_counter()
    for result in push(urls, database_url=database_url, enqueue=False):
        for stage in STEPS.values():
            assert run_step(stage, result.url_id).outcome == "advanced"
    return len(urls) / (time.perf_counter() - started)


def log_path() -> Path:
    return Path(tempfile.gettempdir()) / "mirsad-bench-stack.log"


def queued(database_url: str, urls: list[str], stack: Stack) -> tuple[float, list[float]]:
    """Push every URL to the running stack; items/s until the last is stored, and each push→stored latency."""
    started = time.perf_counter()
    ids = [r.url_id for r in push(urls, database_url=database_url)]
    records = wait_stored(database_url, ids, stack)
    elapsed = time.perf_counter() - started
    return len(ids) / elapsed, sorted((r.updated_at - r.created_at).total_seconds() for r in records)


def wait_stored(database_url: str, ids: list[int], stack: Stack, timeout: float = 600) -> list:
    """Poll the ledger (states and times only: loading payloads would load the database) until all are final."""
    columns = (UrlRecord.url, UrlRecord.state, UrlRecord.last_error, UrlRecord.created_at, UrlRecord.updated_at)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.exited():
            raise SystemExit(f"a stack service stopped: {stack.exited()} (log: {log_path()})")
        with session_scope(database_url, durable=False) as session:
            records = session.execute(select(*columns).where(UrlRecord.id.in_(ids))).all()
        if all(r.state in FINAL_STATES for r in records):
            failed = [(r.url, r.last_error) for r in records if r.state != "stored"]
            if failed:
                raise SystemExit(f"{len(failed)} URLs did not store: {failed[:3]}")
            return records
        time.sleep(0.25)
    raise SystemExit("timed out waiting for the stack")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=200, help="pages per run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    args = parser.parse_args()
    redis.Redis.from_url(os.environ["MIRSAD_REDIS_URL"]).flushdb()
    rates = {"bare": [], "ledger": [], "queued": []}
    latencies: list[float] = []
    with FixtureServer() as server:
        database_url, drop = fresh_database(args.database)
        os.environ["MIRSAD_DATABASE_URL"] = database_url  # for run_step, which reads the settings
        get_settings.cache_clear()
        try:
            migrate(database_url)
            warm_up()  # the in-process loops must not pay for loading models inside a timed round
            with open(log_path(), "ab") as log, Stack(env={"MIRSAD_DATABASE_URL": database_url}, log_file=log) as stack:
                queued(database_url, page_urls(server, 8, "warm-" + uuid.uuid4().hex[:6]), stack)
                for round_number in range(args.rounds):
                    run = f"{uuid.uuid4().hex[:6]}-{round_number}"
                    rates["bare"].append(in_process_bare(database_url, page_urls(server, args.n, f"bare-{run}")))
                    rates["ledger"].append(in_process(database_url, page_urls(server, args.n, f"inproc-{run}")))
                    rate, round_latencies = queued(database_url, page_urls(server, args.n, f"queued-{run}"), stack)
                    rates["queued"].append(rate)
                    latencies += round_latencies
                    print(
                        f"round {round_number + 1}: bare {rates['bare'][-1]:.1f}, with ledger "
                        f"{rates['ledger'][-1]:.1f}, queued {rate:.1f} items/s",
                        file=sys.stderr,
                    )
        finally:
            drop()
    bare, ledger_loop, rate = (statistics.median(rates[k]) for k in ("bare", "ledger", "queued"))
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    print(f"pages: {args.n} x {args.rounds} rounds  database: {args.database}  cores: {os.cpu_count()}  (medians)")
    print(f"in-process, stage functions only + store:     {bare:6.1f} items/s")
    print(f"in-process, stages with ledger steps:         {ledger_loop:6.1f} items/s")
    print(
        f"queued (fetch worker + processing worker):    {rate:6.1f} items/s  "
        f"push→stored p50 {p50:.2f}s p95 {p95:.2f}s (all {args.n} pushed at once)"
    )
    print(
        f"ratio queued / in-process: {rate / bare:.2f} (against stage functions only), "
        f"{rate / ledger_loop:.2f} (against stages with ledger steps)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Soak: thousands of fixture pages through a real stack; each worker's memory and the rate over time.

    python bench/soak.py [-n 10000] [--database postgresql|sqlite] [--json PATH]

Serves distinct generated articles from a local server, starts the stack `mirsad up` starts
(fetch worker, processing workers, beat) on a fresh database, pushes every URL, and samples
while the items are stored: each service's RSS (from /proc) when 1,000 and when all items are
stored, items/s per tenth of the run, and the database's size at the end. Target: RSS growth
under 10% between 1,000 and the end, and no slowdown from the first tenth to the last.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MIRSAD_REDIS_URL", "redis://127.0.0.1:6379/12")
os.environ["MIRSAD_ALLOW_PRIVATE_HOSTS"] = "127.0.0.0/8"
os.environ["MIRSAD_LOG_LEVEL"] = "WARNING"
os.environ["MIRSAD_HOST_INTERVAL"] = "0"  # one local server: measure the pipeline, not pacing

import psycopg  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from tests.fixture_server import FixtureServer  # noqa: E402
from workers.core.topology import FINAL_STATES  # noqa: E402
from workers.runtime.push import push  # noqa: E402
from workers.runtime.stack import Stack  # noqa: E402
from workers.storage.db import forget_engines, migrate, session_scope  # noqa: E402
from workers.storage.models import UrlRecord  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
FIRST_MARK = 1000


def fresh_database(kind: str) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp()}/soak.db", None
    name = f"mirsad_soak_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + f"/{name}", name


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (a prefork pool), in MB."""
    total = 0
    for candidate in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{candidate}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return round(total / 1024, 1)


def children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def finished(database_url: str) -> int:
    with session_scope(database_url) as session:
        return session.scalar(select(func.count()).select_from(UrlRecord).where(UrlRecord.state.in_(FINAL_STATES)))


def database_size_mb(database_url: str, pg_name: str | None) -> float:
    if pg_name is None:
        return round(Path(database_url.removeprefix("sqlite:///")).stat().st_size / 1e6, 1)
    with session_scope(database_url) as session:
        return round(session.scalar(text("SELECT pg_database_size(current_database())")) / 1e6, 1)


def soak(count: int, kind: str, log_path: Path) -> dict:
    database_url, pg_name = fresh_database(kind)
    migrate(database_url)
    redis.Redis.from_url(os.environ["MIRSAD_REDIS_URL"]).flushdb()
    run = uuid.uuid4().hex[:6]
    report: dict = {"items": count, "database": kind, "rss_mb_at_1000": {}, "rss_mb_at_end": {}, "rate": []}
    with (
        FixtureServer() as server,
        open(log_path, "ab") as log,
        Stack(env={"MIRSAD_DATABASE_URL": database_url}, log_file=log) as stack,
    ):
        urls = [server.url(f"/article/soak-{run}-{n}") for n in range(count)]
        started = time.monotonic()
        pusher = threading.Thread(
            target=lambda: report.update(
                pushed=sum(1 for result in push(urls, database_url=database_url) if result.url_id is not None),
                push_s=round(time.monotonic() - started, 1),
            ),
            daemon=True,
        )
        pusher.start()  # sampling starts at once: the 1,000-item figures are taken at 1,000 items
        pushed = count
        tenth, next_mark, last = max(1, count // 10), max(1, count // 10), (started, 0)
        while True:
            done = finished(database_url)
            now = time.monotonic()
            if FIRST_MARK <= done and not report["rss_mb_at_1000"]:
                report["rss_mb_at_1000"] = {name: rss_mb(p.pid) for name, p in stack.processes.items()}
                report["first_sample_at_items"] = done
            if done >= next_mark or done >= pushed:
                rate = (done - last[1]) / max(now - last[0], 1e-9)
                report["rate"].append({"items": done, "items_per_s": round(rate, 1)})
                print(
                    f"{done:>6} items  {rate:6.1f} items/s  rss {[rss_mb(p.pid) for p in stack.processes.values()]}",
                    flush=True,
                )
                last, next_mark = (now, done), (done // tenth + 1) * tenth
            if done >= pushed or (not pusher.is_alive() and done >= report.get("pushed", count)):
                break
            if stack.exited():
                raise SystemExit(f"a service stopped: {stack.exited()} (log: {log_path})")
            time.sleep(1.0)
        report["rss_mb_at_end"] = {name: rss_mb(p.pid) for name, p in stack.processes.items()}
        report["total_s"] = round(time.monotonic() - started, 1)
    report["database_mb"] = database_size_mb(database_url, pg_name)
    report["rss_growth_pct"] = {
        name: round(100 * (report["rss_mb_at_end"][name] / before - 1), 1)
        for name, before in report["rss_mb_at_1000"].items()
        if before
    }
    forget_engines()
    if pg_name:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=10_000, help="pages to push")
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    log_path = Path(tempfile.gettempdir()) / "mirsad-soak.log"
    report = soak(args.n, args.database, log_path)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    rates = [row["items_per_s"] for row in report["rate"]]
    print(
        f"items/s first tenth {rates[0]}, last tenth {rates[-1]}; RSS growth 1k→end {report['rss_growth_pct']}; "
        f"database {report['database_mb']} MB; worker log {log_path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

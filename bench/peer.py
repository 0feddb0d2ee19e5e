#!/usr/bin/env python3
"""Mirsad's stack next to trafilatura's own CLI, on the same real pages from as many hosts.

    python bench/peer.py [--rounds 3] [--databases sqlite,postgresql] [--process-workers N[,M…]] [--idle 7]

The 181 pages of ``../shared/bench/zyte_aeb`` are served from loopback under 181 distinct host names
(127.0.0.2, 127.0.0.3, …; no robots.txt, a 404), the way a user's list of articles spans many sites.
Each round, side by side:

1. trafilatura 2.3's CLI: ``trafilatura -i urls.txt --parallel 2 -o DIR`` with its politeness sleep
   (``SLEEP_TIME``) set to 0 and its SSRF guard off (the hosts are loopback), timed from start to exit;
2. Mirsad's stack (``mirsad up``'s processes, default settings: host interval 1 s, one processing
   worker per core) on a fresh SQLite file and on a fresh PostgreSQL database, started and warmed
   up before the clock starts; the 181 URLs are pushed with ``workers.runtime.push.push`` and timed
   until the last one is final (stored or failed). push→stored latency comes from the ledger's events.

Then, on the idle stack, single pages (new hosts, so each is a first contact with robots.txt) are
pushed one at a time with ``workers.runtime.push.push`` and their push→stored latency recorded.
Prints pages/s for both, the ratio, p50/p95 push→stored and the idle single-page p50; with several
``--process-workers`` counts (``1,2``), a stack of each in turn and the scaling from the first; rounds are
interleaved with trafilatura's (this machine's speed drifts) and medians reported. The stacks' logs go to
``$TMPDIR/mirsad-peer-*.log``, with the mean "ok in N ms" of each stage printed from them.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH = ROOT.parent / "shared" / "bench" / "zyte_aeb"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = os.environ.get("MIRSAD_REDIS_URL", "redis://127.0.0.1:6379/9")
os.environ["MIRSAD_REDIS_URL"] = REDIS_URL
os.environ["MIRSAD_ALLOW_PRIVATE_HOSTS"] = "127.0.0.0/8"

import psycopg  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from workers.core.topology import FINAL_STATES, UrlState  # noqa: E402
from workers.runtime.push import push  # noqa: E402
from workers.runtime.stack import Stack  # noqa: E402
from workers.storage.db import forget_engines, migrate, session_scope  # noqa: E402
from workers.storage.models import UrlEvent, UrlRecord  # noqa: E402

TRAFILATURA = Path(sys.executable).with_name("trafilatura")
STAGE_LOG = re.compile(r"\b(\w+) url_id=\d+ ok in (\d+) ms")


class Pages(BaseHTTPRequestHandler):
    """``/ID.html`` is the benchmark page ID, as fetched (bytes, charset as declared by the page)."""

    pages: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = self.pages.get(self.path.split("?")[0].lstrip("/").removesuffix(".html"))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:
        pass


@contextlib.contextmanager
def serving(hosts: list[str]) -> Iterator[dict[str, str]]:
    """One HTTP server per loopback host; host → its base URL."""
    Pages.pages = {
        p.name.removesuffix(".html.gz"): gzip.decompress(p.read_bytes())
        for p in sorted((BENCH / "html").glob("*.html.gz"))
    }
    servers = [ThreadingHTTPServer((host, 0), Pages) for host in hosts]
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield {host: f"http://{host}:{server.server_address[1]}" for host, server in zip(hosts, servers, strict=True)}
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def page_urls(bases: list[str], run: str, first_page: int = 0) -> list[str]:
    """One page per host, from the ``first_page``-th on; ``run`` makes the URLs new to the ledger each round."""
    pages = sorted(Pages.pages)[first_page:]
    return [f"{base}/{page}.html?r={run}" for base, page in zip(bases, pages, strict=False)]


def run_trafilatura(urls: list[str]) -> float:
    """Seconds trafilatura's CLI takes for ``urls`` (start to exit), with no sleep between requests."""
    work = Path(tempfile.mkdtemp(prefix="peer-trafilatura-"))
    try:
        config = (TRAFILATURA.parent.parent / "lib").glob("python3*/site-packages/trafilatura/settings.cfg")
        text = next(config).read_text()
        text = re.sub(r"(?m)^SLEEP_TIME = .*$", "SLEEP_TIME = 0", text)
        text = re.sub(r"(?m)^SSRF_PROTECTION = .*$", "SSRF_PROTECTION = off", text)
        (work / "settings.cfg").write_text(text)
        (work / "urls.txt").write_text("\n".join(urls) + "\n")
        started = time.perf_counter()
        subprocess.run(
            [
                str(TRAFILATURA),
                "-i",
                str(work / "urls.txt"),
                "--parallel",
                "2",
                "-o",
                str(work / "out"),
                "--config-file",
                str(work / "settings.cfg"),
            ],
            check=True,
            capture_output=True,
        )
        elapsed = time.perf_counter() - started
        written = len(list((work / "out").glob("*")))
        if written < len(urls) * 0.9:
            raise SystemExit(f"trafilatura wrote only {written} of {len(urls)} pages")
        return elapsed
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="peer-sqlite-")
        yield f"sqlite:///{folder}/mirsad.db"
        shutil.rmtree(folder, ignore_errors=True)
        return
    name = f"mirsad_peer_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        forget_engines()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_final(database_url: str, ids: list[int], stack: Stack, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.exited():
            raise SystemExit(f"a stack service stopped: {stack.exited()}")
        with session_scope(database_url) as session:
            done = session.scalar(select(func.count()).where(UrlRecord.id.in_(ids), UrlRecord.state.in_(FINAL_STATES)))
        if done == len(ids):
            return
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for the stack ({database_url})")


def latencies(database_url: str, ids: list[int]) -> tuple[list[float], float, dict[str, int]]:
    """Each URL's seconds from its ``queued`` event to its final one, the span from the first push to
    the last final event, and the count of each final state."""
    with session_scope(database_url) as session:
        events = session.execute(
            select(UrlEvent.url_id, UrlEvent.state, UrlEvent.at).where(
                UrlEvent.url_id.in_(ids), UrlEvent.state.in_([UrlState.QUEUED, *FINAL_STATES])
            )
        ).all()
    queued = {e.url_id: e.at for e in events if e.state == UrlState.QUEUED}
    final = {e.url_id: (e.state, e.at) for e in events if e.state != UrlState.QUEUED}
    spans = sorted((final[i][1] - queued[i]).total_seconds() for i in ids)
    whole = (max(at for _, at in final.values()) - min(queued.values())).total_seconds()
    states: dict[str, int] = defaultdict(int)
    for state, _ in final.values():
        states[state] += 1
    return spans, whole, dict(states)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def stage_means(log: Path) -> dict[str, float]:
    """Mean "ok in N ms" per stage task in a stack log."""
    times: dict[str, list[int]] = defaultdict(list)
    for match in STAGE_LOG.finditer(log.read_text(errors="replace")):
        times[match.group(1)].append(int(match.group(2)))
    return {stage: statistics.mean(ms) for stage, ms in times.items()}


class MirsadRun:
    """A running stack on a fresh database; ``batch`` times a list of URLs, ``single`` one idle page."""

    def __init__(self, kind: str, process_workers: int | None) -> None:
        self.kind, self.process_workers = kind, process_workers
        self.log = Path(tempfile.gettempdir()) / f"mirsad-peer-{kind}-{process_workers or 'cores'}.log"

    def __enter__(self) -> MirsadRun:
        redis.Redis.from_url(REDIS_URL).flushdb()
        self._database = fresh_database(self.kind)
        self.database_url = self._database.__enter__()
        migrate(self.database_url)
        env = {
            "MIRSAD_DATABASE_URL": self.database_url,
            "MIRSAD_REDIS_URL": REDIS_URL,
            "MIRSAD_ALLOW_PRIVATE_HOSTS": "127.0.0.0/8",
        }
        if self.process_workers:
            env["MIRSAD_PROCESS_CONCURRENCY"] = str(self.process_workers)
        self._log_file = open(self.log, "wb")  # noqa: SIM115 (closed in __exit__)
        self.stack = Stack(env=env, log_file=self._log_file).start()
        return self

    def push_all(self, urls: list[str]) -> list[int]:
        ids = [result.url_id for result in push(urls, database_url=self.database_url)]
        if None in ids:
            raise SystemExit(f"a URL was not accepted: {urls[ids.index(None)]}")
        return ids  # type: ignore[return-value]

    def written(self) -> int:
        """Bytes written for the stack: on SQLite what its processes caused to be written to storage
        (``/proc/PID/io``), on PostgreSQL the server's WAL (``pg_stat_wal``: the whole server's, so
        other users of it count too)."""
        if self.kind == "postgresql":
            with psycopg.connect(PG_ADMIN) as admin:
                row = admin.execute("SELECT wal_bytes FROM pg_stat_wal").fetchone()
                return int(row[0]) if row else 0
        total = 0
        for process in self.stack.processes.values():
            with contextlib.suppress(OSError):
                fields = dict(line.split(": ") for line in Path(f"/proc/{process.pid}/io").read_text().splitlines())
                total += int(fields["write_bytes"])
        return total

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each kind of service (fetch-worker, process-worker, beat)."""
        used: dict[str, float] = defaultdict(float)
        for name, process in self.stack.processes.items():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
                used[name.rstrip("-0123456789")] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return used

    def batch(self, urls: list[str]) -> tuple[float, list[float], dict[str, int], float, dict[str, float]]:
        """Seconds from the first push to the last final state, each URL's push→final, final states,
        the bytes the stack wrote per URL meanwhile and the CPU ms per URL of each kind of service."""
        before, cpu_before = self.written(), self.cpu()
        ids = self.push_all(urls)
        wait_final(self.database_url, ids, self.stack)
        spans, whole, states = latencies(self.database_url, ids)
        cpu = {name: (seconds - cpu_before.get(name, 0.0)) * 1000 / len(ids) for name, seconds in self.cpu().items()}
        return whole, spans, states, (self.written() - before) / len(ids), cpu

    def single(self, url: str) -> float:
        ids = self.push_all([url])
        wait_final(self.database_url, ids, self.stack)
        return latencies(self.database_url, ids)[0][0]

    def __exit__(self, *exc) -> None:
        self.stack.stop()
        self._log_file.close()
        self._database.__exit__(*exc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per database; medians are reported")
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument(
        "--process-workers",
        default="",
        help="MIRSAD_PROCESS_CONCURRENCY for the stack (default: the stack's own, the cores); "
        "comma-separated counts run a stack of each, for the scaling (1,2)",
    )
    parser.add_argument("--idle", type=int, default=7, help="single pages pushed to the idle stack, one at a time")
    parser.add_argument("--skip-peer", action="store_true", help="Mirsad only (scaling runs)")
    args = parser.parse_args()
    databases = [k.strip() for k in args.databases.split(",") if k.strip()]
    counts = [int(n) for n in args.process_workers.split(",") if n.strip()] or [None]
    runs = [(kind, workers) for kind in databases for workers in counts]  # one stack at a time
    kinds = [f"{kind}, {workers} proc" if len(counts) > 1 else kind for kind, workers in runs]
    count = len(list((BENCH / "html").glob("*.html.gz")))
    hosts = [f"127.0.{(n + 2) // 256}.{(n + 2) % 256}" for n in range(count)]
    idle_hosts = [f"127.0.9.{n + 1}" for n in range(args.idle * args.rounds * len(kinds) + 1)]
    peer: list[float] = []
    whole: dict[str, list[float]] = defaultdict(list)
    spans: dict[str, list[float]] = defaultdict(list)
    idle: dict[str, list[float]] = defaultdict(list)
    written: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    states: dict[str, dict[str, int]] = {}
    means: dict[str, dict[str, float]] = {}
    with serving(hosts + idle_hosts) as bases:
        idle_bases = iter(bases[h] for h in idle_hosts[1:])
        for kind, (database, workers) in zip(kinds, runs, strict=True):  # they share the broker's database
            with MirsadRun(database, workers) as run:
                run.batch(page_urls([bases[idle_hosts[0]]], f"warm-{database}-{workers}"))  # workers up, models loaded
                for number in range(args.rounds):
                    tag = f"{uuid.uuid4().hex[:6]}-{number}"
                    urls = page_urls([bases[h] for h in hosts], tag)
                    if not args.skip_peer:
                        peer.append(run_trafilatura(urls))
                    seconds, round_spans, states[kind], per_url, cpu_ms = run.batch(urls)
                    for name, ms in cpu_ms.items():
                        cpu[kind][name].append(ms)
                    whole[kind].append(seconds)
                    written[kind].append(per_url)
                    spans[kind] += round_spans
                    time.sleep(2.0)  # let the stack go idle: the last acks, the reconciler's look
                    for n in range(args.idle):
                        idle[kind].append(run.single(page_urls([next(idle_bases)], tag, first_page=n)[0]))
                    print(
                        f"{kind} round {number + 1}: "
                        + (f"trafilatura CLI {count / peer[-1]:.1f} pages/s, " if not args.skip_peer else "")
                        + f"Mirsad {count / seconds:.1f} pages/s",
                        file=sys.stderr,
                        flush=True,
                    )
            means[kind] = stage_means(run.log)
    print(f"{count} pages from {count} loopback hosts, {args.rounds} rounds, {os.cpu_count()} cores (medians)")
    peer_rate = count / statistics.median(peer) if peer else None
    if peer_rate:
        print(f"trafilatura CLI (--parallel 2, SLEEP_TIME 0):  {peer_rate:6.1f} pages/s")
    for kind in kinds:
        rate = count / statistics.median(whole[kind])
        ratio = f"  ratio {rate / peer_rate:.2f}x" if peer_rate else ""
        print(
            f"Mirsad stack, {kind:<10}:                  {rate:6.1f} pages/s{ratio}  "
            f"push→final p50 {statistics.median(spans[kind]):.2f}s p95 {percentile(spans[kind], 0.95):.2f}s  "
            f"idle single page p50 {statistics.median(idle[kind]) * 1000:.0f} ms "
            f"(p95 {percentile(idle[kind], 0.95) * 1000:.0f} ms)  final states {states[kind]}"
        )
        print(
            "    CPU per page: " + ", ".join(f"{name} {statistics.median(ms):.0f} ms" for name, ms in cpu[kind].items())
        )
        print(
            f"    written: {statistics.median(written[kind]) / 1024:.0f} KiB per page; "
            "stage means (ok in N ms): " + ", ".join(f"{s} {ms:.0f}" for s, ms in means[kind].items())
        )
    for database in databases if len(counts) > 1 else []:
        first = statistics.median(whole[f"{database}, {counts[0]} proc"])
        print(
            f"scaling on {database}: "
            + ", ".join(f"{n} proc {first / statistics.median(whole[f'{database}, {n} proc']):.2f}x" for n in counts)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The fault suite: killed workers, a crashed or wiped broker, a stopped database, a poison page, a push race.

Every case runs the real ``mirsad worker`` / ``mirsad beat`` commands against a private Redis and a
private PostgreSQL cluster (``tests/private_services.py``: the machine's shared servers are never
touched), injects its fault, and ends with one invariant: each pushed URL ends ``stored``, ``failed``
(with its reason) or ``dead``, and there is exactly one URL row and at most one item per canonical URL.
The counts behind it (pushed, stored, failed, dead, duplicates) are printed (``pytest -s``) and
written as JSON to ``$MIRSAD_FAULT_REPORT`` (default ``<tmp>/mirsad-fault-report.json``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select, text

from tests.fixture_server import FixtureServer
from tests.private_services import PrivatePostgres, PrivateRedis, private_root
from tests.stack_helpers import FAST_RECOVERY, wait_until
from workers.core.errors import DatabaseUnavailable
from workers.core.urls import canonicalize
from workers.runtime.stack import FETCH_WORKER, PROCESS_WORKER, Stack, mirsad_command
from workers.runtime.tasks import CPU_STAGE_ATTEMPTS
from workers.storage import ledger
from workers.storage.db import forget_engines, migrate, session_scope
from workers.storage.models import Item, TagRecord, UrlEvent, UrlRecord

pytestmark = pytest.mark.integration

# The reconciler must wait longer than any stage here lasts (a heavy clean, a /slow fetch), or it
# would re-enqueue work still in progress; in deployment it is 600 s against a 60 s fetch deadline.
FAULT_SETTINGS = {**FAST_RECOVERY, "MIRSAD_RECONCILE_AFTER": "6", "MIRSAD_HOST_INTERVAL": "0.05"}
FINAL_STATES = ("stored", "failed", "dead")
HOSTS = 20
HEAVY_PAGE_MB = 1  # /big?mb=1 takes a second or two to clean: long enough to be caught in the middle
REPORT = Path(os.environ.get("MIRSAD_FAULT_REPORT") or Path(tempfile.gettempdir()) / "mirsad-fault-report.json")
# For the cases that catch a worker in the middle of a /slow fetch: the page must not time out itself,
# however busy the machine (the fast-recovery read timeout is 4 s).
PATIENT_FETCH = {"MIRSAD_READ_TIMEOUT": "15", "MIRSAD_TOTAL_TIMEOUT": "20"}
READY = " ready."  # Celery's "<hostname> ready." once a worker consumes
TASK_LOG_LINE = re.compile(r"Task (mirsad\.\w+)\[([0-9a-f-]+)\] (received|succeeded|retry|raised|failed)")


# -- servers and stacks -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_server():
    if PrivateRedis.missing():
        pytest.skip(PrivateRedis.missing())
    root = private_root("mirsad-faults-redis-")
    server = PrivateRedis(root).start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_cluster():
    if PrivatePostgres.missing():
        pytest.skip(PrivatePostgres.missing())
    cluster = PrivatePostgres(private_root("mirsad-faults-pg-")).init()
    yield cluster
    forget_engines()
    cluster.destroy()


@pytest.fixture(scope="module")
def hosts():
    """Fixture servers on distinct ports: distinct hosts to politeness (one request per host at a time),
    as a real load spans many sites. The first serves the slow, heavy and poison pages of a case."""
    servers = [FixtureServer().start() for _ in range(HOSTS)]
    yield servers
    for fixture_server in servers:
        fixture_server.stop()


@pytest.fixture(scope="module")
def server(hosts):
    return hosts[0]


@pytest.fixture
def database_url(postgres_cluster):
    """A fresh, migrated database in the private cluster: each case counts only its own URLs."""
    name = f"faults_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_cluster.admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = postgres_cluster.database_url(name)
    migrate(url)
    return url


@dataclass
class FaultStack(Stack):
    """A stack whose services are launched one by one, each with its own log, so one can be killed and relaunched."""

    log_dir: Path | None = None
    commands: dict[str, tuple[str, ...]] = field(default_factory=dict)
    log_offsets: dict[str, int] = field(default_factory=dict)  # where each log's latest run begins

    def launch(self, name: str, *args: str) -> subprocess.Popen:
        path = self.log_dir / f"{name}.log"
        self.commands[name] = args
        self.log_offsets[name] = path.stat().st_size if path.exists() else 0
        with open(path, "ab") as log:
            self.processes[name] = subprocess.Popen(
                mirsad_command(*args),
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.processes[name]

    def relaunch(self, name: str) -> None:
        """What a supervisor (docker's restart policy) does after a crash."""
        self.launch(name, *self.commands[name])

    def log(self, name: str) -> str:
        """What the service's latest run has logged."""
        with open(self.log_dir / f"{name}.log", "rb") as log:
            log.seek(self.log_offsets[name])
            return log.read().decode(errors="replace")

    def wait_ready(self, *names: str) -> None:
        """Until each worker (default: all) logs that it is ready to consume."""
        for name in names or [name for name in self.processes if name != "beat"]:
            wait_until(lambda name=name: READY in self.log(name), 90, f"{name} to be ready")

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> int:
        """Signal the whole service (a worker and any pool children); its exit code once it has gone."""
        process = self.processes[name]
        os.killpg(process.pid, sig)
        return process.wait(timeout=60)

    def task_in_progress(self, name: str) -> tuple[str, str] | None:
        """(task name, task id) that a solo worker is running according to its log, or None when idle."""
        found = list(TASK_LOG_LINE.finditer(self.log(name)))
        last = found[-1] if found else None
        return (last.group(1), last.group(2)) if last and last.group(3) == "received" else None

    def push(self, urls: list[str], wait: bool = True) -> subprocess.Popen:
        """``mirsad push -`` with the stack's settings, as a user would; waits for it unless told not to."""
        pusher = subprocess.Popen(
            mirsad_command("push", "-"),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE if wait else subprocess.DEVNULL,
            text=True,
            env={**os.environ, **self.env},
        )
        if wait:
            _, verdicts = pusher.communicate("\n".join(urls), timeout=300)
            assert pusher.returncode == 0, verdicts
        else:
            pusher.stdin.write("\n".join(urls))
            pusher.stdin.close()
        return pusher


@pytest.fixture
def start_stack(redis_server, database_url, tmp_path):
    """Starts a fetch worker, processing workers and beat on the private servers; stops them after the test."""
    stacks: list[FaultStack] = []

    def start(
        processing_workers: int = 2,
        fetch_args: tuple[str, ...] = (),
        process_args: tuple[str, ...] = (),
        **settings: str,
    ) -> FaultStack:
        redis_server.client().flushall()  # our own server: nothing of another test run is in it
        env = {
            **FAULT_SETTINGS,
            **settings,
            "MIRSAD_DATABASE_URL": database_url,
            "MIRSAD_REDIS_URL": redis_server.url(),
        }
        stack = FaultStack(env=env, log_dir=tmp_path)
        stacks.append(stack)
        stack.launch("fetch-worker", *FETCH_WORKER, *fetch_args)
        for n in range(1, processing_workers + 1):
            stack.launch(f"process-worker-{n}", *PROCESS_WORKER, *process_args)
        stack.launch("beat", "beat")
        stack.wait_ready()
        return stack

    yield start
    for stack in stacks:
        stack.stop(grace=10)


# -- reading the ledger -------------------------------------------------------------------------------------


def record_of(database_url: str, url: str) -> UrlRecord | None:
    with session_scope(database_url) as session:
        return ledger.find(session, url)


def events_of(database_url: str, url: str) -> list[tuple[str, int, str]]:
    """The URL's history as (state, attempt, detail)."""
    with session_scope(database_url) as session:
        return [(e.state, e.attempt, e.detail or "") for e in ledger.find(session, url).events]


def wait_claimed(database_url: str, url: str, state: str, attempt: int, timeout: float = 60) -> None:
    """Until a stage has claimed the URL (in ``state``) for its ``attempt``-th time: the stage is running."""

    def claimed() -> bool:
        record = record_of(database_url, url)
        return record is not None and record.state == state and record.attempts >= attempt

    try:
        wait_until(claimed, timeout, f"{url} to be claimed in state {state} for attempt {attempt}")
    except TimeoutError:
        record = record_of(database_url, url)
        found = "no row" if record is None else f"{record.state}, attempt {record.attempts}"
        raise TimeoutError(f"{url} never claimed in state {state} for attempt {attempt}; it is: {found}") from None


def wait_settled(database_url: str, expected_rows: int, timeout: float) -> None:
    """Until every URL row is in a final state (polling through database outages)."""

    def settled() -> bool:
        try:
            with session_scope(database_url) as session:
                states = ledger.counts_by_state(session)
        except DatabaseUnavailable:
            return False
        return sum(states.values()) >= expected_rows and all(state in FINAL_STATES for state in states)

    try:
        wait_until(settled, timeout, "every URL to reach a final state", interval=0.3)
    except TimeoutError:
        with session_scope(database_url) as session:
            raise AssertionError(f"not settled: {ledger.counts_by_state(session)}") from None


def check_invariant(case: str, database_url: str, pushed: list[str], started: float, **extra) -> dict:
    """Every pushed URL final (failed and dead with a reason), one row and at most one item per canonical
    URL, no item or tag stored twice. Records and prints the counts; returns them."""
    canonical = {canonicalize(url) for url in pushed}
    with session_scope(database_url) as session:
        rows = session.execute(
            select(UrlRecord.canonical_url, UrlRecord.state, UrlRecord.last_error, UrlRecord.item_id)
        ).all()
        items = session.execute(select(Item.id, Item.url)).all()
        tag_rows = session.scalar(select(func.count()).select_from(TagRecord))
        distinct_tags = session.scalar(
            select(func.count()).select_from(
                select(TagRecord.item_id, TagRecord.kind, TagRecord.value).distinct().subquery()
            )
        )
    states = {state: sum(row.state == state for row in rows) for state in FINAL_STATES}
    referenced = {row.item_id for row in rows if row.item_id is not None}
    counts = {
        "pushed": len(pushed),
        "distinct_urls": len(canonical),
        "url_rows": len(rows),
        **states,
        "unfinished": len(rows) - sum(states.values()),
        "duplicate_url_rows": len(rows) - len({row.canonical_url for row in rows}),
        "duplicate_items": (len(items) - len({item.url for item in items}))
        + sum(item.id not in referenced for item in items),
        "duplicate_tags": tag_rows - distinct_tags,
        "seconds": round(time.monotonic() - started, 1),
        **extra,
    }
    counts["duplicates"] = counts["duplicate_url_rows"] + counts["duplicate_items"] + counts["duplicate_tags"]
    record_counts(case, counts)
    assert {row.canonical_url for row in rows} == canonical, "a pushed URL has no row, or an unpushed one has"
    assert counts["unfinished"] == 0, counts
    assert all(row.last_error for row in rows if row.state in ("failed", "dead")), "a failure without its reason"
    assert all(row.item_id for row in rows if row.state == "stored"), "stored without an item"
    assert counts["duplicates"] == 0, counts
    return counts


def record_counts(case: str, counts: dict) -> None:
    report = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    report[case] = counts
    REPORT.write_text(json.dumps(report, indent=2, sort_keys=True))
    print(f"\n[fault] {case}: {json.dumps(counts)}")


def articles(hosts: list[FixtureServer], count: int, tag: str) -> list[str]:
    """``count`` distinct article URLs spread over the hosts (but the first, kept for a case's special page)."""
    run = uuid.uuid4().hex[:6]
    return [hosts[1 + n % (len(hosts) - 1)].url(f"/article/{tag}-{run}-{n}") for n in range(count)]


# -- 5. the same URL pushed 50 times at once ------------------------------------------------------------------


def test_the_same_url_pushed_50_times_at_once_makes_one_row_and_one_item(start_stack, server):
    """Ten ``mirsad push`` processes, each with five spellings of one URL, released at the same moment."""
    stack = start_stack(processing_workers=1)
    started = time.monotonic()
    url = server.url(f"/article/race-{uuid.uuid4().hex[:8]}")
    spellings = [
        url,
        url + "#comments",
        url + "?utm_source=twitter",
        url.replace("http://", "HTTP://"),
        url + "?utm_medium=social&utm_campaign=x#top",
    ]
    pushers = [
        subprocess.Popen(
            mirsad_command("push", "-"),
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **stack.env},
        )
        for _ in range(10)
    ]
    wait_until(
        lambda: all("pipe" in Path(f"/proc/{p.pid}/wchan").read_text() for p in pushers),
        60,
        "every pusher to be waiting for its URLs",
    )
    for pusher in pushers:  # all ten are started and waiting: release them together
        pusher.stdin.write("\n".join(spellings))
    for pusher in pushers:
        pusher.stdin.close()
    verdicts = [
        line.split()[0]
        for pusher in pushers
        for line in pusher.stderr.read().splitlines()
        if line.split() and line.split()[0] in ("accepted", "known", "rejected")
    ]
    assert all(pusher.wait(timeout=60) == 0 for pusher in pushers)
    assert sorted(verdicts) == ["accepted"] + ["known"] * 49
    wait_settled(stack.env["MIRSAD_DATABASE_URL"], 1, timeout=60)
    counts = check_invariant("push-race", stack.env["MIRSAD_DATABASE_URL"], spellings * 10, started)
    assert counts["stored"] == 1 and counts["url_rows"] == 1


# -- 2. the broker crashes or comes back empty ----------------------------------------------------------------


@pytest.mark.timeout(420)
def test_redis_crash_under_1000_urls_loses_nothing_with_its_append_only_file(start_stack, hosts, redis_server):
    """SIGKILL Redis with a thousand URLs in flight and start it again from its append-only file."""
    # The reconciler waits longer than the backlog lasts: it is the safety net here, not the mechanism
    # (URLs merely waiting in a long queue look stuck to it, and it would re-enqueue them over and over).
    stack = start_stack(processing_workers=2, MIRSAD_FETCH_CONCURRENCY="16", MIRSAD_RECONCILE_AFTER="60")
    database_url = stack.env["MIRSAD_DATABASE_URL"]
    started = time.monotonic()
    urls = articles(hosts, 1000, "load")
    stack.push(urls)
    wait_until(lambda: stored_count(database_url) >= 200, 120, "the first 200 items")
    stored_before = stored_count(database_url)
    redis_server.crash()
    redis_server.start()
    wait_settled(database_url, len(urls), timeout=300)
    counts = check_invariant("redis-crash-aof-1000", database_url, urls, started, stored_at_crash=stored_before)
    assert counts["stored"] == 1000


def stored_count(database_url: str) -> int:
    with session_scope(database_url) as session:
        return ledger.counts_by_state(session).get("stored", 0)


def test_redis_restarted_empty_is_refilled_from_the_database_by_the_reconciler(start_stack, hosts, redis_server):
    """Redis comes back with nothing (no append-only file): every queued message is gone, the ledger is not."""
    stack = start_stack(processing_workers=2)
    database_url = stack.env["MIRSAD_DATABASE_URL"]
    started = time.monotonic()
    urls = articles(hosts, 150, "wiped")
    stack.push(urls)
    wait_until(lambda: stored_count(database_url) >= 20, 60, "the first 20 items")
    stored_before = stored_count(database_url)
    redis_server.crash(lose_data=True)
    redis_server.start()
    wait_settled(database_url, len(urls), timeout=120)
    counts = check_invariant(
        "redis-restarted-empty-150",
        database_url,
        urls,
        started,
        stored_at_wipe=stored_before,
        reenqueued_by_reconciler=reconciler_events(database_url),
    )
    assert counts["stored"] == 150 and counts["reenqueued_by_reconciler"] > 0


def reconciler_events(database_url: str) -> int:
    with session_scope(database_url) as session:
        return session.scalar(
            select(func.count()).select_from(UrlEvent).where(UrlEvent.detail == "re-enqueued by the reconciler")
        )


# -- 3. the database stops during the store stage --------------------------------------------------------------


def test_postgres_stopped_30_seconds_during_store_stores_everything_once(start_stack, hosts, postgres_cluster):
    stack = start_stack(processing_workers=2)
    database_url = stack.env["MIRSAD_DATABASE_URL"]
    started = time.monotonic()
    urls = articles(hosts, 60, "pgdown")
    stack.push(urls)

    def storing() -> bool:
        with session_scope(database_url) as session:
            states = ledger.counts_by_state(session)
        return states.get("stored", 0) >= 10 and states.get("classified", 0) + states.get("stripped", 0) > 0

    wait_until(storing, 60, "items being stored")
    stored_before = stored_count(database_url)
    postgres_cluster.stop("fast")  # every worker's connections are cut at once
    time.sleep(30)
    postgres_cluster.start()
    wait_settled(database_url, len(urls), timeout=120)
    counts = check_invariant("postgres-down-30s", database_url, urls, started, stored_at_stop=stored_before)
    assert counts["stored"] == 60 and counts["failed"] == counts["dead"] == 0
    with session_scope(database_url) as session:  # the outage cost no URL a recorded retry: it is not the page's fault
        assert not session.scalar(
            select(func.count()).select_from(UrlEvent).where(UrlEvent.detail.ilike("%database unavailable%"))
        )


def test_postgres_gone_between_the_store_claim_and_its_commit_costs_no_attempt(start_stack, hosts, postgres_cluster):
    """The store stage has claimed the URL (the attempt is counted) when the database goes away before the
    item commits: the store retries the outage until the database is back and takes the interrupted attempt
    again. With one attempt per stage, an outage that spent it would leave the URL dead."""
    # The reconciler waits past the outage: its message would count an attempt (it cannot tell an outage
    # from a crash), and it is not what this case tests.
    stack = start_stack(processing_workers=1, MIRSAD_MAX_ATTEMPTS="1", MIRSAD_RECONCILE_AFTER="120")
    database_url = stack.env["MIRSAD_DATABASE_URL"]
    started = time.monotonic()
    url = articles(hosts, 1, "store-outage")[0]
    blocker = psycopg.connect(database_url.replace("+psycopg", ""))  # holds the store's insert after its claim
    blocker.execute("LOCK TABLE items IN SHARE MODE")
    stack.push([url])
    wait_claimed(database_url, url, "classified", 1)  # the store's claim is committed

    def store_waiting() -> bool:
        with session_scope(database_url) as session:
            return bool(session.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")))

    wait_until(store_waiting, 30, "the store to wait for the items table")
    postgres_cluster.stop("fast")  # the store's connection (and the blocker's) are cut before the commit
    blocker.close()
    time.sleep(5)  # many retries at the fault settings' backoff (0.2–0.5 s), each finding no database
    postgres_cluster.start()
    wait_settled(database_url, 1, timeout=60)
    counts = check_invariant("postgres-gone-mid-store", database_url, [url], started)
    assert counts["stored"] == 1, "\n".join(map(str, events_of(database_url, url)))
    assert event_attempt(database_url, url, "stored") == 1


# -- 1. workers killed or stopped in the middle of a task -----------------------------------------------------


def heavy_page(server: FixtureServer, tag: str, megabytes: float = HEAVY_PAGE_MB) -> str:
    return server.url(f"/big?mb={megabytes}&key={tag}-{uuid.uuid4().hex[:8]}")


def worker_cleaning(stack: FaultStack, names: list[str]) -> str:
    """The one processing worker that has been running the same clean for half a second (a heavy page's,
    since ordinary pages clean in milliseconds), read from the workers' own logs."""

    def in_clean(name: str) -> tuple[str, str] | None:
        """The clean task the worker runs while it is still in the clean stage itself (the task goes on with
        the stages chained after it: a normal page's strip, classify and store are not a long clean)."""
        task, log = stack.task_in_progress(name), stack.log(name)
        if task is None or task[0] != "mirsad.clean" or "clean url_id=" in log[log.rindex(task[1]) :]:
            return None
        return task

    def still_busy() -> str | None:
        first = {name: task for name in names if (task := in_clean(name))}
        time.sleep(0.5)
        steady = [name for name, task in first.items() if in_clean(name) == task]
        assert len(steady) <= 1, f"two workers on long cleans: {steady}"
        return steady[0] if steady else None

    return wait_until(still_busy, 20, "the worker running the clean")


def children_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def connected_to(port: int, pids: list[int]) -> list[int]:
    """Those of ``pids`` holding an open TCP connection to 127.0.0.1:``port``."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[2].endswith(f":{port:04X}") and fields[3] == "01":  # remote port, ESTABLISHED
            inodes.add(fields[9])
    holders = []
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd).removeprefix("socket:[").removesuffix("]") in inodes:
                    holders.append(pid)
                    break
            except OSError:
                continue
    return holders


def requests_for(server: FixtureServer, url: str) -> int:
    key = url.split("key=")[1]
    return sum(key in path for _, _, path in list(server.requests))


def event_attempt(database_url: str, url: str, state: str) -> int:
    """The attempt that moved the URL into ``state`` (1: the first try did it)."""
    return next(attempt for event_state, attempt, _ in events_of(database_url, url) if event_state == state)


def test_a_pool_child_killed_mid_fetch_and_mid_clean_hands_its_message_back(start_stack, hosts):
    """Prefork pools: SIGKILL the child running the fetch, then the child running the clean; the parent
    survives, requeues the message (task_reject_on_worker_lost) and a new child does the stage again."""
    server = hosts[0]
    stack = start_stack(
        processing_workers=1,
        fetch_args=("--pool", "prefork", "--concurrency", "2"),
        process_args=("--pool", "prefork", "--concurrency", "1"),
        **PATIENT_FETCH,
    )
    database_url = stack.env["MIRSAD_DATABASE_URL"]
    started = time.monotonic()
    normal = articles(hosts, 10, "child")
    slow = server.url(f"/slow?seconds=4&key=child-{uuid.uuid4().hex[:8]}")
    stack.push([*normal, slow])
    wait_until(lambda: requests_for(server, slow), 30, "the slow fetch to start")
    fetcher = stack.processes["fetch-worker"]
    server_port = int(server.base_url.rsplit(":", 1)[1])
    child = wait_until(lambda: connected_to(server_port, children_of(fetcher.pid)), 10, "the child fetching")
    os.kill(child[0], signal.SIGKILL)

    heavy = heavy_page(hosts[1], "child")
    stack.push([heavy])
    wait_claimed(database_url, heavy, "fetched", 1)
    processor = stack.processes["process-worker-1"]
    [cleaning_child] = children_of(processor.pid)  # concurrency 1: the only child runs the clean
    os.kill(cleaning_child, signal.SIGKILL)

    wait_settled(database_url, 12, timeout=90)
    counts = check_invariant("pool-child-killed", database_url, [*normal, slow, heavy], started)
    assert counts["stored"] == 12
    assert fetcher.poll() is None and processor.poll() is None, "the parent died with its child"
    # Fetched again after the kill (a third request when the reconciler also re-enqueued it while the
    # killed child's host turn was still held: extra work, never a second item).
    assert requests_for(server, slow) >= 2 and event_attempt(database_url, slow, "fetched") >= 2
    assert event_attempt(database_url, heavy, "cleaned") == 2


def test_a_worker_killed_mid_clean_while_another_is_alive_loses_nothing(start_stack, hosts):
    stack = start_stack(processing_workers=2)
    database_url = stack.env["MIRSAD_DATABASE_URL"]
    started = time.monotonic()
    normal = articles(hosts, 20, "kill")
    heavy = heavy_page(hosts[0], "kill")
    stack.push([heavy, *normal])
    wait_claimed(database_url, heavy, "fetched", 1)
    victim = worker_cleaning(stack, ["process-worker-1", "process-worker-2"])
    survivor = ({"process-worker-1", "process-worker-2"} - {victim}).pop()
    stack.kill(victim)  # the whole worker, mid-clean: no ack, no requeue; the reconciler finds the URL
    wait_settled(database_url, 21, timeout=90)
    counts = check_invariant("worker-killed-mid-clean", database_url, [heavy, *normal], started)
    assert counts["stored"] == 21
    assert stack.processes[survivor].poll() is None
    assert event_attempt(database_url, heavy, "cleaned") == 2
    assert any("reconciler" in detail for _, _, detail in events_of(database_url, heavy))


def test_sigterm_mid_task_lets_the_task_finish(start_stack, hosts):
    """Celery's warm shutdown: a worker told to stop in the middle of a clean, or of a fetch, finishes it first."""
    server = hosts[0]
    stack = start_stack(processing_workers=2, **PATIENT_FETCH)
    database_url = stack.env["MIRSAD_DATABASE_URL"]
    started = time.monotonic()
    heavy = heavy_page(hosts[1], "term", megabytes=3 * HEAVY_PAGE_MB)  # a long clean, even on a fast machine
    stack.push([heavy])
    wait_claimed(database_url, heavy, "fetched", 1)
    stopping = worker_cleaning(stack, ["process-worker-1", "process-worker-2"])
    task = stack.task_in_progress(stopping)
    assert stack.kill(stopping, signal.SIGTERM) == 0
    assert f"Task {task[0]}[{task[1]}] succeeded" in stack.log(stopping)

    slow = server.url(f"/slow?seconds=3&key=term-{uuid.uuid4().hex[:8]}")
    stack.push([slow])
    wait_until(lambda: requests_for(server, slow), 30, "the slow fetch to start")
    assert stack.kill("fetch-worker", signal.SIGTERM) == 0
    assert record_of(database_url, slow).state != "queued"  # fetched before the worker left
    stack.relaunch("fetch-worker")
    stack.wait_ready("fetch-worker")
    normal = articles(hosts, 10, "term")
    stack.push(normal)
    wait_settled(database_url, 12, timeout=60)
    counts = check_invariant("sigterm-mid-task", database_url, [heavy, slow, *normal], started)
    assert counts["stored"] == 12
    assert event_attempt(database_url, heavy, "cleaned") == 1 and event_attempt(database_url, slow, "fetched") == 1
    assert requests_for(server, slow) == 1


# -- 4. a page that kills its worker every time ---------------------------------------------------------------


def test_a_page_that_kills_its_worker_every_time_ends_dead_and_the_rest_are_stored(start_stack, hosts):
    """The test plays the crash: each time a worker claims the poison page for clean (the ledger counts the
    attempt), the test SIGKILLs that worker, as a parser segfault or the kernel's OOM killer would, and
    relaunches it, as docker's restart policy would. The claim counts the attempt before the stage runs,
    so after the stage's attempts the next claim marks the URL dead instead of crashing again. Clean is a
    deterministic stage: it gets two attempts even with MIRSAD_MAX_ATTEMPTS=3 (the retry policy per stage)."""
    max_attempts = CPU_STAGE_ATTEMPTS
    stack = start_stack(processing_workers=2, MIRSAD_MAX_ATTEMPTS="3")
    workers = ["process-worker-1", "process-worker-2"]
    database_url = stack.env["MIRSAD_DATABASE_URL"]
    started = time.monotonic()
    poison = heavy_page(hosts[0], "poison", megabytes=2)  # cleans for seconds unless killed: easy to catch
    normal = articles(hosts, 20, "beside-poison")
    stack.push([poison, *normal])
    more = articles(hosts, 20, "after-poison")
    kills, pushing_more = 0, None
    for attempt in range(1, max_attempts + 1):
        wait_claimed(database_url, poison, "fetched", attempt, timeout=60)
        victim = worker_cleaning(stack, workers)
        stack.kill(victim)
        kills += 1
        stack.relaunch(victim)
        if attempt == 1:  # more work arrives while the poison keeps crashing workers
            pushing_more = stack.push(more, wait=False)
    assert pushing_more.wait(timeout=60) == 0
    normal += more
    wait_settled(database_url, 1 + len(normal), timeout=60)
    counts = check_invariant("poison-page", database_url, [poison, *normal], started, worker_kills=kills)
    record = record_of(database_url, poison)
    assert record.state == "dead" and counts["dead"] == 1 and counts["stored"] == len(normal)
    assert f"gave up after {max_attempts} attempts" in record.last_error and "worker died" in record.last_error

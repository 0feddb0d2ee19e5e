"""Supervision with real processes: `mirsad up` killed by SIGKILL or closed by SIGHUP leaves no worker behind,
a worker that dies is restarted, a worker whose Redis vanishes exits after the stall limit and is restarted
with nothing lost, one beat per deployment, and one deployment per broker database.

Checked with the process table (/proc), never with mocks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.fixture_server import FixtureServer
from tests.private_services import PrivateRedis, private_root
from tests.stack_helpers import FAST_RECOVERY, mirsad, wait_final, wait_until
from workers.runtime.stack import mirsad_command
from workers.storage.db import migrate, session_scope
from workers.storage.models import Item, UrlRecord

pytestmark = pytest.mark.integration
READY = " ready."


def alive(pid: int) -> bool:
    """Running, as the process table says (a zombie has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


class Up:
    """``mirsad up`` in its own session, as a user's terminal would run it, with its log in a file."""

    def __init__(self, env: dict[str, str], log: Path):
        self.log_path = log
        with open(log, "ab") as handle:
            self.process = subprocess.Popen(
                mirsad_command("up"),
                env={**os.environ, **env},
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self, count: int = 3) -> list[int]:
        def started() -> list[int] | None:
            found = children_of(self.process.pid)
            return found if len(found) >= count else None

        return wait_until(started, 60, f"{count} services of mirsad up")

    def wait_ready(self, workers: int = 2) -> None:
        wait_until(lambda: self.log().count(READY) >= workers, 90, "the workers to be ready", interval=0.3)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


@pytest.fixture
def up_env(tmp_path):
    database_url = f"sqlite:///{tmp_path}/up.db"
    migrate(database_url)
    import redis

    redis.Redis.from_url(os.environ["MIRSAD_REDIS_URL"]).flushdb()
    return {**FAST_RECOVERY, "MIRSAD_DATABASE_URL": database_url, "MIRSAD_PROCESS_CONCURRENCY": "1"}


@pytest.fixture
def ups(tmp_path):
    started: list[Up] = []

    def start(env: dict[str, str], name: str = "up") -> Up:
        started.append(Up(env, tmp_path / f"{name}.log"))
        return started[-1]

    yield start
    for up in started:
        up.stop()
        for pid in children_of(up.process.pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP])
def test_no_worker_outlives_mirsad_up(up_env, ups, sig):
    up = ups(up_env)
    up.wait_ready(workers=2)
    services = up.children()  # after the workers are up: by then the supervisor has started every service
    up.process.send_signal(sig)
    up.process.wait(timeout=30)
    wait_until(
        lambda: not any(alive(pid) for pid in services),
        10,
        f"every service to end after {sig.name} of mirsad up ({[p for p in services if alive(p)]} alive)",
    )
    if sig == signal.SIGHUP:
        assert up.process.returncode == 0 and "stopping" in up.log()


def test_a_worker_that_dies_is_restarted_with_a_backoff(up_env, ups):
    up = ups(up_env)
    up.wait_ready(workers=2)
    services = up.children()  # after the workers are up: by then the supervisor has started every service
    victim = services[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: "restarted (pid" in up.log(), 30, "the dead service to be restarted")
    assert "exited with code -9" in up.log() and "restarting in 1 s" in up.log()
    fresh = up.children()
    assert victim not in fresh and len(fresh) == len(services) and up.process.poll() is None


def test_a_worker_whose_redis_vanishes_exits_after_the_stall_limit_and_nothing_is_lost(up_env, ups, tmp_path):
    if PrivateRedis.missing():
        pytest.skip(PrivateRedis.missing())
    broker = PrivateRedis(private_root("mirsad-stall-")).start()
    try:
        env = {
            **up_env,
            "MIRSAD_REDIS_URL": broker.url(),
            "MIRSAD_WORKER_STALL_EXIT": "3",
            "MIRSAD_RECONCILE_AFTER": "5",
        }
        with FixtureServer() as server:
            up = ups(env)
            up.children()
            up.wait_ready(workers=2)
            run = uuid.uuid4().hex[:6]
            urls = [server.url(f"/article/stall-{run}-{n}") for n in range(30)]
            pushed = mirsad("push", *urls, env=env)
            assert pushed.returncode == 0, pushed.stderr
            broker.crash()  # in flight: some fetched, some queued
            wait_until(
                lambda: up.log().count("exited with code 3") >= 3,
                60,
                "every worker and beat to exit after the stall limit",
                interval=0.3,
            )
            assert "has been unreachable for" in up.log()
            broker.start()
            with session_scope(env["MIRSAD_DATABASE_URL"]) as session:
                ids = list(session.scalars(select(UrlRecord.id)))
            records = wait_final(env["MIRSAD_DATABASE_URL"], ids, timeout=120)
            assert sorted(r.state for r in records.values()) == ["stored"] * len(urls), [
                (r.url, r.state, r.last_error) for r in records.values() if r.state != "stored"
            ]
            with session_scope(env["MIRSAD_DATABASE_URL"]) as session:
                assert session.scalar(select(func.count()).select_from(Item)) == len(urls)  # each stored once
            assert up.process.poll() is None  # the stack carried on
    finally:
        broker.stop()


def test_one_beat_per_deployment_and_one_deployment_per_broker_database(up_env, ups, tmp_path):
    first = ups(up_env, "first")
    first.children()
    first.wait_ready(workers=2)
    second = ups(up_env, "second")  # the same deployment again: more workers, but its beat stands by
    second.children()
    wait_until(lambda: "stands by" in second.log(), 60, "the second beat to stand by")
    assert "stands by" not in first.log()

    other_database = f"sqlite:///{tmp_path}/other.db"
    migrate(other_database)
    other = {**up_env, "MIRSAD_DATABASE_URL": other_database}
    refused = mirsad("worker", "--queues", "fetch", env=other, timeout=60)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    message = refused.stderr.strip().splitlines()[-1]
    assert f"already serves the database {up_env['MIRSAD_DATABASE_URL']}" in message and "MIRSAD_REDIS_URL" in message
    push = mirsad("push", "http://127.0.0.1:9/x", env=other)
    assert push.returncode == 2 and "already serves the database" in push.stderr

    first.process.send_signal(signal.SIGKILL)  # the first beat dies with it; the standby takes over
    wait_until(lambda: "beat: Starting..." in second.log(), 120, "the standby beat to take over", interval=0.5)

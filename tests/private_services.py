"""A private Redis and a private PostgreSQL cluster that fault tests may stop, kill and restart.

The machine's Redis (6379) and PostgreSQL (5432) serve every other test run at the same
time, so faults are never injected there: each server here runs on a free port, with its
data in a temporary directory, and is removed at the end. PostgreSQL refuses to run as
root, so when the tests run as root the cluster is run as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import redis

from tests.stack_helpers import free_port, wait_until


def private_root(prefix: str) -> Path:
    """A fresh directory that another user (PostgreSQL's) may enter."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    return root


class PrivateRedis:
    """``redis-server`` on a free port; ``crash`` SIGKILLs it, ``start`` brings it back from its append-only file."""

    BINARY = shutil.which("redis-server")

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @classmethod
    def missing(cls) -> str | None:
        return None if cls.BINARY else "redis-server is not installed"

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def start(self) -> PrivateRedis:
        """Every write is fsynced to the append-only file before it is acknowledged (as deployed, but stricter)."""
        log = open(self.root / "redis.log", "ab")
        self.process = subprocess.Popen(
            [
                self.BINARY,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.root),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(self._answers, 10, f"redis on port {self.port}")
        return self

    def crash(self, lose_data: bool = False) -> None:
        """SIGKILL the server (no shutdown, no final save); ``lose_data`` also deletes its files (a fresh host)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        if lose_data:
            shutil.rmtree(self.root / "appendonlydir", ignore_errors=True)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.crash()

    def _answers(self) -> bool:
        try:
            return self.client().ping()
        except redis.RedisError:
            return False


class PrivatePostgres:
    """A PostgreSQL cluster made with ``initdb`` on a free port; ``stop``/``start`` take the server down and up."""

    def __init__(self, root: Path):
        self.root = root
        self.data = root / "pgdata"
        self.port = free_port()
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @classmethod
    def missing(cls) -> str | None:
        if not postgres_bin_dir():
            return "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no postgres user to run initdb as"
        return None

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def init(self) -> PrivatePostgres:
        self.data.mkdir()
        if self.run_as:
            shutil.chown(self.data, "postgres", "postgres")
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        return self.start()

    def start(self) -> PrivatePostgres:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.data / "server.log"), "-o", options, "-w", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """``fast`` disconnects every client at once (as a restart would); ``immediate`` is a crash."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _pg(self, program: str, *args: str) -> None:
        subprocess.run(
            [*self.run_as, str(postgres_bin_dir() / program), *args], check=True, capture_output=True, cwd=self.root
        )


def postgres_bin_dir() -> Path | None:
    """Where initdb and pg_ctl live: Debian's versioned folder (newest first), else next to them on PATH."""
    versioned = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda path: [int(part) for part in Path(path).parent.name.split(".")],
    )
    for folder in [*reversed(versioned), *(str(Path(found).parent) for found in [shutil.which("initdb")] if found)]:
        if Path(folder, "initdb").exists() and Path(folder, "pg_ctl").exists():
            return Path(folder)
    return None

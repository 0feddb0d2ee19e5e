"""A whole single-machine stack as child processes: a fetch worker, processing workers, beat and the API.

``mirsad up`` runs it in the foreground and ``mirsad demo`` in the background;
the commands are the same ones docker-compose.yml runs, one per service.
Processing workers are single processes (Celery's solo pool), one per core:
measured on this machine, a 5-hop chain of no-op tasks ran at 331 chains/s on
two solo workers against 180 on one worker with a two-process prefork pool.

Children never outlive the stack: each asks the kernel for SIGTERM when its parent dies
(``PR_SET_PDEATHSIG``, Linux) and knows its supervisor's pid (``runtime.liveness`` watches it
elsewhere). A child that exits while the stack runs is started again after a backoff.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any

from workers.core.settings import Settings
from workers.core.topology import CPU_QUEUES, IO_QUEUES
from workers.runtime import deployment
from workers.runtime.liveness import SUPERVISOR_ENV

log = logging.getLogger("mirsad.stack")
PR_SET_PDEATHSIG = 1
RESTART_BACKOFF = (1.0, 60.0)  # first delay before restarting a service that exited, and the ceiling
HEALTHY_RUN = 60.0  # a service that ran this long before exiting starts again after the first delay

FETCH_WORKER = ["worker", "--queues", ",".join(IO_QUEUES)]
PROCESS_WORKER = ["worker", "--queues", ",".join(CPU_QUEUES)]


def services(process_workers: int) -> dict[str, list[str]]:
    """Service name → ``mirsad`` arguments, as in docker-compose.yml (process-worker has replicas there)."""
    return {
        "fetch-worker": FETCH_WORKER,
        **{f"process-worker-{n}": PROCESS_WORKER for n in range(1, process_workers + 1)},
        "beat": ["beat"],
        "api": ["api"],
    }


def mirsad_command(*args: str) -> list[str]:
    """The argv that runs ``mirsad ARGS`` with this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-m", "workers.cli", *args]


def die_with_parent(parent_pid: int) -> None:
    """In the child, before exec: SIGTERM when the parent dies (the setting survives exec); exit at once
    if it already has. Without prctl (not Linux) the child's watchdog does the same from the parent pid."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        os._exit(1)


@dataclass
class Stack:
    env: dict[str, str] | None = None
    log_file: IO[Any] | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    started_at: dict[str, float] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    restart_due: dict[str, float] = field(default_factory=dict)

    def start(self) -> Stack:
        env = {**os.environ, **(self.env or {})}
        for name, args in services(Settings.from_env(env).process_concurrency).items():
            self.commands[name] = args
            self.spawn(name)
        return self

    def spawn(self, name: str) -> None:
        parent = os.getpid()
        env = {**os.environ, **(self.env or {}), SUPERVISOR_ENV: str(parent)}
        self.processes[name] = subprocess.Popen(
            mirsad_command(*self.commands[name]),
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT if self.log_file else None,
            start_new_session=True,
            preexec_fn=lambda: die_with_parent(parent),
        )
        self.started_at[name] = time.monotonic()

    def exited(self) -> dict[str, int]:
        """Services whose process has ended, with exit codes."""
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}

    def restart_exited(self) -> list[str]:
        """Start again each service that exited, after its backoff (doubling per quick exit); the names restarted.

        A worker exits on purpose when its broker has been away too long (``runtime.liveness``), and by
        accident when it crashes: either way the stack carries on with a fresh one, logged.
        """
        now, restarted = time.monotonic(), []
        for name, code in self.exited().items():
            if name not in self.restart_due:
                ran = now - self.started_at[name]
                self.restarts[name] = 0 if ran >= HEALTHY_RUN else self.restarts.get(name, 0) + 1
                delay = min(RESTART_BACKOFF[1], RESTART_BACKOFF[0] * 2 ** max(0, self.restarts[name] - 1))
                self.restart_due[name] = now + delay
                log.warning("%s exited with code %s after %.0f s; restarting in %.0f s", name, code, ran, delay)
            elif now >= self.restart_due[name]:
                del self.restart_due[name]
                self.spawn(name)
                restarted.append(name)
                log.warning("%s restarted (pid %d)", name, self.processes[name].pid)
        return restarted

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM (Celery's warm shutdown: running tasks finish), then SIGKILL whatever is left after ``grace``."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.restart_due.clear()
        self._release_broker()

    def _release_broker(self) -> None:
        """Every service has ended: the deployment's lease on the broker goes too (unless another stack of
        the same deployment still runs: its watchdogs take it again within seconds)."""
        import redis

        settings = Settings.from_env({**os.environ, **(self.env or {})})
        try:
            deployment.release_broker(deployment.broker_client(settings), settings)
        except redis.RedisError as exc:
            log.info("the broker lease was not released (%s); it lapses by itself", exc)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

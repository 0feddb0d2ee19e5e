"""A whole single-machine stack as child processes: a fetch worker, processing workers, beat and the API.

``mirsad up`` runs it in the foreground and ``mirsad demo`` in the background;
the commands are the same ones docker-compose.yml runs, one per service.
Processing workers are single processes (Celery's solo pool), one per core:
measured on this machine, a 5-hop chain of no-op tasks ran at 331 chains/s on
two solo workers against 180 on one worker with a two-process prefork pool.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any

from workers.core.settings import Settings
from workers.core.topology import CPU_QUEUES, IO_QUEUES

FETCH_WORKER = ["worker", "--queues", ",".join(IO_QUEUES)]
PROCESS_WORKER = ["worker", "--queues", ",".join(CPU_QUEUES)]


def services(process_workers: int) -> dict[str, list[str]]:
    """Service name → ``mirsad`` arguments, as in docker-compose.yml (process-worker has replicas there)."""
    return {"fetch-worker": FETCH_WORKER,
            **{f"process-worker-{n}": PROCESS_WORKER for n in range(1, process_workers + 1)},
            "beat": ["beat"], "api": ["api"]}


def mirsad_command(*args: str) -> list[str]:
    """The argv that runs ``mirsad ARGS`` with this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-m", "workers.cli", *args]


@dataclass
class Stack:
    env: dict[str, str] | None = None
    log_file: IO[Any] | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self) -> Stack:
        env = {**os.environ, **(self.env or {})}
        for name, args in services(Settings.from_env(env).process_concurrency).items():
            self.processes[name] = subprocess.Popen(mirsad_command(*args), env=env, stdout=self.log_file,
                                                    stderr=subprocess.STDOUT if self.log_file else None,
                                                    start_new_session=True)
        return self

    def exited(self) -> dict[str, int]:
        """Services whose process has ended, with exit codes."""
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}

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

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

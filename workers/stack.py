"""A whole single-machine stack as child processes: a fetch worker, a processing worker and beat.

``mirsad up`` runs it in the foreground and ``mirsad demo`` in the background;
the commands are the same ones docker-compose.yml runs, one per service.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from .pipeline import CPU_QUEUES, IO_QUEUES

SERVICES = {
    "fetch-worker": ["worker", "--queues", ",".join(IO_QUEUES)],
    "process-worker": ["worker", "--queues", ",".join(CPU_QUEUES)],
    "beat": ["beat"],
}


def mirsad_command(*args: str) -> list[str]:
    """The argv that runs ``mirsad ARGS`` with this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-m", "workers.cli", *args]


@dataclass
class Stack:
    env: dict[str, str] | None = None
    log_file: object = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self) -> "Stack":
        env = {**os.environ, **(self.env or {})}
        for name, args in SERVICES.items():
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

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

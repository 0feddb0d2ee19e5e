"""The watchdog thread of every worker and beat: it ends a process that can no longer do its job.

- Its supervisor died (``mirsad up`` killed, even by SIGKILL): on Linux the kernel already sent
  SIGTERM (``PR_SET_PDEATHSIG``, set by ``runtime.stack`` in the child); elsewhere the watchdog sees
  the parent change and sends it. Either way the process exits within ``SUPERVISOR_GRACE`` seconds,
  so no orphan keeps consuming from Redis for a database nobody runs any more.
- Its broker has been unreachable for longer than MIRSAD_WORKER_STALL_EXIT: it exits with
  ``STALLED`` so that ``mirsad up``, compose or systemd starts a fresh one.
- It beats (``mirsad status`` lists the processes attached) and refreshes the deployment's lease on
  the broker (and beat's lock); a process that finds the
  lease taken by another deployment, or beat's lock by another beat, exits with ``DISPLACED``.

Under compose or systemd there is no Mirsad parent (MIRSAD_SUPERVISOR_PID is unset): only the
broker checks run.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

import redis

from workers.core.settings import Settings, redacted
from workers.runtime import deployment

log = logging.getLogger("mirsad.liveness")

SUPERVISOR_ENV = "MIRSAD_SUPERVISOR_PID"
STALLED = 3  # exit code: the broker was away for too long
DISPLACED = 4  # exit code: another deployment holds the broker, or another beat the lock
SUPERVISOR_GRACE = 10.0  # seconds for a warm shutdown after the supervisor died, then exit regardless
CHECK_EVERY = 1.0
BROKER_EVERY = 5.0


def supervisor_pid() -> int | None:
    value = os.environ.get(SUPERVISOR_ENV, "")
    return int(value) if value.isdigit() else None


class Watchdog(threading.Thread):
    """Started by ``mirsad worker`` and ``mirsad beat`` before they consume; a daemon thread."""

    def __init__(self, settings: Settings, name: str, queues: str = "", beat_token: str | None = None):
        super().__init__(name="mirsad-watchdog", daemon=True)
        self.settings = settings
        self.process_name, self.queues = name, queues
        self.beat_token = beat_token
        self.supervisor = supervisor_pid()
        self.broker_ok_at = time.monotonic()
        self.orphaned_at: float | None = None

    def run(self) -> None:
        client = deployment.broker_client(self.settings)
        next_broker_check = 0.0
        while True:
            now = time.monotonic()
            self._check_supervisor(now)
            if now >= next_broker_check:
                self._check_broker(client, now)
                next_broker_check = now + BROKER_EVERY
            time.sleep(CHECK_EVERY)

    def _check_supervisor(self, now: float) -> None:
        if self.supervisor is None or os.getppid() == self.supervisor:
            return
        if self.orphaned_at is None:
            self.orphaned_at = now
            log.warning("the supervisor (pid %d) is gone: stopping", self.supervisor)
            if not sys.platform.startswith("linux"):  # no PR_SET_PDEATHSIG there: the signal is ours to send
                os.kill(os.getpid(), signal.SIGTERM)
        elif now - self.orphaned_at > SUPERVISOR_GRACE:
            log.error("still running %.0f s after the supervisor died: exiting now", SUPERVISOR_GRACE)
            os._exit(1)

    def _check_broker(self, client: redis.Redis, now: float) -> None:
        try:
            deployment.claim_broker(client, self.settings)
            deployment.heartbeat(client, self.process_name, "beat" if self.beat_token else "worker", self.queues)
            # take_beat_lock, not only renew: a Redis restarted empty lost the lock, and this beat is still the one
            if self.beat_token and not deployment.take_beat_lock(client, self.beat_token):
                log.error("another beat (%s) holds the lock now: this one exits", deployment.beat_holder(client))
                os._exit(DISPLACED)
        except deployment.BrokerTaken as exc:
            log.error("%s: this process exits", exc.reason)
            os._exit(DISPLACED)
        except redis.RedisError as exc:
            down_for = now - self.broker_ok_at
            if down_for > self.settings.worker_stall_exit:
                log.critical(
                    "the broker %s has been unreachable for %.0f s (MIRSAD_WORKER_STALL_EXIT=%g): exiting "
                    "so that a supervisor starts a fresh process",
                    redacted(self.settings.redis_url),
                    down_for,
                    self.settings.worker_stall_exit,
                )
                logging.shutdown()
                os._exit(STALLED)
            log.warning("the broker is unreachable (%s) for %.0f s", exc, down_for)
            return
        self.broker_ok_at = now

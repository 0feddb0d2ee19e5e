"""One deployment per broker database and one beat per deployment, both kept as leases in Redis.

Two stacks serving different databases through one Redis database take each other's messages:
a worker gets the id of a URL its database never saw and logs "nothing to do", while the URL
waits in the other database. So the broker database belongs to one database (the deployment):
every worker and beat holds the lease ``mirsad:deployment`` (the database URL, password hidden)
and refreshes it while it runs; a worker of another database refuses to start while the lease is
held, and ``push`` refuses to send into it. A stopped deployment's lease lapses after ``LEASE``.

Beat holds a second lease, ``mirsad:beat``: a second ``mirsad beat`` (or a second ``mirsad up``)
against the same deployment waits as a standby and takes over when the first stops.
"""

from __future__ import annotations

import os
import socket
import time

import redis

from workers.core.errors import MirsadError
from workers.core.settings import Settings, redacted

DEPLOYMENT_KEY = "mirsad:deployment"
BEAT_LOCK_KEY = "mirsad:beat"
LEASE = 60  # seconds; refreshed every few seconds by each process's watchdog (runtime/liveness.py)
HEARTBEAT_LEASE = 20

# Extend the lease only while we still hold it (a compare-and-expire, atomic in Redis).
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end return 0"


_TAKE_STALE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3]) end return 0"
)


_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class BrokerTaken(MirsadError):
    """The broker database already serves another database."""

    @property
    def reason(self) -> str:
        return str(self)


def identity(settings: Settings) -> str:
    """What names a deployment: its database URL, password hidden."""
    return redacted(settings.database_url)


def broker_client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=5)


def holder(client: redis.Redis) -> str | None:
    """The database the broker database serves now, or None when no deployment holds it."""
    return _text(client.get(DEPLOYMENT_KEY))


def check_broker(client: redis.Redis, settings: Settings) -> None:
    """BrokerTaken, naming both databases and the fix, when the broker serves another database."""
    held = holder(client)
    if held is not None and held != identity(settings):
        raise BrokerTaken(
            f"the broker {redacted(settings.redis_url)} already serves the database {held}, not "
            f"{identity(settings)}; give this deployment its own Redis database (MIRSAD_REDIS_URL=redis://…/N) "
            f"or use that database (MIRSAD_DATABASE_URL); a stopped deployment's claim lapses within {LEASE} s"
        )


def claim_broker(client: redis.Redis, settings: Settings) -> None:
    """Take or refresh this deployment's lease on the broker database; BrokerTaken when another holds it."""
    me = identity(settings)
    if client.set(DEPLOYMENT_KEY, me, nx=True, ex=LEASE):
        return
    check_broker(client, settings)
    client.expire(DEPLOYMENT_KEY, LEASE)  # ours (or it lapsed a moment ago: the next refresh takes it again)


def release_broker(client: redis.Redis, settings: Settings) -> None:
    """Give the broker database up when this deployment's processes have all stopped (``Stack.stop``),
    so that a stack for another database may start at once rather than after the lease lapses."""
    client.eval(_RELEASE, 1, DEPLOYMENT_KEY, identity(settings))


PROCESS_KEY = "mirsad:process:"  # + name: a worker's or beat's heartbeat (what `mirsad status` lists)


def heartbeat(client: redis.Redis, name: str, role: str, queues: str) -> None:
    """Say this process is alive and what it consumes; the entry lapses when it stops beating."""
    key = PROCESS_KEY + name
    client.hset(key, mapping={"role": role, "queues": queues, "at": f"{time.time():.0f}"})
    client.expire(key, HEARTBEAT_LEASE)


def attached(client: redis.Redis) -> list[dict]:
    """Every worker and beat that beat within HEARTBEAT_LEASE: name, role, queues, seconds since its beat."""
    found = []
    for key in client.scan_iter(match=PROCESS_KEY + "*", count=200):
        values = {_text(k): _text(v) for k, v in client.hgetall(key).items()}
        if values.get("at"):
            found.append(
                {
                    "name": (_text(key) or "").removeprefix(PROCESS_KEY),
                    "role": values.get("role"),
                    "queues": values.get("queues"),
                    "seconds_ago": round(time.time() - float(values["at"] or 0), 1),
                }
            )
    return sorted(found, key=lambda entry: (entry["role"] or "", entry["name"]))


def beat_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def take_beat_lock(client: redis.Redis, token: str) -> bool:
    """True when this process is (now) the deployment's one beat. A lease left by a beat of this machine
    that is no longer running (``mirsad up`` SIGKILLed a moment ago) is taken at once, not after it lapses."""
    held = beat_holder(client)
    if held is not None and _ended_here(held):
        client.eval(_TAKE_STALE, 1, BEAT_LOCK_KEY, held, token, LEASE)
    return bool(client.set(BEAT_LOCK_KEY, token, nx=True, ex=LEASE)) or renew_beat_lock(client, token)


def _ended_here(token: str) -> bool:
    host, _, pid = token.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process: alive
        return False
    return False


def renew_beat_lock(client: redis.Redis, token: str) -> bool:
    """Extend the beat lease; False when another beat holds it (ours lapsed while Redis was away)."""
    return bool(client.eval(_RENEW, 1, BEAT_LOCK_KEY, token, LEASE))


def beat_holder(client: redis.Redis) -> str | None:
    return _text(client.get(BEAT_LOCK_KEY))


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value

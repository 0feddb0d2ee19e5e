"""What the end-to-end tests share: fast-recovery settings, running ``mirsad``, pushing URLs and waiting for items,
waiting for anything, a free port.

The ``stack`` fixture that runs the workers lives in ``tests/conftest.py``; test modules import
these helpers from here, never from one another.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

from sqlalchemy import select

from workers.runtime.push import push
from workers.runtime.stack import mirsad_command
from workers.storage.db import session_scope
from workers.storage.models import Item, UrlRecord

FAST_RECOVERY = {
    "MIRSAD_RECONCILE_AFTER": "3",
    "MIRSAD_MAX_ATTEMPTS": "3",
    "MIRSAD_RETRY_BACKOFF": "0.2",
    "MIRSAD_RETRY_BACKOFF_MAX": "0.5",
    "MIRSAD_TOTAL_TIMEOUT": "8",
    "MIRSAD_READ_TIMEOUT": "4",
    "MIRSAD_CONNECT_TIMEOUT": "2",
    "MIRSAD_ALLOW_PRIVATE_HOSTS": "127.0.0.0/8",
    "MIRSAD_PROCESS_CONCURRENCY": "2",
    "MIRSAD_FETCH_CONCURRENCY": "4",
    "MIRSAD_HOST_INTERVAL": "0.02",  # every page is on one local server; pacing itself is tested in test_politeness
}


def push_all(database_url: str, urls: list[str]) -> dict[str, object]:
    return {r.url: r for r in push(urls, database_url=database_url)}


def wait_final(database_url: str, url_ids: list[int], timeout: float = 90) -> dict[int, UrlRecord]:
    deadline = time.monotonic() + timeout
    while True:
        with session_scope(database_url) as session:
            records = {r.id: r for r in session.scalars(select(UrlRecord).where(UrlRecord.id.in_(url_ids)))}
        if all(r.state in ("stored", "failed", "dead") for r in records.values()) or time.monotonic() > deadline:
            return records
        time.sleep(0.3)


def item_for(database_url: str, record: UrlRecord) -> Item:
    with session_scope(database_url) as session:
        item = session.get(Item, record.item_id)
        _ = item.tags  # load while the session is open
        return item


def mirsad(
    *args: str, env: dict[str, str] | None = None, input: str | bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """``mirsad ARGS`` in a subprocess with the tests' environment plus ``env``; text unless ``input`` is bytes."""
    return subprocess.run(
        mirsad_command(*args),
        env={**os.environ, **(env or {})},
        input=input,
        capture_output=True,
        text=not isinstance(input, bytes),
        timeout=timeout,
    )


def without_isolates(output: str) -> list[str]:
    """The lines of a CLI table as a terminal without bidi shows them: its Unicode isolates take no room."""
    return output.replace("\u2068", "").replace("\u2069", "").splitlines()


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy; that value, or TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

"""The whole chain with real Celery workers, the real Redis and both databases.

The stack is started with the same `mirsad worker` / `mirsad beat` commands
that docker-compose.yml runs. Pages come from a local HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid

import pytest
from sqlalchemy import func, select

from tests.fixture_server import FixtureServer
from tests.stack_helpers import item_for, push_all, wait_final
from workers.runtime.stack import FETCH_WORKER, mirsad_command
from workers.storage.db import session_scope
from workers.storage.models import Item, TagRecord, UrlRecord

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server():
    with FixtureServer() as fixture_server:
        yield fixture_server


def test_pages_in_three_languages_land_tagged(stack, server):
    database_url, *_ = stack
    pages = {
        "ar-aggregator.html": "ar",
        "ar-windows-1256.html": "ar",
        "tr-news.html": "tr",
        "tr-iso-8859-9.html": "tr",
        "en-wire.html": "en",
    }
    results = push_all(database_url, [server.url(f"/pages/{name}") for name in pages])
    assert {r.outcome for r in results.values()} == {"accepted"}
    records = wait_final(database_url, [r.url_id for r in results.values()])
    for name, language in pages.items():
        record = records[results[server.url(f"/pages/{name}")].url_id]
        assert record.state == "stored", (name, record.last_error)
        item = item_for(database_url, record)
        tags = {(t.kind, t.value) for t in item.tags}
        assert item.language == language and ("language", language) in tags, name
        assert ("country", "LY") in tags and ("country", "TR") in tags, (name, tags)
        assert all(t.evidence for t in item.tags if t.kind != "language")
        assert len(item.text) > 500 and "\ufffd" not in item.text, name
        assert record.payload is None  # the intermediate page is not kept once stored


def test_pushing_the_same_article_twice_stores_one_item(stack, server):
    database_url, *_ = stack
    url = server.url("/pages/ar-ilkha-style.html")
    first = push_all(database_url, [url])[url]
    again = push_all(database_url, [url + "?utm_source=twitter#comments", url])
    assert first.outcome == "accepted"
    assert {r.outcome for r in again.values()} == {"known"}
    assert wait_final(database_url, [first.url_id])[first.url_id].state == "stored"
    with session_scope(database_url) as session:
        assert session.scalar(select(func.count()).select_from(Item).where(Item.url.like(f"{url}%"))) == 1


@pytest.mark.parametrize(
    "path, state, reason",
    [
        ("/status/404", "failed", "HTTP 404"),
        ("/pdf", "failed", "UnsupportedContent"),
        ("/big?mb=50", "failed", "PageTooLarge"),
        ("/status/503", "dead", "ServerBusy"),
    ],
)
def test_each_failure_is_recorded_with_its_reason(stack, server, path, state, reason):
    database_url, *_ = stack
    url_id = push_all(database_url, [server.url(path)])[server.url(path)].url_id
    record = wait_final(database_url, [url_id])[url_id]
    assert record.state == state and reason in record.last_error
    assert record.item_id is None


def test_an_unreachable_host_ends_dead_with_the_connection_error(stack):
    database_url, *_ = stack
    url = f"http://127.0.0.1:{closed_port()}/news"
    url_id = push_all(database_url, [url])[url].url_id
    record = wait_final(database_url, [url_id])[url_id]
    assert record.state == "dead" and "ConnectionFailed" in record.last_error
    assert record.attempts == 3


def test_a_private_address_is_refused_without_connecting(stack):
    database_url, *_ = stack
    url = "http://169.254.169.254/latest/meta-data/"
    url_id = push_all(database_url, [url])[url].url_id
    record = wait_final(database_url, [url_id])[url_id]
    assert record.state == "failed" and "ForbiddenAddress" in record.last_error


def test_a_malformed_url_is_rejected_at_push(stack):
    database_url, *_ = stack
    result = push_all(database_url, ["htp:/broken url"])["htp:/broken url"]
    assert result.outcome == "rejected" and result.url_id is None


def test_a_server_error_is_retried_until_it_succeeds(stack, server):
    database_url, *_ = stack
    url = server.url(f"/flaky?fail=2&key={uuid.uuid4().hex}")
    url_id = push_all(database_url, [url])[url].url_id
    record = wait_final(database_url, [url_id])[url_id]
    assert record.state == "stored"
    with session_scope(database_url) as session:
        details = [e.detail or "" for e in session.get(UrlRecord, url_id).events]
    assert sum("retry: ServerBusy" in d for d in details) == 2


def test_a_worker_killed_mid_item_loses_nothing_and_stores_once(stack, server):
    database_url, env, running, log_file = stack
    url = server.url(f"/slow?seconds=3&key={uuid.uuid4().hex}")
    url_id = push_all(database_url, [url])[url].url_id
    deadline = time.monotonic() + 30
    while not any(
        path.startswith("/slow") and "key=" + url.split("key=")[1] in path for _, _, path in list(server.requests)
    ):
        assert time.monotonic() < deadline, "the fetch never started"
        time.sleep(0.05)
    fetch_worker = running.processes["fetch-worker"]
    os.killpg(fetch_worker.pid, signal.SIGKILL)  # the whole worker, mid-fetch: no chance to ack or requeue
    fetch_worker.wait()
    running.processes["fetch-worker"] = subprocess.Popen(
        mirsad_command(*FETCH_WORKER),
        env={**os.environ, **env},
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    record = wait_final(database_url, [url_id], timeout=60)[url_id]
    assert record.state == "stored", record.last_error
    with session_scope(database_url) as session:
        assert session.scalar(select(func.count()).select_from(Item).where(Item.url == url)) == 1
        assert session.scalar(
            select(func.count()).select_from(TagRecord).where(TagRecord.item_id == record.item_id)
        ) == len(item_for(database_url, record).tags)
        assert any("reconciler" in (e.detail or "") for e in session.get(UrlRecord, url_id).events)


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

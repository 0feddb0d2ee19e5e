"""Replay: failed and dead URLs back to the stage they failed at, in the ledger and through a real stack."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from tests.fixture_server import FixtureServer, article_page
from tests.stack_helpers import json_lines, mirsad, push_all, wait_final
from workers.storage import ledger, replay
from workers.storage.db import session_scope
from workers.storage.models import Item, UrlEvent, UrlRecord


def failed_at(database_url: str, url: str, stages: list[tuple[str, str]], reason: str, dead: bool = False) -> int:
    """A URL advanced through ``stages`` (from, to), then failed (or died) at the next one."""
    with session_scope(database_url) as session:
        url_id = ledger.register(session, url).url_id
    state = "queued"
    for from_state, to_state in stages:
        with session_scope(database_url) as session:
            claim = ledger.begin(session, url_id, from_state, 5)
            ledger.advance(session, claim, from_state, to_state, {"made_by": from_state})
        state = to_state
    with session_scope(database_url) as session:
        claim = ledger.begin(session, url_id, state, 5)
        if dead:
            ledger.note_retry(session, claim, state, reason, max_attempts=1)
        else:
            ledger.fail(session, claim, state, reason)
    return url_id


def requeue(database_url: str, dry_run: bool = False, **filters):
    with session_scope(database_url) as session:
        return replay.requeue(session, replay.matching(session, **filters), "the test", dry_run)


def test_a_url_failed_at_classify_goes_back_to_classify_with_its_input_and_fresh_attempts(database_url):
    stages = [("queued", "fetched"), ("fetched", "cleaned"), ("cleaned", "stripped")]
    url_id = failed_at(database_url, "https://example.com/typo", stages, "ValueError: entities.yaml line 3")
    done = requeue(database_url)
    assert [(r.url_id, r.was, r.to_state) for r in done] == [(url_id, "failed", "stripped")]
    with session_scope(database_url) as session:
        record = session.get(UrlRecord, url_id)
        assert record.state == "stripped" and record.attempts == 0 and record.last_error is None
        claim = ledger.begin(session, url_id, "stripped", 5)
        assert claim.payload == {"made_by": "cleaned"} and claim.attempt == 1  # classify's input, kept
        history = [e.detail for e in record.events]
    assert "requeued by the test (was failed: ValueError: entities.yaml line 3)" in history


def test_filters_choose_what_is_requeued_and_a_dry_run_changes_nothing(database_url):
    dead = failed_at(database_url, "https://dead.example/a", [], "ConnectionFailed: refused", dead=True)
    gone = failed_at(database_url, "https://www.gone.example/b", [], "HTTPStatusError: HTTP 404")
    other = failed_at(database_url, "https://other.example/c", [], "HTTPStatusError: HTTP 410")
    assert [r.url_id for r in requeue(database_url, states=["dead"])] == [dead]
    assert [r.url_id for r in requeue(database_url, dry_run=True, reason="http 4")] == [gone, other]
    assert [r.url_id for r in requeue(database_url, dry_run=True, site="gone.example")] == [gone]
    assert [r.url_id for r in requeue(database_url, dry_run=True, targets=[f"url:{other}"])] == [other]
    with session_scope(database_url) as session:
        states = dict(session.execute(select(UrlRecord.id, UrlRecord.state)).all())
    assert states == {dead: "queued", gone: "failed", other: "failed"}  # the dry runs moved nothing


def test_a_stored_or_active_url_is_never_requeued(database_url):
    with session_scope(database_url) as session:
        url_id = ledger.register(session, "https://example.com/fresh").url_id
    assert requeue(database_url, targets=[str(url_id)]) == []


# -- through a real stack -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with FixtureServer(pages_dir=tmp_path_factory.mktemp("pages")) as fixture_server:
        yield fixture_server


@pytest.mark.integration
def test_requeue_of_a_url_that_failed_404_and_now_answers_200_stores_it_once(stack, server):
    database_url, env, *_ = stack
    name = f"late-{uuid.uuid4().hex[:8]}.html"
    url = server.url(f"/pages/{name}")
    url_id = push_all(database_url, [url])[url].url_id
    record = wait_final(database_url, [url_id])[url_id]
    assert record.state == "failed" and "404" in record.last_error
    (server.pages_dir / name).write_bytes(article_page(name))  # the page is published after all

    dry = mirsad("requeue", "--dry-run", "--json", url, env=env)
    assert dry.returncode == 0, dry.stderr
    assert [row["url_id"] for row in json_lines(dry.stdout)] == [url_id] and "dry run" in dry.stderr
    result = mirsad("requeue", "--reason", "404", f"url:{url_id}", env=env)
    assert result.returncode == 0 and "1 URL(s) requeued" in result.stderr, result.stderr
    record = wait_final(database_url, [url_id])[url_id]  # requeued: active again until it ends
    assert record.state == "stored", record.last_error
    with session_scope(database_url) as session:
        assert session.scalar(select(func.count()).select_from(Item).where(Item.url == url)) == 1
        details = list(session.scalars(select(UrlEvent.detail).where(UrlEvent.url_id == url_id)))
    assert any(d and d.startswith("requeued by mirsad requeue") for d in details)
    again = mirsad("requeue", f"url:{url_id}", env=env)  # stored now: nothing to requeue, nothing stored twice
    assert again.returncode == 0 and "0 URL(s) requeued" in again.stderr
    assert record.item_id is not None

"""The ledger and the store stage against both databases: states, attempts, idempotence."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from workers.core.document import Document, RemovedLine, Tag
from workers.core.errors import InvalidURL
from workers.storage import ledger
from workers.storage.db import session_scope
from workers.storage.models import Item, TagRecord, UrlEvent, UrlRecord
from workers.storage.store import store_item


def register(database_url, url):
    with session_scope(database_url) as session:
        return ledger.register(session, url)


def claim(database_url, url_id, state, max_attempts=5):
    with session_scope(database_url) as session:
        return ledger.begin(session, url_id, state, max_attempts)


def record(database_url, url_id):
    with session_scope(database_url) as session:
        return session.get(UrlRecord, url_id)


def test_pushing_a_url_twice_keeps_one_row(database_url):
    first = register(database_url, "https://example.com/a?utm_source=x")
    second = register(database_url, "https://EXAMPLE.com/a#top")
    assert first.created and not second.created
    assert first.url_id == second.url_id
    assert second.state == "queued"


def test_a_malformed_url_is_rejected_before_any_row(database_url):
    with pytest.raises(InvalidURL):
        register(database_url, "ftp://example.com/")
    with session_scope(database_url) as session:
        assert session.scalar(select(func.count()).select_from(UrlRecord)) == 0


def test_a_state_moves_once_even_when_two_runs_race(database_url):
    url_id = register(database_url, "https://example.com/race").url_id
    first, second = claim(database_url, url_id, "queued"), claim(database_url, url_id, "queued")
    with session_scope(database_url) as session:
        assert ledger.advance(session, first, "queued", "fetched", {"html": "x"})
    with session_scope(database_url) as session:
        assert not ledger.advance(session, second, "queued", "fetched", {"html": "y"})
    assert claim(database_url, url_id, "queued") is None  # nothing left to do at that stage
    later = claim(database_url, url_id, "fetched")
    assert later.payload == {"html": "x"} and later.attempt == 1


def test_a_stage_that_keeps_dying_ends_dead_after_max_attempts(database_url):
    url_id = register(database_url, "https://example.com/poison").url_id
    for attempt in range(1, 4):
        assert claim(database_url, url_id, "queued", max_attempts=3).attempt == attempt
    assert claim(database_url, url_id, "queued", max_attempts=3) is None
    dead = record(database_url, url_id)
    assert dead.state == "dead" and "gave up after 3 attempts" in dead.last_error


def test_retryable_failures_are_recorded_then_give_up(database_url):
    url_id = register(database_url, "https://example.com/busy").url_id
    for _ in range(2):
        current = claim(database_url, url_id, "queued", max_attempts=2)
        with session_scope(database_url) as session:
            again = ledger.note_retry(session, current, "queued", "ServerBusy: HTTP 503", max_attempts=2)
    assert again is False
    dead = record(database_url, url_id)
    assert dead.state == "dead" and "ServerBusy: HTTP 503" in dead.last_error


def test_a_permanent_failure_keeps_its_reason_and_history(database_url):
    url_id = register(database_url, "https://example.com/missing").url_id
    current = claim(database_url, url_id, "queued")
    with session_scope(database_url) as session:
        ledger.fail(session, current, "queued", "HTTPStatusError: HTTP 404")
    with session_scope(database_url) as session:
        failed = session.get(UrlRecord, url_id)
        assert failed.state == "failed" and failed.last_error == "HTTPStatusError: HTTP 404"
        assert [e.state for e in failed.events] == ["queued", "failed"]


def test_stuck_urls_are_found_and_touching_them_resets_the_clock(database_url):
    url_id = register(database_url, "https://example.com/stuck").url_id
    with session_scope(database_url) as session:
        assert (url_id, "queued") in ledger.stuck(session, timedelta(seconds=-1))
        assert ledger.stuck(session, timedelta(hours=1)) == []
        ledger.touch(session, url_id, "queued", "re-enqueued")
    with session_scope(database_url) as session:
        assert session.scalar(select(func.count()).select_from(UrlEvent).where(UrlEvent.url_id == url_id)) == 2


def test_storing_twice_keeps_one_item_and_one_set_of_tags(database_url):
    document = Document(
        text="نص المقال",
        title="عنوان",
        language="ar",
        tags=[Tag("country", "LY", 0.9, ["ليبيا"]), Tag("topic", "energy", 0.5, ["النفط"])],
        removed=[RemovedLine("شاركه مع أصدقائك", "marker:share-prompt")],
        fetched_at="2026-11-23T10:00:00+00:00",
    )
    with session_scope(database_url) as session:
        first = store_item(session, "h" * 64, "https://example.com/x", document).item_id
    with session_scope(database_url) as session:
        second = store_item(session, "h" * 64, "https://example.com/x", document).item_id
    assert first == second
    with session_scope(database_url) as session:
        assert session.scalar(select(func.count()).select_from(Item)) == 1
        assert session.scalar(select(func.count()).select_from(TagRecord)) == 2
        item = session.get(Item, first)
        assert item.removed == [{"line": "شاركه مع أصدقائك", "rule": "marker:share-prompt"}]
        assert item.fetched_at.isoformat() == "2026-11-23T10:00:00+00:00"

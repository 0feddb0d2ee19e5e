"""The watches' matcher, index, spike rule and storage, without a stack.

The matcher must mean what search means: every query of the labelled search set, run as a watch over
every labelled item, matches exactly the items the database's search returns.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.labelled_search import bench
from workers.core.document import Document
from workers.core.settings import Settings
from workers.core.urls import canonicalize, url_hash
from workers.stages.alerts import InvalidDestination, SendOutcome, check_webhook_url, smtp_server
from workers.storage import watches
from workers.storage.db import session_scope
from workers.storage.items import ItemFilter, list_items
from workers.storage.models import Delivery, Item, Watch, WatchInbox, WatchMatch, utcnow
from workers.storage.store import store_item
from workers.text.query import parse
from workers.text.watchmatch import WatchIndex, compile_watch, is_spike, item_features

LOCAL = Settings(allow_private_hosts="127.0.0.0/8")


def features(title: str, text: str, language: str = "en", url: str = "https://aa.com.tr/x", tags=(), story=None):
    return item_features(title, text, language, url, tags, story)


def test_every_labelled_query_matches_as_search_does(database_url):
    """On both databases, from the tokens the index stored, and from the text analysed afresh."""
    items, queries = bench.load_labelled()
    bench.store_labelled(database_url, items)
    with session_scope(database_url) as session:
        stored = watches_items(session)
        ids = [item.id for item in stored]
        from_index = [watches.features_of(session, item) for item in stored]
        fresh = [
            item_features(i.title, i.text, i.language, i.url, [(t.kind, t.value) for t in i.tags], i.story_id)
            for i in stored
        ]
        assert [f.surfaces for f in from_index] == [f.surfaces for f in fresh]
        for spec in queries:
            searched = {i.id for i in list_items(session, ItemFilter(query=parse(spec["q"])), limit=500).items}
            compiled = compile_watch(1, parse(spec["q"]))
            index = WatchIndex([compiled])
            for features in (from_index, fresh):
                assert {i for i, item in zip(ids, features, strict=True) if compiled.matches(item)} == searched
                assert {i for i, item in zip(ids, features, strict=True) if index.matching(item)} == searched


def watches_items(session) -> list[Item]:
    return [watches.load_item(session, item_id) for item_id in session.scalars(select(Item.id).order_by(Item.id))]


def test_words_phrases_prefixes_exclusions_and_filters():
    item = features(
        "Turkey and Libya sign a defence cooperation deal",
        "Ankara's drones were discussed in Tripoli.",
        tags=[("country", "TR"), ("topic", "defence-cooperation")],
        story=7,
    )
    cases = {
        "libya turkey": True,
        '"defence cooperation"': True,
        '"cooperation defence"': False,
        "drone": True,  # the stem of drones
        '"drone"': False,  # quoted: the exact form only
        "anka*": True,
        "libya -football": True,
        "libya -tripoli": False,
        "submarine OR drone": True,
        "country:TR lang:en": True,
        "country:tr": True,  # country codes are upper case, as search folds them
        "country:LY": False,
        "lang:ar libya": False,
        "site:aa.com.tr story:7 libya": True,
        "site:www.aa.com.tr": True,
        "story:8": False,
        "topic:defence-cooperation": True,
    }
    for query, expected in cases.items():
        assert compile_watch(1, parse(query)).matches(item) is expected, query


def test_arabic_and_turkish_forms_meet_as_in_search():
    arabic = features("تعاون دفاعي", "وقّعت تركيا وليبيا اتفاقية للتعاون الدفاعي", language="ar")
    assert compile_watch(1, parse("التعاون")).matches(arabic)
    assert compile_watch(1, parse('"التعاون الدفاعي"')).matches(arabic)
    turkish = features("Anlaşma", "Türkiye ile Libya arasında askeri eğitim anlaşması imzalandı.", language="tr")
    assert compile_watch(1, parse("anlaşma lang:tr")).matches(turkish)
    assert compile_watch(1, parse("LİBYA")).matches(turkish)


def test_the_index_gives_only_the_watches_an_item_could_match():
    compiled = [compile_watch(n, parse(f"word{n} common")) for n in range(1000)]
    compiled += [compile_watch(2000, parse("prefi*")), compile_watch(2001, parse("country:LY"))]
    index = WatchIndex(compiled)
    item = features("word7 and word70", "common ground", tags=[("country", "LY")])
    candidates = {w.watch_id for w in index.candidates(item)}
    assert {7, 70, 2000, 2001} <= candidates and len(candidates) < 10
    assert index.matching(item) == [7, 70, 2001]


def test_the_spike_rule():
    assert is_spike(9, [1, 2, 2, 3, 0, 1, 2], factor=3, minimum=5)
    assert not is_spike(6, [1, 2, 2, 3, 0, 1, 2], factor=3, minimum=5)  # not above 3 × median 2
    assert not is_spike(4, [0] * 14, factor=3, minimum=5)  # below the minimum count
    assert is_spike(5, [0] * 14, factor=3, minimum=5)


def test_webhook_urls_pass_the_fetch_address_guard():
    closed = Settings(allow_private_hosts="0")
    for url, why in (
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://169.254.169.254/latest", "metadata"),
        ("http://10.0.0.5/hook", "private"),
        ("http://[::1]/hook", "loopback"),
        ("ftp://example.org/x", "only http"),
        ("http://2130706433/hook", "loopback"),
    ):
        with pytest.raises(InvalidDestination, match=why):
            check_webhook_url(url, closed)
    assert check_webhook_url("http://127.0.0.1:8080/hook", LOCAL)
    with pytest.raises(InvalidDestination, match="port 6379"):
        check_webhook_url("http://127.0.0.1:6379/", LOCAL)  # an internal service's port, allowed network or not


def test_smtp_urls():
    server = smtp_server("smtp://user%40x:p%3Ass@mail.example.org:587?starttls=1")
    assert (server.host, server.port, server.user, server.password, server.starttls, server.tls) == (
        "mail.example.org",
        587,
        "user@x",
        "p:ss",
        True,
        False,
    )
    assert smtp_server("smtps://mail.example.org").port == 465


def store(database_url: str, n: int, text: str, title: str = "A report") -> Item:
    url = f"https://aa.com.tr/news/{n}"
    document = Document(text=text, title=title, language="en", url=url)
    with session_scope(database_url) as session:
        stored = store_item(session, url_hash(canonicalize(url)), url, document)
        watches.enqueue_item(session, stored.item_id)
        return watches.load_item(session, stored.item_id)


def test_one_match_and_one_delivery_per_watch_and_item_and_quiet_stories(database_url):
    with session_scope(database_url) as session:
        watch = watches.add(session, "w", "zircon", LOCAL, webhook_url="http://127.0.0.1:9999/h")
        with pytest.raises(watches.WatchError, match="exists already"):
            watches.add(session, "w", "zircon", LOCAL)
    text = "Officials said the zircon programme would be reviewed by the joint committee next week."
    first = store(database_url, 1, text)
    second = store(database_url, 2, text + " A second outlet reported it too.")
    assert first.story_id == second.story_id
    with session_scope(database_url) as session:
        created = watches.record_matches(session, first, [watch.id], LOCAL)
        assert len(created) == 1
        assert watches.record_matches(session, first, [watch.id], LOCAL) is None  # matched already
        assert watches.record_matches(session, second, [watch.id], LOCAL) == []  # same story: digest only
    with session_scope(database_url) as session:
        matches = session.scalars(select(WatchMatch).order_by(WatchMatch.id)).all()
        assert [(m.item_id, m.alerted) for m in matches] == [(first.id, True), (second.id, False)]
        # The database refuses a second alert of the same (watch, item) whatever the code does.
        session.add(WatchInbox(item_id=first.id))
        session.flush()
        assert watches.record_matches(session, first, [watch.id], LOCAL) == []
        assert session.query(Delivery).count() == 1
    later = LOCAL.watch_story_quiet + 1
    third = store(database_url, 3, text + " Still more on it today.")
    with session_scope(database_url) as session:
        assert len(watches.record_matches(session, third, [watch.id], LOCAL, utcnow() + timedelta(seconds=later))) == 1


def test_claims_retries_dead_resend_and_the_sweeper(database_url):
    with session_scope(database_url) as session:
        watch = watches.add(session, "w", "zircon", LOCAL, webhook_url="http://127.0.0.1:9999/h")
    item = store(database_url, 1, "Officials said the zircon programme would be reviewed by the committee.")
    with session_scope(database_url) as session:
        [delivery_id] = watches.record_matches(session, item, [watch.id], LOCAL)
    failed = SendOutcome(False, "HTTP 503 Service Unavailable", retryable=True)
    with session_scope(database_url) as session:
        claimed = watches.claim_delivery(session, delivery_id, lease=10)
        assert claimed is not None and claimed.attempt == 1
        assert watches.claim_delivery(session, delivery_id, lease=10) is None  # one attempt at a time
        assert watches.finish_delivery(session, claimed, failed, retry_in=0, max_attempts=2) == "pending"
    with session_scope(database_url) as session:
        claimed = watches.claim_delivery(session, delivery_id, lease=10)
        assert watches.finish_delivery(session, claimed, failed, retry_in=0, max_attempts=2) == "dead"
        dead = session.get(Delivery, delivery_id)
        assert dead.attempts == 2 and dead.last_error == "HTTP 503 Service Unavailable (after 2 attempts)"
        watches.reopen(session, delivery_id)
        assert session.get(Delivery, delivery_id).state == "pending"
    with session_scope(database_url) as session:
        claimed = watches.claim_delivery(session, delivery_id, lease=0)  # a worker that dies mid-attempt
        assert claimed is not None
    other = store(database_url, 2, "Nothing of interest in this other report about the weather today.")
    claimed = store(database_url, 3, "A third report, being matched by a run that holds its claim right now.")
    with session_scope(database_url) as session:
        assert watches.claim_inbox(session, claimed.id, lease=60)
        assert not watches.claim_inbox(session, claimed.id, lease=60)  # a second message costs one UPDATE
        session.execute(update(WatchInbox).values(queued_at=utcnow() - timedelta(minutes=5)))
    with session_scope(database_url) as session:
        found = watches.sweep(session, after=1)
    assert found.items == [other.id]  # not the one being matched
    with session_scope(database_url) as session:
        assert session.get(Delivery, delivery_id).state == "pending"
        session.execute(update(Delivery).values(next_attempt_at=utcnow() - timedelta(minutes=5)))
    with session_scope(database_url) as session:
        assert watches.sweep(session, after=1).deliveries == [delivery_id]


def test_spikes_need_a_usual_level(database_url):
    with session_scope(database_url) as session:
        watch = watches.add(session, "w", "zircon", LOCAL, webhook_url="http://127.0.0.1:9999/h")
    settings = Settings(allow_private_hosts="127.0.0.0/8", watch_spike_min=3)
    texts = [
        "Zircon mining output rose sharply in the northern provinces during this quarter, officials said.",
        "The navy tested a zircon missile off the western coast on Monday morning before dawn.",
        "Jewellers say zircon prices have doubled since the spring auctions in the capital city.",
        "A museum displayed an ancient zircon crystal that farmers found near the river last year.",
    ]
    items = [store(database_url, n, text) for n, text in enumerate(texts)]
    now = utcnow()
    with session_scope(database_url) as session:
        for item in items[:3]:
            assert len(watches.record_matches(session, item, [watch.id], settings, now)) == 1  # young: no spike
        session.execute(update(Watch).values(created_at=now - timedelta(days=3)))
        session.execute(
            update(WatchMatch).where(WatchMatch.item_id == items[0].id).values(matched_at=now - timedelta(days=1))
        )
    with session_scope(database_url) as session:
        # This hour: 3 matches (2 + the new one) against a usual 0 or 1 (median of 3 days: 0).
        created = watches.record_matches(session, items[3], [watch.id], settings, now)
        kinds = sorted(session.get(Delivery, d).kind for d in created)
    assert kinds == ["match", "spike"]


def test_the_index_follows_watches_added_and_removed(database_url):
    with session_scope(database_url) as session:
        first = watches.add(session, "a", "zircon", LOCAL)
    item = features("zircon", "quartz and zircon")
    with session_scope(database_url) as session:
        assert watches.watch_index(session).matching(item) == [first.id]
        watches.remove(session, "a")
    with session_scope(database_url) as session:
        second = watches.add(session, "b", "granite", LOCAL)  # SQLite may give it the removed watch's id
    with session_scope(database_url) as session:
        assert watches.watch_index(session).matching(item) == []
        assert watches.watch_index(session).size == 1 and second.id

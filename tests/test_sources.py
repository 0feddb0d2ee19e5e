"""Sources: the declaration file, the table, polling with the seen-set, and beat following a live site.

Polls run against a local site (tests/feed_server.py) whose feed and sitemap index gain entries
between polls, through the polite request path (real Redis); the last test runs the real stack
with beat and follows the site by itself.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import timedelta

import pytest
import redis
from sqlalchemy import select

from tests.feed_server import FeedSite
from tests.stack_helpers import mirsad, wait_until
from workers.core.document import Document
from workers.core.settings import PROJECT_ROOT, Settings
from workers.core.urls import canonicalize, url_hash
from workers.runtime import polling
from workers.runtime.stack import Stack
from workers.storage import sources
from workers.storage.db import forget_engines, migrate, session_scope
from workers.storage.models import Item, Source, SourceEntry, UrlRecord, utcnow

SETTINGS = Settings(redis_url=os.environ["MIRSAD_REDIS_URL"], allow_private_hosts="127.0.0.0/8", host_interval=0.05)
ARTICLE = (
    "<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
    "<p>Libya and Türkiye signed a memorandum on military training in Tripoli. The delegations met at the "
    "defence ministry and agreed on a schedule for naval cadets and coast guard officers.</p>"
    "</article></body></html>"
)


def rss(site: FeedSite, *items: tuple[str, str, str]) -> str:
    entries = "".join(
        f"<item><title>{title}</title><link>{site.url(path)}</link><pubDate>{date}</pubDate></item>"
        for path, title, date in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{entries}</channel></rss>'


def sitemap(site: FeedSite, *paths: str) -> str:
    urls = "".join(
        f"<url><loc>{site.url(path)}</loc><lastmod>2024-03-0{n + 1}</lastmod></url>" for n, path in enumerate(paths)
    )
    return f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'


def index(site: FeedSite, *children: tuple[str, str]) -> str:
    listed = "".join(
        f"<sitemap><loc>{site.url(path)}</loc><lastmod>{lastmod}</lastmod></sitemap>" for path, lastmod in children
    )
    return f'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{listed}</sitemapindex>'


FIRST = [
    ("/news/1", "Training delegation visits Tripoli", "Fri, 01 Mar 2024 09:30:00 GMT"),
    ("/news/2", "Coast guard receives two boats", "Sat, 02 Mar 2024 14:00:00 GMT"),
]
THIRD = ("/news/3", "Maritime memorandum signed", "Sun, 03 Mar 2024 16:15:00 GMT")


@pytest.fixture
def site():
    redis.Redis.from_url(SETTINGS.redis_url).flushdb()
    with FeedSite() as feed_site:
        yield feed_site


@pytest.fixture
def database(tmp_path):
    url = f"sqlite:///{tmp_path}/mirsad.db"
    migrate(url)
    yield url
    forget_engines()


def add_source(database_url: str, url: str, every: int = 60) -> int:
    """Declare ``url`` beside the sources already there; its row id."""
    with session_scope(database_url) as session:
        kept = [sources.Declared(s.url, s.every) for s in sources.listing(session)]
        sources.sync(session, [*kept, sources.Declared(url, every)])
        return session.scalar(select(Source.id).where(Source.url == url))


def poll(database_url: str, source_id: int) -> polling.PollReport:
    report = polling.poll_source(source_id, settings=SETTINGS, database_url=database_url)
    while report.retry_in is not None:  # the host's turn: what the task does by requeueing
        time.sleep(report.retry_in)
        report = polling.poll_source(source_id, settings=SETTINGS, database_url=database_url)
    return report


def fetched_paths(site: FeedSite) -> list[str]:
    return [request.path for request in site.log if request.status == 200 and request.path.startswith("/news/")]


# -- the file --------------------------------------------------------------------------------------------------


def test_add_and_remove_edit_the_file_and_keep_its_comments(tmp_path):
    shutil.copy(PROJECT_ROOT / "config" / "sources.yaml", tmp_path / "sources.yaml")
    original = (tmp_path / "sources.yaml").read_text(encoding="utf-8")
    assert sources.read_declared(tmp_path) == []
    sources.add_to_file(tmp_path, "https://a.example/rss.xml", 60)
    sources.add_to_file(tmp_path, "https://b.example/sitemap.xml?section=1")
    assert sources.read_declared(tmp_path) == [
        sources.Declared("https://a.example/rss.xml", 60),
        sources.Declared("https://b.example/sitemap.xml?section=1", 900),
    ]
    with pytest.raises(ValueError, match="already a source"):
        sources.add_to_file(tmp_path, "https://a.example/rss.xml")
    with pytest.raises(Exception, match="scheme"):
        sources.add_to_file(tmp_path, "ftp://a.example/rss.xml")
    sources.remove_from_file(tmp_path, "https://a.example/rss.xml")
    assert [s.url for s in sources.read_declared(tmp_path)] == ["https://b.example/sitemap.xml?section=1"]
    sources.remove_from_file(tmp_path, "https://b.example/sitemap.xml?section=1")
    assert (tmp_path / "sources.yaml").read_text(encoding="utf-8").startswith(original.split("sources:")[0])
    with pytest.raises(ValueError, match="not a source"):
        sources.remove_from_file(tmp_path, "https://b.example/sitemap.xml?section=1")


def test_a_hand_written_entry_between_comments_is_removed_alone(tmp_path):
    (tmp_path / "sources.yaml").write_text(
        "sources:\n  - url: https://a.example/feed\n    every: 300\n    name: A\n\n"
        "  # B is slow\n  - {url: https://b.example/feed, every: 3600}\n  - url: https://c.example/feed\n",
        encoding="utf-8",
    )
    sources.remove_from_file(tmp_path, "https://a.example/feed")
    sources.remove_from_file(tmp_path, "https://c.example/feed")
    assert (tmp_path / "sources.yaml").read_text(
        encoding="utf-8"
    ) == "sources:\n\n  # B is slow\n  - {url: https://b.example/feed, every: 3600}\n"


def test_a_bad_entry_is_refused_with_the_file_and_the_reason(tmp_path):
    (tmp_path / "sources.yaml").write_text("sources:\n  - url: https://a.example/feed\n    every: soon\n")
    with pytest.raises(ValueError, match="every must be"):
        sources.read_declared(tmp_path)


# -- the table -------------------------------------------------------------------------------------------------


def test_sync_follows_the_file_and_a_due_source_is_claimed_once(database):
    now = utcnow()
    with session_scope(database) as session:
        assert sources.sync(
            session, [sources.Declared("https://a.example/feed", 60), sources.Declared("https://b.example/feed", 600)]
        ) == (2, 0)
        assert len(sources.claim_due(session, now)) == 2
        assert sources.claim_due(session, now + timedelta(seconds=59)) == []
        assert len(sources.claim_due(session, now + timedelta(seconds=61))) == 1
        assert sources.sync(session, [sources.Declared("https://b.example/feed", 600)]) == (0, 1)
        assert [s.url for s in sources.listing(session)] == ["https://b.example/feed"]


def test_a_failing_or_quiet_source_is_flagged(database):
    now = utcnow()
    source_id = add_source(database, "https://a.example/feed", every=600)
    with session_scope(database) as session:
        source = session.get(Source, source_id)
        assert sources.flag(source, now) is None
        assert "quiet" in sources.flag(source, now + timedelta(hours=25))
        assert sources.flag(source, now + timedelta(hours=23)) is None
        sources.record_failure(session, source_id, "ConnectionFailed: refused", now)
        assert sources.flag(source, now) == "failing (1× in a row): ConnectionFailed: refused"
        assert source.next_poll_at == now + timedelta(seconds=600)
        sources.record_failure(session, source_id, "ConnectionFailed: refused", now)
        assert source.next_poll_at == now + timedelta(seconds=1200)  # polled less often while it fails


# -- polling ---------------------------------------------------------------------------------------------------


def test_a_feed_pushes_only_new_entries_and_an_unchanged_one_answers_304(site, database):
    site.put("/feed.xml", rss(site, *FIRST))
    source_id = add_source(database, site.url("/feed.xml"))
    assert poll(database, source_id).pushed == [site.url("/news/1"), site.url("/news/2")]
    assert poll(database, source_id).pushed == []
    assert site.requests_for("/feed.xml")[-1].status == 304
    site.put("/feed.xml", rss(site, THIRD, *FIRST))
    assert poll(database, source_id).pushed == [site.url("/news/3")]
    with session_scope(database) as session:
        source = session.get(Source, source_id)
        assert (source.kind, source.entries_seen, source.failures) == ("rss", 3, 0)
        hint = session.scalar(
            select(SourceEntry).where(SourceEntry.url_hash == url_hash(canonicalize(site.url("/news/3"))))
        )
        assert (hint.title, hint.published_at) == ("Maritime memorandum signed", "2024-03-03T16:15:00+00:00")


def test_a_malformed_feed_is_read_as_far_as_it_goes_and_says_so(site, database, caplog):
    site.put("/feed.xml", rss(site, *FIRST).replace("<title>t</title>", "<title>Defence & Security</title>"))
    source_id = add_source(database, site.url("/feed.xml"))
    with caplog.at_level("WARNING", logger="mirsad.sources"):
        assert poll(database, source_id).pushed == [site.url("/news/1"), site.url("/news/2")]
    assert any(
        "malformed feed" in record.getMessage() and site.url("/feed.xml") in record.getMessage()
        for record in caplog.records
    )


def test_a_sitemap_index_reads_only_the_children_whose_lastmod_changed(site, database):
    site.put("/sitemaps/march.xml", sitemap(site, "/news/1", "/news/2"))
    site.put("/index.xml", index(site, ("/sitemaps/march.xml", "2024-03-02")))
    source_id = add_source(database, site.url("/index.xml"))
    assert len(poll(database, source_id).pushed) == 2
    site.put("/sitemaps/april.xml", sitemap(site, "/news/4"))
    site.put("/index.xml", index(site, ("/sitemaps/april.xml", "2024-04-01"), ("/sitemaps/march.xml", "2024-03-02")))
    assert poll(database, source_id).pushed == [site.url("/news/4")]
    assert len(site.requests_for("/sitemaps/march.xml")) == 1 and len(site.requests_for("/sitemaps/april.xml")) == 1
    with session_scope(database) as session:
        assert session.get(Source, source_id).kind == "sitemap-index"


def test_a_failing_source_records_the_reason_and_a_disallowed_one_says_robots(site, database):
    site.put("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
    missing, private = add_source(database, site.url("/gone.xml")), add_source(database, site.url("/private/feed"))
    assert "HTTP 404" in poll(database, missing).error
    assert "RobotsDisallowed" in poll(database, private).error
    assert "/private/feed" not in [request.path for request in site.log]
    with session_scope(database) as session:
        assert session.get(Source, private).failures == 1


def test_the_hints_fill_what_the_page_does_not_say(database):
    key = url_hash(canonicalize("https://a.example/news/1"))
    with session_scope(database) as session:
        session.add(SourceEntry(url_hash=key, title="Feed title", published_at="2024-03-01T09:30:00+00:00"))
    filled = sources.apply_hints(Document(text="body", title="Page title"), key, database)
    assert (filled.title, filled.published_at) == ("Page title", "2024-03-01T09:30:00+00:00")
    assert sources.apply_hints(Document(text="body"), "0" * 64, database) == Document(text="body")


# -- beat follows a live site ----------------------------------------------------------------------------------


@pytest.mark.integration
def test_beat_follows_a_feed_and_a_sitemap_index_as_they_grow(site, tmp_path, config_copy):
    (config_copy / "sources.yaml").write_text("sources: []\n", encoding="utf-8")
    database_url = f"sqlite:///{tmp_path}/mirsad.db"
    migrate(database_url)
    env = {
        "MIRSAD_DATABASE_URL": database_url,
        "MIRSAD_CONFIG_DIR": str(config_copy),
        "MIRSAD_HOST_INTERVAL": "0.1",
        "MIRSAD_SOURCE_CHECK_INTERVAL": "1",
        "MIRSAD_PROCESS_CONCURRENCY": "1",
        "MIRSAD_FETCH_CONCURRENCY": "4",
    }
    for path, title, _date in (*FIRST, THIRD):
        site.put(path, ARTICLE.format(title=title), "text/html; charset=utf-8")
    site.put("/news/4", ARTICLE.format(title="April report"), "text/html; charset=utf-8")
    site.put("/feed.xml", rss(site, *FIRST))
    site.put("/sitemaps/march.xml", sitemap(site, "/news/2"))  # also in the feed: fetched once all the same
    site.put("/index.xml", index(site, ("/sitemaps/march.xml", "2024-03-02")))
    for url in (site.url("/feed.xml"), site.url("/index.xml")):
        assert mirsad("sources", "add", url, "--every", "1", env=env).returncode == 0

    with open(tmp_path / "stack.log", "ab") as log_file, Stack(env=env, log_file=log_file):
        first = {site.url("/news/1"), site.url("/news/2")}
        wait_until(lambda: stored_urls(database_url) >= first, 45, "the first entries", interval=0.2)
        wait_until(lambda: site.requests_for("/feed.xml")[-1].status == 304, 45, "an unchanged poll", interval=0.2)
        site.put("/sitemaps/april.xml", sitemap(site, "/news/4"))
        site.put(
            "/index.xml", index(site, ("/sitemaps/april.xml", "2024-04-01"), ("/sitemaps/march.xml", "2024-03-02"))
        )
        site.put("/feed.xml", rss(site, THIRD, *FIRST))
        wait_until(lambda: len(stored_urls(database_url)) == 4, 45, "the new entries", interval=0.2)
        listed = json.loads(mirsad("sources", "list", "--json", env=env).stdout)

    assert sorted(fetched_paths(site)) == ["/news/1", "/news/2", "/news/3", "/news/4"]  # each article once
    with session_scope(database_url) as session:
        item = session.scalar(select(Item).where(Item.url == site.url("/news/3")))
        assert item.published_at == "2024-03-03T16:15:00+00:00"  # the page has no date: the feed's
    assert {s["url"] for s in listed} == {site.url("/feed.xml"), site.url("/index.xml")}
    assert sum(s["entries_seen"] for s in listed) == 4  # /news/2, in both, counts for whichever pushed it first
    assert all(s["flag"] is None and s["failures"] == 0 for s in listed)


def stored_urls(database_url: str) -> set[str]:
    with session_scope(database_url) as session:
        return set(session.scalars(select(UrlRecord.url).where(UrlRecord.state == "stored")))

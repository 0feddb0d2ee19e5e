"""Feeds, sitemaps and discovery against a real web site on 127.0.0.1 (tests/feed_server.py)."""

from __future__ import annotations

import gzip
import json
import logging
from datetime import UTC, datetime

import pytest
import yaml

from tests.feed_server import FIXTURES, FeedSite
from tests.stack_helpers import mirsad
from workers.core.errors import ForbiddenAddress, HTTPStatusError, PageTooLarge, ServerBusy, UnsupportedContent
from workers.core.settings import PROJECT_ROOT, Settings
from workers.intake.discover import DiscoveredSource, discover, read_robots
from workers.intake.feeds import ChildSitemap, FeedEntry, parse, poll
from workers.stages.fetch import fetch_raw

SETTINGS = Settings(allow_private_hosts="127.0.0.0/8", total_timeout=10, connect_timeout=2, read_timeout=5)
MARCH = datetime(2024, 3, 2, 10, 0, tzinfo=UTC)
APRIL = datetime(2024, 4, 2, 16, 10, tzinfo=UTC)
SOURCES_FILE = PROJECT_ROOT / "seeds" / "sources.yaml"

FIRST_RSS_ENTRIES = [
    FeedEntry(
        "https://news.example/ar/2024/03/01/training-delegation",
        "وفد عسكري تركي يزور طرابلس لبحث برامج التدريب",
        "2024-03-01T06:30:00+00:00",
    ),
    FeedEntry(
        "http://127.0.0.1:{port}/ar/2024/03/02/coast-guard-boats",
        "خفر السواحل الليبي يتسلم زورقين جديدين",
        "2024-03-02T14:00:00+00:00",
    ),
]


@pytest.fixture
def site():
    with FeedSite() as feed_site:
        yield feed_site


def on(site: FeedSite, entries: list[FeedEntry]) -> list[FeedEntry]:
    """Expected entries with the test server's port filled in (relative links resolve against it)."""
    port = site.base_url.rsplit(":", 1)[1]
    return [FeedEntry(entry.url.format(port=port), entry.title, entry.published_at) for entry in entries]


# --- polling: new entries, conditional GET ---------------------------------------------------


def test_a_feed_that_gains_an_entry_returns_it_on_the_next_poll(site):
    site.put_fixture("/feed.xml", "rss-1.xml")
    first = poll(site.url("/feed.xml"), settings=SETTINGS)
    assert (first.status, first.kind) == (200, "rss")
    assert first.entries == on(site, FIRST_RSS_ENTRIES)
    assert first.etag and first.last_modified is None

    site.put_fixture("/feed.xml", "rss-2.xml")
    second = poll(site.url("/feed.xml"), first.etag, first.last_modified, settings=SETTINGS)
    assert second.status == 200 and second.etag != first.etag
    new = [entry for entry in second.entries if entry not in first.entries]
    assert new == [
        FeedEntry(
            "https://news.example/ar/2024/03/03/maritime-memorandum",  # a permalink guid, no <link>
            "توقيع مذكرة تفاهم للتعاون في مجال الأمن البحري",
            "2024-03-03T16:15:00+00:00",
        )
    ]
    assert [request[2] for request in site.requests_for("/feed.xml")] == [None, first.etag]


def test_an_unchanged_feed_answers_304_to_its_etag(site):
    site.put_fixture("/feed.xml", "rss-1.xml")
    first = poll(site.url("/feed.xml"), settings=SETTINGS)
    again = poll(site.url("/feed.xml"), first.etag, settings=SETTINGS)
    assert (again.status, again.entries, again.child_sitemaps, again.kind) == (304, [], [], None)
    assert again.etag == first.etag  # what to send next time
    assert [(status, sent_etag) for _, status, sent_etag, _ in site.requests_for("/feed.xml")] == [
        (200, None),
        (304, first.etag),
    ]


def test_an_unchanged_feed_without_etag_answers_304_to_its_last_modified(site):
    site.put_fixture("/atom.xml", "atom.xml", "application/atom+xml", etag=False, modified=MARCH)
    first = poll(site.url("/atom.xml"), settings=SETTINGS)
    assert (first.etag, first.last_modified) == (None, "Sat, 02 Mar 2024 10:00:00 GMT")
    assert poll(site.url("/atom.xml"), last_modified=first.last_modified, settings=SETTINGS).status == 304

    site.put_fixture("/atom.xml", "atom.xml", "application/atom+xml", etag=False, modified=APRIL)
    changed = poll(site.url("/atom.xml"), last_modified=first.last_modified, settings=SETTINGS)
    assert changed.status == 200 and changed.last_modified == "Tue, 02 Apr 2024 16:10:00 GMT"
    assert [request[1] for request in site.requests_for("/atom.xml")] == [200, 304, 200]


def test_a_sitemap_index_that_gains_a_child_leads_to_the_new_entries_only(site):
    site.put_fixture("/sitemaps/index.xml", "sitemap-index-1.xml")
    site.put_fixture("/sitemaps/2024-03.xml", "news-sitemap-march.xml")
    index = poll(site.url("/sitemaps/index.xml"), settings=SETTINGS)
    assert index.kind == "sitemap-index" and index.entries == []
    march_url = site.url("/sitemaps/2024-03.xml")
    assert index.child_sitemaps == [ChildSitemap(march_url, "2024-03-02T10:00:00+00:00")]
    march = poll(march_url, settings=SETTINGS)
    assert march.kind == "news-sitemap"
    assert march.entries == [
        FeedEntry(
            "https://agency.example/en/africa/turkish-libyan-naval-talks/1001",
            "Turkish and Libyan naval officers hold talks in Misrata",
            "2024-03-01T06:30:00+00:00",
        ),
        FeedEntry(
            "https://agency.example/en/africa/drone-deliveries/1002",
            "Tripoli confirms schedule of drone deliveries",
            "2024-03-02",
        ),
    ]

    site.put_fixture("/sitemaps/index.xml", "sitemap-index-2.xml")
    site.put_fixture("/sitemaps/2024-04.xml", "news-sitemap-april.xml")
    index_again = poll(site.url("/sitemaps/index.xml"), index.etag, settings=SETTINGS)
    assert index_again.status == 200
    changed = [child for child in index_again.child_sitemaps if child not in index.child_sitemaps]
    assert changed == [ChildSitemap(site.url("/sitemaps/2024-04.xml"), "2024-04-02T16:10:00+00:00")]
    assert poll(march_url, march.etag, settings=SETTINGS).status == 304
    april = poll(changed[0].url, settings=SETTINGS)
    assert [entry.url for entry in april.entries] == ["https://agency.example/en/africa/officer-exchange/1003"]
    assert april.entries[0].published_at == "2024-04-02T16:05:00+00:00"


def test_a_moved_feed_reports_where_it_ended_and_resolves_links_there(site):
    site.put_fixture("/new/feed.xml", "rss-1.xml")
    site.put_status("/old-feed", 301, Location="/new/feed.xml")
    result = poll(site.url("/old-feed"), settings=SETTINGS)
    assert result.final_url == site.url("/new/feed.xml")
    assert result.entries[1].url == site.url("/ar/2024/03/02/coast-guard-boats")


# --- parsing ---------------------------------------------------------------------------------


def test_atom_entries_take_the_alternate_link_and_the_published_time_in_utc():
    parsed = parse((FIXTURES / "atom.xml").read_bytes(), "https://ajans.example/atom.xml")
    assert parsed.kind == "atom"
    assert parsed.entries == [
        FeedEntry(
            "https://ajans.example/dunya/guler-libya-heyeti",
            "Milli Savunma Bakanı Güler, Libya heyetini kabul etti",
            "2024-03-04T08:45:00+00:00",
        ),
        FeedEntry(
            "https://ajans.example/dunya/trablus-tatbikat",
            "Trablus'ta ortak tatbikat hazırlıkları sürüyor",
            "2024-03-03T08:00:00+00:00",
        ),
    ]


def test_a_plain_sitemap_keeps_http_urls_once_with_lastmod_as_the_date():
    parsed = parse((FIXTURES / "sitemap-plain.xml").read_bytes(), "https://daily.example/sitemap.xml")
    assert parsed.kind == "sitemap"
    assert parsed.entries == [
        FeedEntry("https://daily.example/politics/ankara-tripoli-flights-resume", None, "2024-03-05T05:00:00+00:00"),
        FeedEntry("https://daily.example/defense/shipyard-contract", None, "2024-03-06"),
        FeedEntry("https://daily.example/about", None, None),
    ]


def test_a_gzipped_sitemap_is_read_and_a_gzip_bomb_stops_at_the_cap(site):
    site.put("/sitemap.xml.gz", gzip.compress((FIXTURES / "sitemap-plain.xml").read_bytes()), "application/x-gzip")
    assert len(poll(site.url("/sitemap.xml.gz"), settings=SETTINGS).entries) == 3
    bomb = gzip.compress(b"<urlset>" + b" " * 5_000_000 + b"</urlset>")
    with pytest.raises(PageTooLarge, match="inflates to over the cap of 1000000 bytes"):
        parse(bomb, "https://daily.example/sitemap.xml.gz", max_bytes=1_000_000)


def test_a_feed_with_a_stray_ampersand_is_read_with_a_warning():
    parsed = parse((FIXTURES / "broken-feed.xml").read_bytes(), "https://desk.example/rss")
    assert parsed.kind == "rss"
    assert [entry.url for entry in parsed.entries] == ["https://desk.example/news/patrol-boats-drones"]
    assert parsed.warning and parsed.warning.startswith("malformed feed, read as far as possible")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ((FIXTURES / "malformed-sitemap.xml").read_bytes(), "is malformed sitemap XML"),
        (b"this is not XML <<< at all", "is malformed XML"),
        (b"<?xml version='1.0'?><rss version='2.0'><channel><item><title>cut", "malformed XML with no readable entry"),
        ((FIXTURES / "home.html").read_bytes(), "is an HTML page, not RSS, Atom or a sitemap"),
        (b"<?xml version='1.0'?><catalogue><book/></catalogue>", "is an XML document of another kind"),
        (b"  \n ", "answered with an empty body"),
    ],
)
def test_what_is_not_a_feed_or_sitemap_fails_with_the_reason(site, body, reason):
    site.put("/feed", body)
    with pytest.raises(UnsupportedContent, match=reason) as failure:
        poll(site.url("/feed"), settings=SETTINGS)
    assert site.url("/feed") in str(failure.value)
    assert failure.value.reason.startswith("UnsupportedContent: ")


@pytest.mark.parametrize(
    "template",
    [
        '<!DOCTYPE urlset [<!ENTITY secret SYSTEM "{file}">]>'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>https://x.example/&secret;</loc>'
        "<lastmod>2024-03-01</lastmod></url></urlset>",
        '<!DOCTYPE rss [<!ENTITY secret SYSTEM "{file}">]>'
        '<rss version="2.0"><channel><item><title>&secret;</title><link>https://x.example/a</link></item></channel></rss>',
    ],
)
def test_external_entities_are_never_loaded(tmp_path, template):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    body = ('<?xml version="1.0"?>' + template.format(file=secret.as_uri())).encode()
    assert "TOP-SECRET-MARKER" not in repr(parse(body, "https://x.example/source.xml"))


# --- fetching: errors and the SSRF guard -------------------------------------------------------


def test_http_errors_are_the_fetch_stages_errors(site):
    site.put_status("/busy", 503, **{"Retry-After": "30"})
    with pytest.raises(ServerBusy) as busy:
        poll(site.url("/busy"), settings=SETTINGS)
    assert (busy.value.status, busy.value.retry_after) == (503, 30.0)
    with pytest.raises(HTTPStatusError, match="HTTP 404"):
        poll(site.url("/nowhere.xml"), settings=SETTINGS)


def test_loopback_is_refused_unless_allowed_before_any_request(site):
    site.put_fixture("/feed.xml", "rss-1.xml")
    with pytest.raises(ForbiddenAddress, match="loopback"):
        poll(site.url("/feed.xml"), settings=Settings(allow_private_hosts="0"))
    assert site.log == []


def test_fetch_raw_caps_the_body(site):
    site.put("/big.xml", b"<urlset>" + b" " * 50_000 + b"</urlset>")
    with pytest.raises(PageTooLarge):
        fetch_raw(site.url("/big.xml"), settings=Settings(allow_private_hosts="127.0.0.0/8", max_bytes=10_000))


# --- discovery -------------------------------------------------------------------------------


def serve_announcing_site(site: FeedSite) -> None:
    """A site announcing feeds on its home page and sitemaps in robots.txt, some of them dead or disallowed."""
    site.put_fixture("/", "home.html", "text/html; charset=utf-8")
    site.put_fixture("/robots.txt", "robots.txt", "text/plain")
    site.put_fixture("/feeds/latest.xml", "rss-1.xml")
    site.put_fixture("/feeds/atom.xml", "atom.xml")  # announced, but robots.txt disallows it for Mirsad
    site.put_fixture("/comments/feed/", "rss-1.xml")
    site.put_fixture("/sitemaps/news.xml", "news-sitemap-march.xml")
    site.put_fixture("/sitemaps/index.xml", "sitemap-index-1.xml")
    site.put_fixture("/feed", "rss-2.xml")  # a common path: not tried, the site announces a feed


def test_discovery_finds_announced_feeds_and_robots_sitemaps_and_honours_robots(site):
    serve_announcing_site(site)
    found = discover(site.url("/"), settings=SETTINGS)
    assert found == [
        DiscoveredSource(site.url("/feeds/latest.xml"), "rss", "home-page", 2),
        DiscoveredSource(site.url("/sitemaps/news.xml"), "news-sitemap", "robots.txt", 2),
        DiscoveredSource(site.url("/sitemaps/index.xml"), "sitemap", "robots.txt", 1),
    ]
    requested = {path for path, *_ in site.log}
    assert requested == {
        "/robots.txt",
        "/",
        "/feeds/latest.xml",
        "/feeds/gone.xml",
        "/sitemaps/news.xml",
        "/sitemaps/index.xml",
        "/sitemaps/missing.xml",
    }  # never the disallowed or comment feeds


def test_robots_gives_crawl_delay_and_permissions_for_our_user_agent(site):
    serve_announcing_site(site)
    robots = read_robots(site.url("/"), lambda url, headers: fetch_raw(url, headers, SETTINGS))
    assert robots.crawl_delay(SETTINGS.user_agent) == 3.0
    assert not robots.can_fetch(site.url("/feeds/atom.xml"), SETTINGS.user_agent)
    assert robots.can_fetch(site.url("/feeds/atom.xml"), "SomeOtherBot")


def test_sources_commands_discover_add_list_and_remove(site, config_copy, tmp_path):
    """What a user runs: discover a site's sources and follow them, list them, stop following one."""
    serve_announcing_site(site)
    robots = (FIXTURES / "robots.txt").read_text(encoding="utf-8").replace("{base}", site.base_url)
    site.put("/robots.txt", robots.replace("Crawl-delay", "# Crawl-delay"), "text/plain")  # honoured, and slow
    env = {
        "MIRSAD_CONFIG_DIR": str(config_copy),
        "MIRSAD_DATABASE_URL": f"sqlite:///{tmp_path}/mirsad.db",
        "MIRSAD_HOST_INTERVAL": "0.05",
        "COLUMNS": "400",
    }  # table rows on one line each
    feed, news, index = site.url("/feeds/latest.xml"), site.url("/sitemaps/news.xml"), site.url("/sitemaps/index.xml")

    discovered = mirsad("sources", "discover", site.url("/"), "--add", "--every", "120", env=env)
    assert discovered.returncode == 0, discovered.stderr
    assert all(url in discovered.stdout for url in (feed, news, index))
    assert "3 feed(s) or sitemap(s) found" in discovered.stderr and discovered.stderr.count("added ") == 3
    listed = json.loads(mirsad("sources", "list", "--json", env=env).stdout)
    assert {(row["url"], row["every"]) for row in listed} == {(feed, 120), (news, 120), (index, 120)}

    again = mirsad("sources", "add", feed, env=env)
    assert again.returncode == 2 and "already a source" in again.stderr
    removed = mirsad("sources", "remove", feed, env=env)
    assert removed.returncode == 0, removed.stderr
    assert {row["url"] for row in json.loads(mirsad("sources", "list", "--json", env=env).stdout)} == {news, index}
    declared = yaml.safe_load((config_copy / "sources.yaml").read_text(encoding="utf-8"))["sources"]
    assert {entry["url"] for entry in declared} == {news, index}


def test_discover_of_a_bare_name_tries_https_first_then_http(site, config_copy, tmp_path):
    """``mirsad sources discover aa.com.tr`` means https://aa.com.tr; a site that cannot even take a TLS
    connection (this one speaks plain http only) is tried again over http, and the user is told."""
    serve_announcing_site(site)
    robots = (FIXTURES / "robots.txt").read_text(encoding="utf-8").replace("{base}", site.base_url)
    site.put("/robots.txt", robots.replace("Crawl-delay", "# Crawl-delay"), "text/plain")
    env = {
        "MIRSAD_CONFIG_DIR": str(config_copy),
        "MIRSAD_DATABASE_URL": f"sqlite:///{tmp_path}/mirsad.db",
        "MIRSAD_HOST_INTERVAL": "0.05",
        "COLUMNS": "400",
    }
    name = site.base_url.removeprefix("http://")
    discovered = mirsad("sources", "discover", name, env=env)
    assert discovered.returncode == 0, discovered.stderr
    first = next(line for line in discovered.stderr.splitlines() if "did not answer" in line)
    assert first.startswith(f"https://{name} did not answer (") and first.endswith(f"; trying http://{name}"), first
    assert site.url("/feeds/latest.xml") in discovered.stdout and "3 feed(s) or sitemap(s)" in discovered.stderr


def test_discovery_guesses_common_paths_when_nothing_is_announced(site):
    site.put("/", "<!DOCTYPE html><title>Quiet site</title><p>No feeds announced here.</p>", "text/html")
    site.put_fixture("/rss.xml", "rss-2.xml")
    site.put_fixture("/feed.xml", "rss-1.xml")  # after /rss.xml in the list: never reached
    site.put_fixture("/sitemap.xml", "sitemap-plain.xml")
    found = discover(site.url("/"), settings=SETTINGS)
    assert found == [
        DiscoveredSource(site.url("/rss.xml"), "rss", "common-path", 3),
        DiscoveredSource(site.url("/sitemap.xml"), "sitemap", "common-path", 3),
    ]
    assert "/feed.xml" not in {path for path, *_ in site.log}


def test_discovery_stops_when_robots_txt_is_unreachable(site):
    site.put_status("/robots.txt", 503)
    site.put_fixture("/rss.xml", "rss-2.xml")
    with pytest.raises(ServerBusy):
        discover(site.url("/"), settings=SETTINGS)
    assert [path for path, *_ in site.log] == ["/robots.txt"]


def test_discovery_logs_why_a_candidate_was_left_out(site, caplog):
    serve_announcing_site(site)
    with caplog.at_level(logging.INFO, logger="workers.intake.discover"):
        discover(site.url("/"), settings=SETTINGS)
    assert f"{site.url('/sitemaps/missing.xml')} (robots.txt) is not a usable source: HTTPStatusError" in caplog.text
    assert f"robots.txt disallows {site.url('/feeds/atom.xml')}" in caplog.text


# --- the starter list of sources ---------------------------------------------------------------


def test_the_starter_sources_are_complete_and_unverified():
    sources = yaml.safe_load(SOURCES_FILE.read_text(encoding="utf-8"))["sources"]
    assert len(sources) >= 12
    for source in sources:
        assert {"name", "url", "kind", "every", "verified", "language"} <= source.keys(), source
        assert source["url"].startswith("https://"), source
        assert source["kind"] in {"rss", "atom", "sitemap", "news-sitemap"}, source
        assert isinstance(source["every"], int) and source["every"] >= 60, source
        assert source["verified"] is False, source  # nothing could be checked from here
        assert source["language"] in {"ar", "tr", "en"}, source
    assert len({source["url"] for source in sources}) == len(sources)

"""Discovery: the feeds and sitemaps of a site, from its home page and its robots.txt.

Candidates come from where sites announce them: ``<link rel="alternate">`` tags on the home
page and ``Sitemap:`` lines in robots.txt. Common paths (/feed, /rss.xml, /sitemap.xml…) are
guessed only when the site announces nothing of that sort, and the guessing stops at the
first hit. Every candidate is fetched and parsed before it is returned, so the kind is what
the document is rather than what a tag claims, and dead links are left out. robots.txt is
honoured for our own requests (protego, which also reads Crawl-delay for politeness).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from urllib.parse import urljoin, urlsplit

import lxml.html
from protego import Protego

from workers.core.errors import HTTPStatusError, MirsadError
from workers.core.settings import Settings, get_settings
from workers.intake.feeds import FetchFn, poll
from workers.stages.fetch import ACCEPT as HTML_ACCEPT
from workers.stages.fetch import RawResponse, decode_html, fetch_raw

log = logging.getLogger(__name__)

FEED_LINK_TYPES = frozenset({"application/rss+xml", "application/atom+xml"})
COMMON_FEED_PATHS = ("/feed", "/rss", "/rss.xml", "/feed.xml", "/atom.xml", "/index.xml")
COMMON_SITEMAP_PATHS = ("/sitemap.xml", "/news-sitemap.xml", "/sitemap_index.xml")
FEED_KINDS = frozenset({"rss", "atom"})
SITEMAP_KINDS = frozenset({"sitemap", "news-sitemap"})
KIND_OF_PARSED = {
    "rss": "rss",
    "atom": "atom",
    "sitemap": "sitemap",
    "news-sitemap": "news-sitemap",
    "sitemap-index": "sitemap",
}  # an index is polled like a sitemap: it lists its children


@dataclass(frozen=True)
class DiscoveredSource:
    """A working source of a site. ``kind``: rss, atom, sitemap (plain or index) or news-sitemap;
    ``via``: home-page, robots.txt or common-path; ``entries``: how many articles (or, for a sitemap
    index, child sitemaps) it lists now."""

    url: str
    kind: str
    via: str
    entries: int


def discover(
    site_url: str, *, settings: Settings | None = None, fetch_fn: FetchFn | None = None
) -> list[DiscoveredSource]:
    """The feeds and sitemaps of the site at ``site_url``, announced ones first. Raises a
    ``RetryableError`` when robots.txt cannot be read (RFC 9309: then nothing may be crawled)."""
    settings = settings or get_settings()
    fetch_fn = fetch_fn or partial(fetch_raw, settings=settings)
    robots = read_robots(site_url, fetch_fn)
    tried: set[str] = set()
    found: dict[str, DiscoveredSource] = {}  # by final URL: /feed and /feed/ are one source

    def keep(candidates: Iterable[str], via: str, *, stop_at_first: bool = False) -> None:
        for url in candidates:
            if url in tried or not _allowed(robots, settings.user_agent, url):
                continue
            tried.add(url)
            if source := _verify(url, via, settings, fetch_fn):
                found.setdefault(source.url, source)
                if stop_at_first:
                    return

    def found_any(kinds: frozenset[str]) -> bool:
        return any(source.kind in kinds for source in found.values())

    if _allowed(robots, settings.user_agent, site_url):
        keep(_home_page_feeds(site_url, fetch_fn), "home-page")
    keep((urljoin(site_url, line) for line in robots.sitemaps), "robots.txt")
    if not found_any(FEED_KINDS):
        keep((urljoin(site_url, path) for path in COMMON_FEED_PATHS), "common-path", stop_at_first=True)
    if not found_any(SITEMAP_KINDS):
        keep((urljoin(site_url, path) for path in COMMON_SITEMAP_PATHS), "common-path", stop_at_first=True)
    return list(found.values())


def read_robots(site_url: str, fetch_fn: FetchFn) -> Protego:
    """The robots.txt rules of ``site_url``'s host; none (everything allowed) when it answers 4xx.
    Other failures propagate: RFC 9309 says an unreachable robots.txt means "crawl nothing"."""
    robots_url = urljoin(site_url, "/robots.txt")
    try:
        response = fetch_fn(robots_url, {"Accept": "text/plain"})
    except HTTPStatusError as exc:
        log.info("no robots.txt at %s (%s): everything allowed", robots_url, exc)
        return Protego.parse("")
    return Protego.parse(response.body.decode(response.charset or "utf-8", "replace"))


def feed_links(page: RawResponse) -> list[str]:
    """URLs of the RSS and Atom feeds an HTML page announces in ``<link rel="alternate">``,
    without comment feeds (WordPress announces /comments/feed/ beside the articles' feed)."""
    html, _codec = decode_html(page.body, page.charset)
    if not html.strip():
        return []
    document = lxml.html.document_fromstring(html)
    base = urljoin(page.final_url, next(iter(document.xpath("//base/@href")), "").strip())
    links = []
    for link in document.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").split(";")[0].strip().lower()
        href = (link.get("href") or "").strip()
        if "alternate" in rel and kind in FEED_LINK_TYPES and href:
            url = urljoin(base, href)
            if "comments" not in urlsplit(url).path.lower().split("/"):
                links.append(url)
    return list(dict.fromkeys(links))


def _home_page_feeds(site_url: str, fetch_fn: FetchFn) -> list[str]:
    try:
        page = fetch_fn(site_url, {"Accept": HTML_ACCEPT})
    except MirsadError as exc:
        log.info("home page %s unreadable: %s", site_url, exc.reason)
        return []
    if page.media_type not in {"", "text/html", "application/xhtml+xml"}:
        return []
    return feed_links(page)


def _allowed(robots: Protego, user_agent: str, url: str) -> bool:
    if robots.can_fetch(url, user_agent):
        return True
    log.info("robots.txt disallows %s for %s", url, user_agent)
    return False


def _verify(url: str, via: str, settings: Settings, fetch_fn: FetchFn) -> DiscoveredSource | None:
    """The source at ``url`` if it is a readable feed or sitemap, else None (logged)."""
    try:
        result = poll(url, settings=settings, fetch_fn=fetch_fn)
    except MirsadError as exc:
        log.info("%s (%s) is not a usable source: %s", url, via, exc.reason)
        return None
    if result.kind is None:  # 304 Not Modified, to a request that named no cached copy
        log.info("%s (%s) is not a usable source: it answered 304 Not Modified", url, via)
        return None
    return DiscoveredSource(
        result.final_url, KIND_OF_PARSED[result.kind], via, len(result.entries) + len(result.child_sitemaps)
    )

"""Feeds and sitemaps: poll a source with a conditional GET and list the article URLs it announces.

Why it is written this way:

- RSS and Atom are parsed by feedparser: real feeds are full of broken dates, unescaped
  ampersands and odd namespaces, and feedparser has twenty years of tolerance for them. It
  is given the bytes in a stream, never a string, because a string that looks like a URL
  or a file path makes feedparser open it. External entities are not loaded (feedparser
  turns the SAX feature off and drops entity declarations).
- Sitemaps (plain, index and Google News) are parsed by lxml with entities unresolved, no
  DTD and no network: a sitemap is machine-written, so a syntax error is reported rather
  than guessed around.
- Sources are read with the fetch stage's ``fetch_raw``: the same address checks on every hop,
  timeouts and body cap, without the HTML-only rules (feeds are XML and answer 304 to a
  conditional GET), so there is one SSRF guard.
- Nothing here knows which URLs were seen: the caller (the database) filters the entries.
"""

from __future__ import annotations

import io
import re
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from urllib.parse import urljoin, urlsplit

import feedparser
from lxml import etree

from workers.core.errors import PageTooLarge, UnsupportedContent
from workers.core.settings import Settings, get_settings
from workers.stages.fetch import RawResponse, fetch_raw

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, text/html;q=0.5, */*;q=0.1"
)
GZIP_MAGIC = b"\x1f\x8b"
SNIFF_BYTES = 1024
HTML_START = re.compile(
    rb"(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)[\s>]", re.IGNORECASE | re.DOTALL
)
FEED_KINDS = ("rss", "atom")  # feedparser's version names start with these (rss20, rss10, atom10…)


FetchFn = Callable[[str, Mapping[str, str]], RawResponse]
"""``fetch_fn(url, extra_headers) -> RawResponse``: how polling and discovery reach the network
(``fetch_raw`` with settings bound; a politeness layer can wrap it)."""


@dataclass(frozen=True)
class FeedEntry:
    """One announced article. ``title`` and ``published_at`` (ISO 8601, UTC when the source gives a
    time) are hints for the item; a plain sitemap's ``lastmod`` stands in for ``published_at``."""

    url: str
    title: str | None = None
    published_at: str | None = None


@dataclass(frozen=True)
class ChildSitemap:
    """A sitemap listed by a sitemap index; ``lastmod`` lets the caller poll only the children that changed."""

    url: str
    lastmod: str | None = None


@dataclass(frozen=True)
class ParsedSource:
    """What a feed or sitemap document holds. ``kind``: rss, atom, sitemap, news-sitemap or
    sitemap-index. ``warning`` says when a feed was malformed but its entries could be read."""

    kind: str
    entries: list[FeedEntry] = field(default_factory=list)
    child_sitemaps: list[ChildSitemap] = field(default_factory=list)
    warning: str | None = None


@dataclass(frozen=True)
class PollResult:
    """One poll. On 304 ``entries`` and ``child_sitemaps`` are empty and ``kind`` is None; ``etag`` and
    ``last_modified`` are what to send next time (the server's new values, else the ones sent)."""

    status: int
    final_url: str
    etag: str | None
    last_modified: str | None
    kind: str | None = None
    entries: list[FeedEntry] = field(default_factory=list)
    child_sitemaps: list[ChildSitemap] = field(default_factory=list)
    warning: str | None = None


def poll(
    source_url: str,
    etag: str | None = None,
    last_modified: str | None = None,
    *,
    settings: Settings | None = None,
    fetch_fn: FetchFn | None = None,
) -> PollResult:
    """Conditional GET of a feed or sitemap, then its entries; raises a ``MirsadError`` on failure
    (``UnsupportedContent`` when the body is neither a feed nor a sitemap)."""
    settings = settings or get_settings()
    fetch_fn = fetch_fn or partial(fetch_raw, settings=settings)
    conditions = {
        name: value for name, value in (("If-None-Match", etag), ("If-Modified-Since", last_modified)) if value
    }
    response = fetch_fn(source_url, {"Accept": FEED_ACCEPT, **conditions})
    new_etag = response.headers.get("etag") or etag
    new_last_modified = response.headers.get("last-modified") or last_modified
    if response.status == 304:
        return PollResult(304, response.final_url, new_etag, new_last_modified)
    parsed = parse(
        response.body,
        response.final_url,
        max_bytes=settings.max_bytes,
        content_type=response.headers.get("content-type"),
    )
    return PollResult(
        response.status,
        response.final_url,
        new_etag,
        new_last_modified,
        parsed.kind,
        parsed.entries,
        parsed.child_sitemaps,
        parsed.warning,
    )


def parse(
    body: bytes, base_url: str, *, max_bytes: int = Settings.max_bytes, content_type: str | None = None
) -> ParsedSource:
    """Entries of a feed or sitemap (gzipped or not), relative links resolved against ``base_url``."""
    body = _gunzip(body, max_bytes) if body.startswith(GZIP_MAGIC) else body
    if not body.strip():
        raise UnsupportedContent(f"{base_url} answered with an empty body, not a feed or sitemap")
    root = _root_name(body)
    if root in {"urlset", "sitemapindex"}:
        return parse_sitemap(body, base_url)
    return parse_feed(body, base_url, content_type)


def parse_feed(body: bytes, base_url: str, content_type: str | None = None) -> ParsedSource:
    """Entries of an RSS or Atom feed; a malformed feed is read as far as it can be, with a warning."""
    headers = {"content-location": base_url, **({"content-type": content_type} if content_type else {})}
    document = feedparser.parse(io.BytesIO(body), response_headers=headers)
    problem = document.get("bozo_exception") if document.get("bozo") else None
    kind = next((name for name in FEED_KINDS if document.version.startswith(name)), None)
    if kind is None:
        what = (
            "an HTML page"
            if HTML_START.match(body, 0, SNIFF_BYTES)
            else f"malformed XML ({problem})"
            if problem
            else "an XML document of another kind"
        )
        raise UnsupportedContent(f"{base_url} is {what}, not RSS, Atom or a sitemap")
    entries = _unique(
        FeedEntry(url, _text(entry.get("title")), _struct_time(_entry_time(entry)))
        for entry in document.entries
        if (url := _entry_url(entry, base_url))
    )
    warning = f"malformed feed, read as far as possible: {problem}" if problem else None
    if problem and not entries:
        raise UnsupportedContent(f"{base_url} is malformed XML with no readable entry ({problem})")
    return ParsedSource(kind, entries, warning=warning)


def parse_sitemap(body: bytes, base_url: str) -> ParsedSource:
    """Entries of a sitemap or Google News sitemap, or the children of a sitemap index."""
    try:
        root = etree.fromstring(body, _safe_parser(), base_url=base_url)
    except etree.XMLSyntaxError as exc:
        raise UnsupportedContent(f"{base_url} is malformed sitemap XML ({exc})") from exc
    if _local(root) == "sitemapindex":
        children = [
            ChildSitemap(url, _w3c_date(_child_text(node, "lastmod")))
            for node in root
            if _local(node) == "sitemap" and (url := _absolute(_child_text(node, "loc"), base_url))
        ]
        return ParsedSource("sitemap-index", child_sitemaps=list(dict.fromkeys(children)))
    entries, is_news = [], False
    for node in root:
        if _local(node) != "url" or not (url := _absolute(_child_text(node, "loc"), base_url)):
            continue
        news = next((child for child in node if _local(child) == "news"), None)
        if news is not None:
            is_news = True
            entries.append(
                FeedEntry(url, _text(_child_text(news, "title")), _w3c_date(_child_text(news, "publication_date")))
            )
        else:
            entries.append(FeedEntry(url, None, _w3c_date(_child_text(node, "lastmod"))))
    return ParsedSource("news-sitemap" if is_news else "sitemap", _unique(entries))


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    """A gzipped sitemap (sitemap.xml.gz served as a file), inflated no further than ``max_bytes``."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise UnsupportedContent(f"broken gzip data ({exc})") from exc
    if len(data) > max_bytes:
        raise PageTooLarge(f"gzipped document inflates to over the cap of {max_bytes} bytes")
    return data


def _safe_parser() -> etree.XMLParser:
    """A parser per call (lxml parsers are not shared between threads) that never expands
    entities, loads a DTD or touches the network."""
    return etree.XMLParser(
        resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False, remove_comments=True, remove_pis=True
    )


def _root_name(body: bytes) -> str | None:
    """Local name of the document element, read without parsing the rest; None if unreadable."""
    try:
        for _event, element in etree.iterparse(
            io.BytesIO(body), events=("start",), resolve_entities=False, load_dtd=False, no_network=True, recover=False
        ):
            return _local(element).lower()
    except etree.XMLSyntaxError:
        return None
    return None


def _local(element: etree._Element) -> str:
    """Local name without namespace: sitemaps in the wild use several namespace URIs, or none."""
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _child_text(element: etree._Element, name: str) -> str | None:
    return next((child.text for child in element if _local(child) == name), None)


def _absolute(url: str | None, base_url: str) -> str | None:
    """``url`` resolved against the document's URL, or None unless it is an http(s) URL."""
    if not url or not url.strip():
        return None
    absolute = urljoin(base_url, url.strip())
    return absolute if urlsplit(absolute).scheme in {"http", "https"} else None


def _entry_url(entry: Mapping, base_url: str) -> str | None:
    """The article's link; an RSS guid stands in when it is a permalink and there is no link."""
    return _absolute(entry.get("link"), base_url) or (
        _absolute(entry.get("id"), base_url) if str(entry.get("id", "")).startswith(("http://", "https://")) else None
    )


def _entry_time(entry: Mapping) -> time.struct_time | None:
    return entry.get("published_parsed") or entry.get("updated_parsed")


def _struct_time(value: time.struct_time | None) -> str | None:
    """feedparser's UTC struct_time as ISO 8601."""
    if not value:
        return None
    return datetime(*value[:6], tzinfo=UTC).isoformat(timespec="seconds")


def _w3c_date(value: str | None) -> str | None:
    """A sitemap date (W3C datetime) as ISO 8601: in UTC when it has a time, the bare date when it has
    none; None when unreadable, since dates are only hints."""
    if not value or not (value := value.strip()):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if len(value) <= len("YYYY-MM-DD"):
        return when.date().isoformat()
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.isoformat(timespec="seconds")


def _text(value: str | None) -> str | None:
    """A title with its whitespace collapsed, or None when empty."""
    collapsed = " ".join((value or "").split())
    return collapsed or None


def _unique(entries: Iterable[FeedEntry]) -> list[FeedEntry]:
    """Entries in document order, the first of several with the same URL kept."""
    by_url: dict[str, FeedEntry] = {}
    for entry in entries:
        by_url.setdefault(entry.url, entry)
    return list(by_url.values())

"""Sources: the feeds and sitemaps Mirsad follows, polled when due, their never-seen entries pushed.

``config/sources.yaml`` is the declaration users edit (by hand or with ``mirsad sources add`` /
``remove``); the ``sources`` table is the state of each source (validators for the conditional
GET, the child sitemaps already read, when it last answered and last gave something new). Beat
syncs the file into the table on every round, so the file always wins.

A poll runs on the fetch queue through the polite request path (robots.txt, the host's turn).
The seen-set is the ``urls`` table, keyed by the canonical URL's hash: an entry is pushed only
when its hash is not there. Each pushed entry's title and date are kept in ``source_entries``
as hints: the clean stage falls back to them when the page has none (``apply_hints``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy import ForeignKey, Integer, String, Text, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from . import feeds
from .config_edit import insert_entry, replace_atomically
from .db import Base, JSONType, UrlRecord, UTCDateTime, insert_unless_exists, session_scope, utcnow
from .document import Document
from .errors import HostNotReady, InvalidURL, MirsadError
from .feeds import FeedEntry, FetchFn
from .politeness import LONGEST_TURN_WAIT, polite_fetch_fn
from .settings import Settings, get_settings
from .urls import canonicalize, url_hash

log = logging.getLogger("mirsad.sources")

SOURCES_FILE = "sources.yaml"
DEFAULT_EVERY = 900  # seconds between polls when a source does not say
QUIET_AFTER_MIN = timedelta(hours=24)  # a source is "quiet" after max(this, QUIET_AFTER_POLLS × every) with nothing new
QUIET_AFTER_POLLS = 10
FAILING_BACKOFF_MAX = timedelta(hours=6)  # a failing source is polled less often, down to this (or its every)
SEEN_CHECK_CHUNK = 500


class Source(Base):
    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str | None] = mapped_column(Text)
    every: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str | None] = mapped_column(String(16))  # rss, atom, sitemap, news-sitemap, sitemap-index
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    children: Mapped[dict] = mapped_column(JSONType, default=dict)  # sitemap index: child URL → what was read
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_new_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive failed polls
    entries_seen: Mapped[int] = mapped_column(Integer, default=0)  # new URLs pushed, in all
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SourceEntry(Base):
    """The hints a source gave with a URL it announced (title, date), kept for the URL's item."""

    __tablename__ = "source_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url_hash: Mapped[str] = mapped_column(String(64), unique=True)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    title: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[str | None] = mapped_column(String(40))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# -- the declaration: config/sources.yaml --------------------------------------------------------------------

@dataclass(frozen=True)
class Declared:
    """One entry of ``sources.yaml``: the feed or sitemap URL, its poll interval and an optional name."""

    url: str
    every: int = DEFAULT_EVERY
    name: str | None = None


def read_declared(config_dir: Path | str) -> list[Declared]:
    """Every source ``sources.yaml`` declares (none when the file is absent); ValueError names a bad entry."""
    path = Path(config_dir) / SOURCES_FILE
    if not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not valid YAML: {exc}") from exc
    declared: dict[str, Declared] = {}
    for number, entry in enumerate(data.get("sources") or [], 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise ValueError(f"{path}: source #{number} needs a url")
        every = entry.get("every", DEFAULT_EVERY)
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"{path}: {entry['url']}: every must be a whole number of seconds ≥ 1, not {every!r}")
        url = entry["url"].strip()
        try:
            canonicalize(url)
        except InvalidURL as exc:
            raise ValueError(f"{path}: source {url!r}: {exc}") from exc
        declared.setdefault(url, Declared(url, every, entry.get("name")))
    return list(declared.values())


def add_to_file(config_dir: Path | str, url: str, every: int = DEFAULT_EVERY) -> Path:
    """Append ``url`` to ``sources.yaml`` (comments and layout kept, replaced atomically); ValueError if listed."""
    url = url.strip()
    canonicalize(url)
    if every < 1:
        raise ValueError("every must be at least 1 second")
    if any(source.url == url for source in read_declared(config_dir)):
        raise ValueError(f"{url} is already a source")
    path = Path(config_dir) / SOURCES_FILE
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    updated = insert_entry(text, "sources", [f"  - url: {json.dumps(url)}", f"    every: {every}"])
    _replace_checked(path, updated, lambda urls: url in urls)
    return path


def remove_from_file(config_dir: Path | str, url: str) -> Path:
    """Delete ``url``'s entry from ``sources.yaml`` (other lines untouched); ValueError if not listed."""
    url = url.strip()
    path = Path(config_dir) / SOURCES_FILE
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    lines = text.splitlines()
    node = _entry_node(text, url)
    if node is None:
        raise ValueError(f"{url} is not a source in {path}")
    first, end = node.start_mark.line, node.end_mark.line
    if end < len(lines) and lines[end][:node.end_mark.column].strip(" -"):
        end += 1  # the entry ends inside its last line (a flow mapping, or the file's end without a newline)
    while end > first + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1  # blank lines and comments before the next entry belong to it
    updated = "\n".join(lines[:first] + lines[end:]) + "\n"
    _replace_checked(path, updated, lambda urls: url not in urls)
    return path


def _entry_node(text: str, url: str) -> yaml.MappingNode | None:
    root = yaml.compose(text) if text.strip() else None
    if not isinstance(root, yaml.MappingNode):
        return None
    listed = next((value for key, value in root.value if key.value == "sources"), None)
    if not isinstance(listed, yaml.SequenceNode):
        return None
    for item in listed.value:
        if isinstance(item, yaml.MappingNode) and any(
                key.value == "url" and str(value.value).strip() == url for key, value in item.value):
            return item
    return None


def _replace_checked(path: Path, text: str, holds: Callable[[set[str]], bool]) -> None:
    """Write ``text`` over ``path`` only if it still parses and ``holds`` for its URLs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    parsed = yaml.safe_load(text) or {}
    urls = {str(entry.get("url", "")).strip() for entry in parsed.get("sources") or [] if isinstance(entry, dict)}
    if not holds(urls):
        raise ValueError(f"{path} could not be edited as asked; it is unchanged")
    replace_atomically(path, text)


# -- the table: sync, due, record ----------------------------------------------------------------------------

def sync(session: Session, declared: Iterable[Declared]) -> tuple[int, int]:
    """Make the table hold exactly the declared sources (state of the kept ones untouched); (added, removed)."""
    wanted = {source.url: source for source in declared}
    rows = {row.url: row for row in session.scalars(select(Source))}
    for url in rows.keys() - wanted.keys():
        session.delete(rows[url])
    for url, source in wanted.items():
        row = rows.get(url)
        if row is None:
            session.add(Source(url=url, name=source.name, every=source.every, children={}))
        elif (row.every, row.name) != (source.every, source.name):
            row.every, row.name = source.every, source.name
            row.next_poll_at = None  # a new interval applies from now
    session.flush()
    return len(wanted.keys() - rows.keys()), len(rows.keys() - wanted.keys())


def sync_from_config(session: Session, config_dir: Path | str) -> tuple[int, int]:
    return sync(session, read_declared(config_dir))


def claim_due(session: Session, now: datetime) -> list[int]:
    """Ids of the sources due at ``now``, each moved to its next poll time so no other beat round or
    poller takes it again (a lost poll message only delays that source by one interval)."""
    due = session.execute(select(Source.id, Source.every)
                          .where(or_(Source.next_poll_at.is_(None), Source.next_poll_at <= now))).all()
    claimed = []
    for source_id, every in due:
        moved = session.execute(update(Source).where(Source.id == source_id, or_(
            Source.next_poll_at.is_(None), Source.next_poll_at <= now)).values(
            next_poll_at=now + timedelta(seconds=every)))
        if moved.rowcount == 1:
            claimed.append(source_id)
    return claimed


def flag(source: Source, now: datetime) -> str | None:
    """Why ``source`` needs a look ("failing …", "quiet …"), or None when it is healthy."""
    if source.failures:
        return f"failing ({source.failures}× in a row): {source.last_error}"
    quiet_after = max(QUIET_AFTER_MIN, timedelta(seconds=QUIET_AFTER_POLLS * source.every))
    since = source.last_new_at or source.created_at
    if since and now - since > quiet_after:
        return f"quiet: nothing new for {_duration(now - since)} (expected within {_duration(quiet_after)})"
    return None


def describe(source: Source, now: datetime) -> dict:
    """The JSON form of a source (``mirsad sources list --json``)."""
    stamp = lambda moment: moment.isoformat(timespec="seconds") if moment else None  # noqa: E731
    return {"url": source.url, "name": source.name, "kind": source.kind, "every": source.every,
            "last_polled_at": stamp(source.last_polled_at), "last_success_at": stamp(source.last_success_at),
            "last_new_at": stamp(source.last_new_at), "next_poll_at": stamp(source.next_poll_at),
            "entries_seen": source.entries_seen, "failures": source.failures, "last_error": source.last_error,
            "flag": flag(source, now)}


def listing(session: Session) -> list[Source]:
    return list(session.scalars(select(Source).order_by(Source.url)))


def _duration(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h" if hours >= 1 else f"{span.seconds // 60} min"


# -- polling -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Harvest:
    """What one poll read. When a busy host (``retry_in``) or a failing child sitemap (``error``) cut it
    short, the source's own validators are kept, so the next poll reads the index again."""

    kind: str | None
    entries: list[FeedEntry]
    etag: str | None
    last_modified: str | None
    children: dict
    retry_in: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class PollReport:
    """One poll of one source: ``pushed`` new URLs; ``retry_in`` seconds when its host was busy."""

    source_id: int
    pushed: list[str] = field(default_factory=list)
    retry_in: float | None = None
    error: str | None = None


def poll_source(source_id: int, *, settings: Settings | None = None, database_url: str | None = None,
                fetch_fn: FetchFn | None = None) -> PollReport:
    """Poll one source (conditional GET; a sitemap index's changed children), push its never-seen
    entries with their hints and record the poll. No transaction is open while the network is used."""
    settings = settings or get_settings()
    with session_scope(database_url) as session:
        source = session.get(Source, source_id)
        if source is None:
            return PollReport(source_id)  # removed from the file since it was claimed
        url, etag, last_modified, children = source.url, source.etag, source.last_modified, dict(source.children or {})
    try:
        harvest = harvest_source(url, etag, last_modified, children, settings,
                                 fetch_fn or polite_fetch_fn(settings),
                                 fetch_fn or polite_fetch_fn(settings, wait_up_to=LONGEST_TURN_WAIT))
    except HostNotReady as exc:
        return PollReport(source_id, retry_in=exc.retry_after)
    except MirsadError as exc:
        with session_scope(database_url) as session:
            record_failure(session, source_id, exc.reason, utcnow())
        log.warning("source %s failed: %s", url, exc.reason)
        return PollReport(source_id, error=exc.reason)
    pushed = push_new(source_id, harvest.entries, database_url)
    with session_scope(database_url) as session:
        record_harvest(session, source_id, harvest, len(pushed), utcnow())
    log.info("source %s: %d entries, %d new", url, len(harvest.entries), len(pushed))
    return PollReport(source_id, pushed, harvest.retry_in, harvest.error)


def harvest_source(url: str, etag: str | None, last_modified: str | None, children: dict, settings: Settings,
                   fetch_fn: FetchFn, child_fetch_fn: FetchFn) -> Harvest:
    """The entries of a feed or sitemap; of a sitemap index, those of each child whose lastmod changed
    (or that has none), each read with its own conditional GET. HostNotReady from ``fetch_fn`` (the
    source itself) propagates: the poll comes back when the host is free. Children are read with
    ``child_fetch_fn``, which waits for the host's turns (else the index, read again on every
    return, would take each turn a child needs); should it still give up, the harvest stops there
    and says when to come back."""
    result = feeds.poll(url, etag, last_modified, settings=settings, fetch_fn=fetch_fn)
    if result.status == 304:
        return Harvest(None, [], result.etag, result.last_modified, children)
    entries, read, retry_in, error = list(result.entries), {}, None, None
    for child in result.child_sitemaps:
        known = children.get(child.url) or {}
        if child.lastmod and known.get("lastmod") == child.lastmod:
            read[child.url] = known
            continue
        try:
            child_result = feeds.poll(child.url, known.get("etag"), known.get("last_modified"), settings=settings,
                                      fetch_fn=child_fetch_fn)
        except HostNotReady as exc:
            retry_in = exc.retry_after
            break
        except MirsadError as exc:
            error = f"child sitemap {child.url}: {exc.reason}"
            break
        entries += child_result.entries
        read[child.url] = {"lastmod": child.lastmod, "etag": child_result.etag,
                           "last_modified": child_result.last_modified}
    listed = {child.url for child in result.child_sitemaps}
    kept = {child_url: state for child_url, state in children.items() if child_url in listed and child_url not in read}
    finished = retry_in is None and error is None
    return Harvest(result.kind, entries, result.etag if finished else etag,
                   result.last_modified if finished else last_modified, kept | read, retry_in, error)


def push_new(source_id: int, entries: list[FeedEntry], database_url: str | None = None) -> list[str]:
    """Push the entries whose canonical URL was never seen, their hints recorded first (so the clean
    stage finds them however fast the fetch is); the URLs accepted."""
    from .intake import push

    fresh: dict[str, FeedEntry] = {}
    for entry in entries:
        try:
            fresh.setdefault(url_hash(canonicalize(entry.url)), entry)
        except InvalidURL as exc:
            log.info("source #%s announces an unusable URL %r: %s", source_id, entry.url, exc)
    hashes = list(fresh)
    with session_scope(database_url) as session:
        for start in range(0, len(hashes), SEEN_CHECK_CHUNK):
            chunk = hashes[start:start + SEEN_CHECK_CHUNK]
            for seen in session.scalars(select(UrlRecord.url_hash).where(UrlRecord.url_hash.in_(chunk))):
                del fresh[seen]
        for key, entry in fresh.items():
            insert_unless_exists(session, SourceEntry, "url_hash", url_hash=key, source_id=source_id,
                                 title=entry.title, published_at=entry.published_at, seen_at=utcnow())
    return [result.url for result in push((entry.url for entry in fresh.values()), database_url)
            if result.outcome == "accepted"]


def record_harvest(session: Session, source_id: int, harvest: Harvest, new: int, now: datetime) -> None:
    """Save what a poll read; a child sitemap's failure counts as the source's."""
    source = session.get(Source, source_id)
    if source is None:
        return
    source.last_polled_at = now
    source.kind = harvest.kind or source.kind
    source.etag, source.last_modified, source.children = harvest.etag, harvest.last_modified, harvest.children
    source.entries_seen += new
    if new:
        source.last_new_at = now
    if harvest.error:
        record_failure(session, source_id, harvest.error, now)
    else:
        source.last_success_at, source.failures, source.last_error = now, 0, None
    if harvest.retry_in is not None:
        source.next_poll_at = now  # the rest of the index is read when the host is free again


def record_failure(session: Session, source_id: int, reason: str, now: datetime) -> None:
    """Count a failed poll and put the next one further off (doubling, up to FAILING_BACKOFF_MAX or every)."""
    source = session.get(Source, source_id)
    if source is None:
        return
    source.last_polled_at, source.last_error = now, reason
    source.failures += 1
    delay = timedelta(seconds=source.every * 2 ** min(source.failures - 1, 16))
    source.next_poll_at = now + min(delay, max(FAILING_BACKOFF_MAX, timedelta(seconds=source.every)))


# -- hints for the item --------------------------------------------------------------------------------------

def apply_hints(document: Document, url_hash_: str, database_url: str | None = None) -> Document:
    """``document`` with the title and date its source announced where the page gave none."""
    if document.title and document.published_at:
        return document
    with session_scope(database_url, durable=False) as session:
        hint = session.scalar(select(SourceEntry).where(SourceEntry.url_hash == url_hash_))
    if hint is None:
        return document
    return document.replace(title=document.title or hint.title,
                            published_at=document.published_at or hint.published_at)


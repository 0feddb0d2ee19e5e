"""Polling a source: read it politely, push its never-seen entries with their hints, record the poll.

The seen-set is the ``urls`` table, keyed by the canonical URL's hash: an entry is pushed only
when its hash is not there. No transaction is open while the network is used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select

from workers.core.errors import HostNotReady, InvalidURL, MirsadError
from workers.core.settings import Settings, get_settings
from workers.core.topology import PushVerdict
from workers.core.urls import canonicalize, url_hash
from workers.intake.feeds import FeedEntry, FetchFn
from workers.intake.harvest import harvest_source
from workers.intake.politeness import LONGEST_TURN_WAIT, polite_fetch_fn
from workers.runtime.push import push
from workers.storage.db import insert_unless_exists, session_scope
from workers.storage.models import Source, SourceEntry, UrlRecord, utcnow
from workers.storage.sources import record_failure, record_harvest

log = logging.getLogger("mirsad.sources")

SEEN_CHECK_CHUNK = 500


@dataclass(frozen=True)
class PollReport:
    """One poll of one source: ``pushed`` new URLs; ``retry_in`` seconds when its host was busy."""

    source_id: int
    pushed: list[str] = field(default_factory=list)
    retry_in: float | None = None
    error: str | None = None


def poll_source(
    source_id: int,
    *,
    settings: Settings | None = None,
    database_url: str | None = None,
    fetch_fn: FetchFn | None = None,
) -> PollReport:
    """Poll one source (conditional GET; a sitemap index's changed children), push its never-seen
    entries with their hints and record the poll. No transaction is open while the network is used."""
    settings = settings or get_settings()
    with session_scope(database_url) as session:
        source = session.get(Source, source_id)
        if source is None:
            return PollReport(source_id)  # removed from the file since it was claimed
        url, etag, last_modified, children = source.url, source.etag, source.last_modified, dict(source.children or {})
    try:
        harvest = harvest_source(
            url,
            etag,
            last_modified,
            children,
            settings,
            fetch_fn or polite_fetch_fn(settings),
            fetch_fn or polite_fetch_fn(settings, wait_up_to=LONGEST_TURN_WAIT),
        )
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
    if harvest.warning:
        log.warning("source %s: %s", url, harvest.warning)
    log.info("source %s: %d entries, %d new", url, len(harvest.entries), len(pushed))
    return PollReport(source_id, pushed, harvest.retry_in, harvest.error)


def push_new(source_id: int, entries: list[FeedEntry], database_url: str | None = None) -> list[str]:
    """Push the entries whose canonical URL was never seen, their hints recorded first (so the clean
    stage finds them however fast the fetch is); the URLs accepted."""
    fresh: dict[str, FeedEntry] = {}
    for entry in entries:
        try:
            fresh.setdefault(url_hash(canonicalize(entry.url)), entry)
        except InvalidURL as exc:
            log.info("source #%s announces an unusable URL %r: %s", source_id, entry.url, exc)
    hashes = list(fresh)
    with session_scope(database_url) as session:
        for start in range(0, len(hashes), SEEN_CHECK_CHUNK):
            chunk = hashes[start : start + SEEN_CHECK_CHUNK]
            for seen in session.scalars(select(UrlRecord.url_hash).where(UrlRecord.url_hash.in_(chunk))):
                del fresh[seen]
        for key, entry in fresh.items():
            insert_unless_exists(
                session,
                SourceEntry,
                "url_hash",
                url_hash=key,
                source_id=source_id,
                title=entry.title,
                published_at=entry.published_at,
                seen_at=utcnow(),
            )
    return [
        result.url
        for result in push((entry.url for entry in fresh.values()), database_url)
        if result.outcome == PushVerdict.ACCEPTED
    ]

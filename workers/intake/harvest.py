"""Reading a source: a feed's or sitemap's entries, and a sitemap index's changed children.

No database: the caller passes the validators and children it knows and saves what comes back.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.core.errors import HostNotReady, MirsadError
from workers.core.settings import Settings
from workers.intake import feeds
from workers.intake.feeds import FeedEntry, FetchFn


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
    warning: str | None = None  # the feed was malformed but its entries could be read


def harvest_source(
    url: str,
    etag: str | None,
    last_modified: str | None,
    children: dict,
    settings: Settings,
    fetch_fn: FetchFn,
    child_fetch_fn: FetchFn,
) -> Harvest:
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
            child_result = feeds.poll(
                child.url, known.get("etag"), known.get("last_modified"), settings=settings, fetch_fn=child_fetch_fn
            )
        except HostNotReady as exc:
            retry_in = exc.retry_after
            break
        except MirsadError as exc:
            error = f"child sitemap {child.url}: {exc.reason}"
            break
        entries += child_result.entries
        read[child.url] = {
            "lastmod": child.lastmod,
            "etag": child_result.etag,
            "last_modified": child_result.last_modified,
        }
    listed = {child.url for child in result.child_sitemaps}
    kept = {child_url: state for child_url, state in children.items() if child_url in listed and child_url not in read}
    finished = retry_in is None and error is None
    return Harvest(
        result.kind,
        entries,
        result.etag if finished else etag,
        result.last_modified if finished else last_modified,
        kept | read,
        retry_in,
        error,
        result.warning,
    )

"""Sources: the feeds and sitemaps Mirsad follows, their declaration, their state and their hints.

``config/sources.yaml`` is the declaration users edit (by hand or with ``mirsad sources add`` /
``remove``); the ``sources`` table is the state of each source (validators for the conditional
GET, the child sitemaps already read, when it last answered and last gave something new). Beat
syncs the file into the table on every round, so the file always wins.

A poll (``runtime.polling``) runs on the fetch queue through the polite request path. Each pushed
entry's title and date are kept in ``source_entries`` as hints: the clean stage falls back to them
when the page has none (``apply_hints``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from workers.core.config_edit import insert_entry, replace_atomically
from workers.core.document import Document
from workers.core.errors import InvalidURL
from workers.core.urls import canonicalize
from workers.intake.harvest import Harvest
from workers.storage.db import rowcount, session_scope
from workers.storage.models import Source, SourceEntry

log = logging.getLogger("mirsad.sources")

SOURCES_FILE = "sources.yaml"
DEFAULT_EVERY = 900  # seconds between polls when a source does not say
QUIET_AFTER_MIN = timedelta(hours=24)  # a source is "quiet" after max(this, QUIET_AFTER_POLLS × every) with nothing new
QUIET_AFTER_POLLS = 10
FAILING_BACKOFF_MAX = timedelta(hours=6)  # a failing source is polled less often, down to this (or its every)


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
    if end < len(lines) and lines[end][: node.end_mark.column].strip(" -"):
        end += 1  # the entry ends inside its last line (a flow mapping, or the file's end without a newline)
    while end > first + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1  # blank lines and comments before the next entry belong to it
    updated = "\n".join(lines[:first] + lines[end:]) + "\n"
    if (yaml.safe_load(updated) or {}).get("sources") is None:  # the last one gone: an empty list, not a null
        updated = re.sub(r"^sources:[ \t]*$", "sources: []", updated, count=1, flags=re.M)
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
            key.value == "url" and str(value.value).strip() == url for key, value in item.value
        ):
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
    due = session.execute(
        select(Source.id, Source.every).where(or_(Source.next_poll_at.is_(None), Source.next_poll_at <= now))
    ).all()
    claimed = []
    for source_id, every in due:
        moved = session.execute(
            update(Source)
            .where(Source.id == source_id, or_(Source.next_poll_at.is_(None), Source.next_poll_at <= now))
            .values(next_poll_at=now + timedelta(seconds=every))
        )
        if rowcount(moved) == 1:
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

    def stamp(moment: datetime | None) -> str | None:
        return moment.isoformat(timespec="seconds") if moment else None

    return {
        "url": source.url,
        "name": source.name,
        "kind": source.kind,
        "every": source.every,
        "last_polled_at": stamp(source.last_polled_at),
        "last_success_at": stamp(source.last_success_at),
        "last_new_at": stamp(source.last_new_at),
        "next_poll_at": stamp(source.next_poll_at),
        "entries_seen": source.entries_seen,
        "failures": source.failures,
        "last_error": source.last_error,
        "flag": flag(source, now),
    }


def listing(session: Session) -> list[Source]:
    return list(session.scalars(select(Source).order_by(Source.url)))


def flagged(session: Session, now: datetime) -> list[dict]:
    """The sources that need a look (failing or quiet), each with why."""
    return [{"url": source.url, "flag": reason} for source in listing(session) if (reason := flag(source, now))]


def _duration(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h" if hours >= 1 else f"{span.seconds // 60} min"


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
    return document.replace(title=document.title or hint.title, published_at=document.published_at or hint.published_at)

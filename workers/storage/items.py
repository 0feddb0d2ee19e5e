"""Listing stored items with filters, full-text search and cursor pagination (the API's and the CLI's).

Every listing is a page plus a cursor for the next one. Sorting by date uses a keyset cursor (the
date and id of the last item), so paging through 100,000 items costs the same at the end as at the
start; sorting by relevance uses an offset (a rank is not a stable key as items arrive). Exports
walk the same filters by id in batches, each in its own short transaction, in constant memory.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from sqlalchemy import Select, and_, case, exists, func, or_, select
from sqlalchemy.orm import Session, selectinload

from workers.core.errors import MirsadError
from workers.core.urls import site_of
from workers.storage.db import session_scope
from workers.storage.models import Item, ItemSearch, TagRecord
from workers.storage.search import Highlighter, compile_text
from workers.storage.store import list_stories
from workers.text.query import FIELDS, Query

EntityKind = Literal["country", "place", "topic", "person", "org"]
ENTITY_KINDS: tuple[str, ...] = get_args(EntityKind)
TAG_KINDS = (*ENTITY_KINDS, "language")
SORTS = ("relevance", "date")
EXPORT_BATCH = 1000


class InvalidFilter(MirsadError):
    """A filter or cursor that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class ItemFilter:
    """What to list: a parsed query (words and field filters) plus the listing's own filters."""

    query: Query = field(default_factory=Query)
    tags: tuple[tuple[str, str], ...] = ()
    language: str | None = None
    site: str | None = None
    story: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    ids: tuple[int, ...] = ()  # only these items (does a new arrival belong to a listing?)

    def merged(self) -> ItemFilter:
        """The query's field filters folded into the listing's (``lang:ar`` is ``language=ar``)."""
        filters = self.query.filters
        tags = list(self.tags) + [
            (kind, value) for key, values in filters.items() if (kind := FIELDS[key]) for value in values
        ]
        return ItemFilter(
            self.query,
            tuple(_normal_tag(kind, value) for kind, value in tags),
            self.language,
            self.site,
            self.story,
            self.since,
            self.until,
            self.ids,
        )


@dataclass(frozen=True)
class Page:
    items: list[Item]
    next_cursor: str | None
    snippets: dict[int, str]


def parse_tag(spec: str) -> tuple[str, str]:
    """``KIND:VALUE`` → (kind, value); InvalidFilter for a missing colon or an unknown kind."""
    kind, sep, value = spec.partition(":")
    if not sep or not value.strip():
        raise InvalidFilter(f"tag wants KIND:VALUE, got {spec!r}")
    if kind not in TAG_KINDS:
        raise InvalidFilter(f"unknown tag kind {kind!r} (known: {', '.join(TAG_KINDS)})")
    return _normal_tag(kind, value.strip())


def stored_spelling(session: Session, kind: str, value: str) -> str:
    """The spelling ``value`` is stored with as a ``kind`` tag, matched in any case (``person:hulusi akar``
    finds ``Hulusi Akar``); ``value`` itself when none matches. Case-folded in Python, since SQLite's
    ``lower()`` leaves non-ASCII letters (Ğ, İ) as they are."""
    wanted = value.casefold()
    for stored in session.scalars(select(TagRecord.value).where(TagRecord.kind == kind).distinct()):
        if stored.casefold() == wanted:
            return stored
    return value


def _normal_tag(kind: str, value: str) -> tuple[str, str]:
    return (kind, value.upper()) if kind == "country" else (kind, value)


def list_items(
    session: Session,
    wanted: ItemFilter,
    sort: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    with_snippets: bool = False,
) -> Page:
    """One page of items matching ``wanted``; ``sort`` defaults to relevance with words, else date."""
    wanted = wanted.merged()
    dialect = session.get_bind().dialect.name
    match = compile_text(wanted.query, dialect, _only_language(wanted))
    sort = sort or ("relevance" if match else "date")
    if sort not in SORTS:
        raise InvalidFilter(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
    if sort == "relevance" and match is None:
        sort = "date"
    date = ItemSearch.published.label("date")  # every item has its search row (store step, migration 0005)
    matching = _filtered(select(Item.id), wanted).join(ItemSearch, ItemSearch.item_id == Item.id)
    position = decode_cursor(cursor)
    if match is not None:
        match.prefer_index(session)
    if sort == "relevance" and match is not None:
        hits = match.ranked(matching)
        statement = (
            select(hits.c.item_id.label("id"), hits.c.rank)
            .order_by(hits.c.rank, hits.c.item_id.desc())
            .offset(int(position.get("o", 0)))
        )
    else:
        statement = matching.add_columns(date)
        if match is not None:
            statement = statement.where(Item.id.in_(match.ids()))
        if "d" in position:
            after = datetime.fromisoformat(position["d"])
            statement = statement.where(or_(date < after, and_(date == after, ItemSearch.item_id < int(position["i"]))))
        statement = statement.order_by(date.desc(), ItemSearch.item_id.desc())  # ix_item_search_published
    rows = session.execute(statement.limit(limit + 1)).all()
    more, rows = len(rows) > limit, rows[:limit]
    items = {
        item.id: item
        for item in session.scalars(
            select(Item).where(Item.id.in_([r.id for r in rows])).options(selectinload(Item.tags))
        )
    }
    ordered = [items[r.id] for r in rows if r.id in items]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = encode_cursor(
            {"o": int(position.get("o", 0)) + limit}
            if sort == "relevance"
            else {"d": _as_utc(last.date).isoformat(), "i": last.id}
        )
    snippets: dict[int, str] = {}
    if with_snippets and match is not None:
        highlight = Highlighter(wanted.query)
        snippets = {item.id: highlight(item.text, item.language) for item in ordered}
    return Page(ordered, next_cursor, snippets)


def iter_items(wanted: ItemFilter, database_url: str | None = None, batch: int = EXPORT_BATCH) -> Iterator[Item]:
    """Every item matching ``wanted``, oldest first, read ``batch`` at a time (each batch its own transaction)."""
    wanted = wanted.merged()
    last_id = 0
    while True:
        with session_scope(database_url) as session:
            statement = _matching_ids(session, wanted).where(Item.id > last_id)
            ids = session.scalars(statement.order_by(Item.id).limit(batch)).all()
            if not ids:
                return
            yield from session.scalars(
                select(Item).where(Item.id.in_(ids)).order_by(Item.id).options(selectinload(Item.tags))
            )
            last_id = ids[-1]
            session.expunge_all()


def count_items(session: Session, wanted: ItemFilter) -> int:
    """How many stored items match ``wanted``: a cut list says of how many, a watch's preview how many match now."""
    matching = _matching_ids(session, wanted.merged()).subquery()
    return session.scalar(select(func.count()).select_from(matching)) or 0


def _matching_ids(session: Session, wanted: ItemFilter) -> Select:
    """The ids of the items matching ``wanted`` (already merged), in no order."""
    match = compile_text(wanted.query, session.get_bind().dialect.name, _only_language(wanted))
    statement = _filtered(select(Item.id), wanted).outerjoin(ItemSearch, ItemSearch.item_id == Item.id)
    if match is not None:
        match.prefer_index(session)
        statement = statement.where(Item.id.in_(match.ids()))
    return statement


FACET_KINDS = ("country", "topic", "person", "org")
FACET_SPANS = (("1d", timedelta(days=1)), ("7d", timedelta(days=7)), ("30d", timedelta(days=30)))


def facets(session: Session, wanted: ItemFilter, limit: int = 8) -> dict:
    """Counts of the items matching ``wanted`` by language, site, tag kind (the ``limit`` commonest values
    of each) and recency (published or stored in the last day, week, month), for narrowing a search."""
    wanted = wanted.merged()
    matching = _matching_ids(session, wanted).subquery()
    ids = select(matching.c.id)
    count = func.count(func.distinct(TagRecord.item_id))

    def top(column, *where) -> list[tuple[str, int]]:
        n = func.count()
        rows = session.execute(
            select(column, n).where(*where).group_by(column).order_by(n.desc(), column).limit(limit)
        ).all()
        return [(value, total) for value, total in rows if value]

    found: dict[str, object] = {
        "total": session.scalar(select(func.count()).select_from(matching)) or 0,
        "language": top(Item.language, Item.id.in_(ids)),
        "site": top(ItemSearch.site, ItemSearch.item_id.in_(ids)),
    }
    for kind in FACET_KINDS:
        rows = session.execute(
            select(TagRecord.value, count)
            .where(TagRecord.item_id.in_(ids), TagRecord.kind == kind)
            .group_by(TagRecord.value)
            .order_by(count.desc(), TagRecord.value)
            .limit(limit)
        ).all()
        found[kind] = [(value, total) for value, total in rows]
    date = func.coalesce(ItemSearch.published, Item.stored_at)
    now = datetime.now(UTC)
    spans = session.execute(
        select(*(func.count(case((date >= now - span, 1))) for _, span in FACET_SPANS))
        .select_from(Item)
        .outerjoin(ItemSearch, ItemSearch.item_id == Item.id)
        .where(Item.id.in_(ids))
    ).one()
    found["since"] = [(name, total) for (name, _), total in zip(FACET_SPANS, spans, strict=True)]
    return found


def _filtered(statement: Select, wanted: ItemFilter) -> Select:
    """``statement`` (on items, joined to item_search by the caller when dates or sites filter) narrowed."""
    date = ItemSearch.published
    filters = wanted.query.filters
    languages = [*filter(None, [wanted.language]), *filters.get("lang", ())]
    if languages:
        statement = statement.where(Item.language.in_(sorted(set(languages))))
    sites = [site_of(s) for s in [*filter(None, [wanted.site]), *filters.get("site", ())]]
    if sites:
        statement = statement.where(ItemSearch.site.in_(sorted(set(sites))))
    stories = [*([wanted.story] if wanted.story is not None else []), *(int(s) for s in filters.get("story", ()))]
    if stories:
        statement = statement.where(Item.story_id.in_(sorted(set(stories))))
    if wanted.ids:
        statement = statement.where(Item.id.in_(wanted.ids))
    for kind, value in wanted.tags:
        statement = statement.where(
            exists().where(TagRecord.item_id == Item.id, TagRecord.kind == kind, TagRecord.value == value)
        )
    if wanted.since:
        statement = statement.where(date >= wanted.since)
    if wanted.until:
        statement = statement.where(date < wanted.until)
    return statement


def _only_language(wanted: ItemFilter) -> str | None:
    """The one language the listing is limited to (its stemmer alone is used for the query), if any."""
    languages = {*filter(None, [wanted.language]), *wanted.query.filters.get("lang", ())}
    return next(iter(languages)) if len(languages) == 1 else None


def _as_utc(value: datetime) -> datetime:
    if isinstance(value, str):  # SQLite hands back the coalesced date as text
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def encode_cursor(position: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict:
    if not cursor:
        return {}
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(position, dict):
            raise ValueError(position)
        if "d" in position:
            datetime.fromisoformat(position["d"])
            int(position["i"])
        if int(position.get("o", 0)) < 0:
            raise ValueError(position)
        return position
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidFilter("cursor is not one this server gave (use the `next` URL as it is)") from exc


def stories_page(
    session: Session, since: datetime | None = None, limit: int = 20, cursor: str | None = None
) -> tuple[list[dict], str | None]:
    """A page of stories, latest additions first (as ``mirsad stories``), and the cursor of the next page."""
    offset = int(decode_cursor(cursor).get("o", 0))
    found = list_stories(session, since, limit + 1, offset)
    more = len(found) > limit
    return found[:limit], encode_cursor({"o": offset + limit}) if more else None


def entity_summary(session: Session, kind: str, value: str, limit: int = 20) -> dict:
    """One entity (tag): its latest items, its stories, the entities most often in the same items, daily counts."""
    kind, value = _normal_tag(kind, value)
    tagged = select(TagRecord.item_id).where(TagRecord.kind == kind, TagRecord.value == value)
    page = list_items(session, ItemFilter(tags=((kind, value),)), limit=limit)
    total = (
        session.scalar(
            select(func.count(func.distinct(TagRecord.item_id))).where(TagRecord.kind == kind, TagRecord.value == value)
        )
        or 0
    )
    story_rows = session.execute(
        select(Item.story_id, func.count())
        .where(Item.id.in_(tagged), Item.story_id.is_not(None))
        .group_by(Item.story_id)
        .order_by(func.count().desc(), Item.story_id.desc())
        .limit(limit)
    ).all()
    titles = dict(session.execute(select(Item.id, Item.title).where(Item.id.in_([r[0] for r in story_rows]))).all())
    other = TagRecord.__table__.alias("other")
    co_rows = session.execute(
        select(other.c.kind, other.c.value, func.count(func.distinct(other.c.item_id)).label("n"))
        .where(
            other.c.item_id.in_(tagged),
            other.c.kind.in_(ENTITY_KINDS),
            ~and_(other.c.kind == kind, other.c.value == value),
        )
        .group_by(other.c.kind, other.c.value)
        .order_by(func.count(func.distinct(other.c.item_id)).desc(), other.c.kind, other.c.value)
        .limit(limit)
    ).all()
    moment = func.coalesce(ItemSearch.published, Item.stored_at)
    postgres = session.get_bind().dialect.name == "postgresql"
    day = func.date(func.timezone("UTC", moment)) if postgres else func.date(moment)
    daily = session.execute(
        select(day.label("day"), func.count())
        .select_from(Item)
        .outerjoin(ItemSearch, ItemSearch.item_id == Item.id)
        .where(Item.id.in_(tagged))
        .group_by(day)
        .order_by(day)
    ).all()
    return {
        "kind": kind,
        "value": value,
        "items_count": total,
        "items": page.items,
        "more_items": bool(page.next_cursor),
        "stories": [
            {"story": story_id, "items_count": count, "title": titles.get(story_id or 0)}
            for story_id, count in story_rows
        ],
        "co_mentions": [{"kind": k, "value": v, "items_count": n} for k, v, n in co_rows],
        "daily": [{"date": str(d), "count": n} for d, n in daily],
    }


def tags_named(session: Session, item_ids: list[int], kinds: tuple[str, ...]) -> dict[str, list[tuple[str, int]]]:
    """Per kind, the values tagged in the items ``item_ids`` with how many of them name each, commonest first."""
    count = func.count(func.distinct(TagRecord.item_id))
    rows = session.execute(
        select(TagRecord.kind, TagRecord.value, count)
        .where(TagRecord.item_id.in_(item_ids), TagRecord.kind.in_(kinds))
        .group_by(TagRecord.kind, TagRecord.value)
        .order_by(count.desc(), TagRecord.value)
    ).all()
    named: dict[str, list[tuple[str, int]]] = {kind: [] for kind in kinds}
    for kind, value, total in rows:
        named[kind].append((value, total))
    return named

"""The store stage: a finished Document becomes an item with its tags and its story, once per article.

One article, one item: the item's key is the hash of the page's own canonical link (when it names
an address on the page's site; else of the URL's canonical form), inserted with
``ON CONFLICT DO NOTHING``. A second URL whose page is an article already stored (a print or AMP
path, a redirect, a URL with parameters the canonical form keeps) finds the key taken and is
recorded as an alias of that item; a task that runs twice finds its own item. Tags and the story
are written only by the run that created the item.

Stories (workers/stories.py): the new item is matched against the items stored within
``MIRSAD_STORY_WINDOW_DAYS``; it joins the best story found (a story's id is the id of the item
that started it) or starts its own, and a wire copy gets ``copy_of``. Assignment is serialised
across workers, so two reports of one event stored at once still end in one story: on PostgreSQL
by a transaction-scoped advisory lock taken before the insert, on SQLite by its single writer
(the insert takes the write lock). Either way item ids grow in commit order, which lets each
process keep the window's signatures in memory and read only the items stored since it last looked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, func, insert, select, text, update
from sqlalchemy.orm import Session

from workers.core.document import Document
from workers.core.errors import InvalidURL
from workers.core.settings import get_settings
from workers.core.urls import canonicalize, site_of
from workers.core.urls import url_hash as hash_of
from workers.stages import stories
from workers.storage import search
from workers.storage.db import insert_unless_exists
from workers.storage.models import Item, TagRecord, utcnow

# Any constant shared by every worker; pg_advisory_xact_lock takes a signed 64-bit key.
STORY_LOCK_KEY = 0x6D69_7273_6164_0001
# A process's window of signatures is rebuilt this often, so items that left the window leave it.
WINDOW_REBUILD_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class StoredItem:
    """What storing a URL's page did: the item it is, and whether it was an alias, its story and copy."""

    item_id: int
    alias_of: int | None = None
    story_id: int | None = None
    copy_of: int | None = None

    @property
    def detail(self) -> str | None:
        """The ledger event's words for it."""
        if self.alias_of is not None:
            return f"alias of item {self.alias_of}"
        if self.story_id is None:
            return None
        joined = "new story" if self.story_id == self.item_id else f"story {self.story_id}"
        copy = f", copy of item {self.copy_of}" if self.copy_of is not None else ""
        return f"item {self.item_id}, {joined}{copy}"


def store_item(session: Session, url_hash: str, url: str, document: Document) -> StoredItem:
    """Insert the item for this page unless its article is stored already, and give it its story."""
    signature = stories.signature(document)  # the costly part, before the lock
    key = item_key(url_hash, url, document)
    _lock_stories(session)
    stored_at = utcnow()
    values = {
        "url_hash": key,
        "url": url,
        "canonical_url": document.canonical_url,
        "title": document.title,
        "text": document.text,
        "language": document.language,
        "published_at": document.published_at,
        "author": document.author,
        "site_name": document.site_name,
        "credit": document.credit,
        "keywords": list(document.keywords),
        "removed": [r.to_dict() for r in document.removed],
        "fetched_at": datetime.fromisoformat(document.fetched_at) if document.fetched_at else None,
        "stored_at": stored_at,
        "story_signature": signature.to_dict(),
    }
    item_id = insert_unless_exists(session, Item, "url_hash", **values)
    if item_id is None:
        existing = session.execute(select(Item.id, Item.url).where(Item.url_hash == key)).one()
        return StoredItem(existing.id, alias_of=None if existing.url == url else existing.id)
    search.index_item(
        session,
        search.IndexedItem(
            item_id, url, document.title, document.text, document.language, document.published_at, stored_at
        ),
    )
    if document.tags:
        session.execute(
            insert(TagRecord),
            [
                {"item_id": item_id, "kind": t.kind, "value": t.value, "score": t.score, "evidence": list(t.evidence)}
                for t in document.tags
            ],
        )
    found = _window_index(session, item_id).match(signature)
    if not _still_stored(session, found):  # items were deleted since this process read them: read afresh
        found = _window_index(session, item_id, rebuild=True).match(signature)
    story_id = found.story_id if found.story_id is not None else item_id
    copy_of = found.copy_of
    # The window index is keyed by item ids, so the story and the original it names are items.
    assert isinstance(story_id, int) and (copy_of is None or isinstance(copy_of, int))
    session.execute(update(Item).where(Item.id == item_id).values(story_id=story_id, copy_of=copy_of))
    return StoredItem(item_id, story_id=story_id, copy_of=copy_of)


def item_key(url_hash: str, url: str, document: Document) -> str:
    """The hash identifying the article: of the page's canonical link when it stays on the page's site.

    A canonical link to another site is not followed: an outlet republishing an agency's report
    keeps its own item (marked a copy by the story step), not the agency's.
    """
    page_url = document.url or url
    try:
        declared = canonicalize(document.canonical_url or "")
        page = canonicalize(page_url)
    except InvalidURL:
        return url_hash
    return hash_of(declared) if site_of(declared) == site_of(page) else url_hash


def _lock_stories(session: Session) -> None:
    """Serialise item inserts and story assignment across workers until this transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": STORY_LOCK_KEY})


@dataclass
class _Window:
    index: stories.StoryIndex
    last_item_id: int
    built_at: datetime


_windows: dict[str, _Window] = {}


def _still_stored(session: Session, found: stories.StoryMatch) -> bool:
    """Whether the story and the original that ``found`` names still have their items in the database."""
    if found.story_id is None:
        return True
    story = select(Item.id).where(Item.story_id == found.story_id).limit(1).scalar_subquery()
    original = select(Item.id).where(Item.id == found.copy_of).scalar_subquery()
    story_id, copy_of = session.execute(select(story, original)).one()
    return story_id is not None and (found.copy_of is None or copy_of is not None)


def _window_index(session: Session, new_item_id: int, rebuild: bool = False) -> stories.StoryIndex:
    """This process's StoryIndex of the window's items, brought up to date (under the story lock)."""
    rules = stories.StoryRules(window=timedelta(days=get_settings().story_window_days))
    database = session.get_bind().engine.url.render_as_string(hide_password=False)
    window = _windows.get(database)
    now = utcnow()
    # A new id at or below the last one seen means the table was emptied and refilled (tests): start over.
    if (
        rebuild
        or window is None
        or window.last_item_id >= new_item_id
        or now - window.built_at > WINDOW_REBUILD_AFTER
        or window.index.rules != rules
    ):
        window = _windows[database] = _Window(stories.StoryIndex(rules=rules), 0, now)
    cap = get_settings().story_index_items
    if len(window.index) >= cap:  # bounded memory: start again from the newest half, once per cap / 2 items
        window = _windows[database] = _Window(stories.StoryIndex(rules=rules), 0, now)
    newest = (
        (
            select(Item.id)
            .where(Item.story_signature.is_not(None))
            .order_by(Item.id.desc())
            .offset(cap // 2)
            .limit(1)
            .scalar_subquery()
        )
        if window.last_item_id == 0
        else None
    )
    query = select(Item.id, Item.story_id, Item.story_signature).where(
        Item.id > window.last_item_id,
        Item.id != new_item_id,
        Item.stored_at >= now - rules.window,
        Item.story_signature.is_not(None),
    )
    if newest is not None:
        query = query.where(Item.id > func.coalesce(newest, 0))
    rows = session.execute(query.order_by(Item.id))
    for row in rows:  # committed items only: the new one joins the index on the next look, if it commits
        if row.story_signature.get("v") == stories.SIGNATURE_VERSION:
            window.index.add(row.id, row.story_id, stories.Signature.from_dict(row.story_signature))
        window.last_item_id = row.id
    return window.index


def recent_stories(since: datetime | None = None) -> Select:
    """The ids of the stories with an item stored since ``since`` (every story without it)."""
    recent = select(Item.story_id).where(Item.story_id.is_not(None)).group_by(Item.story_id)
    return recent if since is None else recent.having(func.max(Item.stored_at) >= since)


def count_stories(session: Session, since: datetime | None = None) -> int:
    """How many stories ``list_stories`` pages through (so that a cut list can say of how many)."""
    return session.scalar(select(func.count()).select_from(recent_stories(since).subquery())) or 0


def list_stories(session: Session, since: datetime | None = None, limit: int = 20, offset: int = 0) -> list[dict]:
    """The ``limit`` stories with the latest additions (only those with an item stored since ``since``), newest
    first; each with its items in order of publication and the first source to publish."""
    latest = func.max(Item.stored_at)
    recent = recent_stories(since).order_by(latest.desc(), Item.story_id.desc())
    story_ids = session.scalars(recent.limit(limit).offset(offset)).all()
    members: dict[int, list[Item]] = {story_id: [] for story_id in story_ids if story_id is not None}
    for item in session.scalars(select(Item).where(Item.story_id.in_(story_ids)).order_by(Item.id)):
        if item.story_id is not None:  # always: it is one of story_ids
            members[item.story_id].append(item)
    return [_story_to_dict(story_id, items) for story_id, items in members.items()]


def get_story(session: Session, story_id: int) -> dict | None:
    """One story with its items in order of publication, or None."""
    items = session.scalars(select(Item).where(Item.story_id == story_id).order_by(Item.id)).all()
    return _story_to_dict(story_id, list(items)) if items else None


def _story_to_dict(story_id: int, items: list[Item]) -> dict:
    items = sorted(items, key=_published_or_stored)
    first = items[0]
    return {
        "story": story_id,
        "items_count": len(items),
        "first_published_at": _published_or_stored(first).isoformat(),
        "first_source": first.site_name or site_of(first.url),
        "first_item": first.id,
        "title": first.title,
        "items": [
            {
                "id": i.id,
                "title": i.title,
                "source": i.site_name or site_of(i.url),
                "url": i.url,
                "language": i.language,
                "published_at": i.published_at,
                "copy_of": i.copy_of,
            }
            for i in items
        ],
    }


def _published_or_stored(item: Item) -> datetime:
    """When the item came out: its published date (UTC when it has no zone), else when we stored it."""
    try:
        published = datetime.fromisoformat(item.published_at or "")
    except ValueError:
        return item.stored_at
    return published if published.tzinfo else published.replace(tzinfo=UTC)


def item_to_dict(item: Item) -> dict:
    """The JSON form of a stored item, with the field names the README documents."""
    return {
        "id": item.id,
        "url": item.url,
        "canonical_url": item.canonical_url,
        "title": item.title,
        "text": item.text,
        "language": item.language,
        "published_at": item.published_at,
        "author": item.author,
        "site_name": item.site_name,
        "credit": item.credit,
        "keywords": item.keywords or [],
        "fetched_at": item.fetched_at.isoformat() if item.fetched_at else None,
        "stored_at": item.stored_at.isoformat() if item.stored_at else None,
        "story": item.story_id,
        "copy_of": item.copy_of,
        "tags": [{"kind": t.kind, "value": t.value, "score": t.score, "evidence": t.evidence} for t in item.tags],
        "removed": item.removed or [],
    }

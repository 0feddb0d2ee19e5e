"""Every table of Mirsad, in one module: the schema that Alembic's migrations must match.

``urls`` holds one row per canonical URL with its state, attempts, last error and the current
stage's output (``payload``, compressed), so messages through Redis carry only a row id and a lost
message can be re-enqueued from here. ``url_events`` is each URL's state history; ``items`` and
``tags`` are what users query; ``site_lines`` is what strip learned per site; ``sources`` and
``source_entries`` are the feeds and sitemaps followed and the hints they gave; ``item_search`` is
each item's search document (its analyzer tokens; on SQLite the FTS5 table ``search_fts`` beside
it, created by migration 0005); ``api_tokens`` are the API's bearer tokens, hashed. Works on
PostgreSQL (deployment) and SQLite (embedded default).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from workers.text.textnorm import FINGERPRINT_CHARS

JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both databases (SQLite drops the zone; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class UrlRecord(Base):
    __tablename__ = "urls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url_hash: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(Text)
    canonical_url: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    # Set when the page turned out to be an item stored from another URL (its canonical link said so).
    alias_of: Mapped[int | None] = mapped_column(ForeignKey("items.id", name="fk_urls_alias_of_items"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    events: Mapped[list[UrlEvent]] = relationship(order_by="UrlEvent.id", cascade="all, delete-orphan")

    __table_args__ = (Index("ix_urls_state_updated", "state", "updated_at"),)


class UrlEvent(Base):
    __tablename__ = "url_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url_id: Mapped[int] = mapped_column(ForeignKey("urls.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    state: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str | None] = mapped_column(Text)


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url_hash: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(Text)
    canonical_url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    published_at: Mapped[str | None] = mapped_column(String(40))
    author: Mapped[str | None] = mapped_column(Text)
    site_name: Mapped[str | None] = mapped_column(Text)
    credit: Mapped[str | None] = mapped_column(Text)
    keywords: Mapped[list] = mapped_column(JSONType, default=list)
    removed: Mapped[list] = mapped_column(JSONType, default=list)
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # A story's id is the id of the item that started it; copy_of is the earlier item this one republishes.
    story_id: Mapped[int | None] = mapped_column(Integer, index=True)
    copy_of: Mapped[int | None] = mapped_column(ForeignKey("items.id", name="fk_items_copy_of_items"))
    story_signature: Mapped[dict | None] = mapped_column(JSONType)

    tags: Mapped[list[TagRecord]] = relationship(order_by="TagRecord.id", cascade="all, delete-orphan")


class TagRecord(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(255))
    score: Mapped[float] = mapped_column(Float)
    evidence: Mapped[list] = mapped_column(JSONType, default=list)

    __table_args__ = (Index("ix_tags_kind_value", "kind", "value", "item_id"),)


class SiteLineRecord(Base):
    """One candidate line of one article of one site."""

    __tablename__ = "site_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(FINGERPRINT_CHARS))
    url_hash: Mapped[str] = mapped_column(String(64))
    line: Mapped[str] = mapped_column(Text)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ux_site_lines_site_fingerprint_url", "site", "fingerprint", "url_hash", unique=True),)


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


class ItemSearch(Base):
    """An item's search document: the analyzer's tokens (workers.storage.search), its site and its date.

    ``published`` is the publication date in UTC (the store date when the page gave none), the date
    that search sorts and filters by. On PostgreSQL ``vector`` holds the tokens (GIN-indexed); on
    SQLite they live in the FTS5 table ``search_fts`` (rowid = item id), which SQLAlchemy cannot model.
    """

    __tablename__ = "item_search"

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    site: Mapped[str] = mapped_column(String(255))
    published: Mapped[datetime] = mapped_column(UTCDateTime())
    vector: Mapped[str | None] = mapped_column(Text().with_variant(TSVECTOR(), "postgresql"))
    # PostgreSQL: every pair of adjacent words (surface forms, and stems), GIN-indexed, so that a phrase
    # query reads only the vectors of the items that have its pairs (checking a phrase reads the vector).
    pairs: Mapped[str | None] = mapped_column(Text().with_variant(TSVECTOR(), "postgresql"))

    __table_args__ = (
        Index("ix_item_search_site_published", "site", "published"),
        Index("ix_item_search_published", "published", "item_id"),
        Index("ix_item_search_vector", "vector", postgresql_using="gin"),
        Index("ix_item_search_pairs", "pairs", postgresql_using="gin"),
    )


class ApiToken(Base):
    """A bearer token of the HTTP API: only its SHA-256 is kept; ``scope`` is read or write (write reads too)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(8))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

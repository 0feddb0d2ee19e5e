"""The store stage: a finished Document becomes an item with its tags, once per URL.

Idempotent by construction: the item's key is the URL hash, the insert is
``ON CONFLICT DO NOTHING``, and tags are written only by the run that created
the item, so a task that runs twice stores one item.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from .db import Item, TagRecord, insert_unless_exists, utcnow
from .document import Document


def store(session: Session, url_hash: str, url: str, document: Document) -> int:
    """Insert the item for ``url_hash`` unless it exists; returns the item id either way."""
    values = {
        "url_hash": url_hash, "url": url, "canonical_url": document.canonical_url, "title": document.title,
        "text": document.text, "language": document.language, "published_at": document.published_at,
        "author": document.author, "site_name": document.site_name, "credit": document.credit,
        "keywords": list(document.keywords), "removed": [r.to_dict() for r in document.removed],
        "fetched_at": datetime.fromisoformat(document.fetched_at) if document.fetched_at else None,
        "stored_at": utcnow(),
    }
    item_id = insert_unless_exists(session, Item, "url_hash", **values)
    if item_id is None:
        return session.scalar(select(Item.id).where(Item.url_hash == url_hash))
    if document.tags:
        session.execute(insert(TagRecord), [{"item_id": item_id, "kind": t.kind, "value": t.value, "score": t.score,
                                             "evidence": list(t.evidence)} for t in document.tags])
    return item_id


def item_to_dict(item: Item) -> dict:
    """The JSON form of a stored item, with the field names the README documents."""
    return {
        "id": item.id, "url": item.url, "canonical_url": item.canonical_url, "title": item.title,
        "text": item.text, "language": item.language, "published_at": item.published_at,
        "author": item.author, "site_name": item.site_name, "credit": item.credit,
        "keywords": item.keywords or [],
        "fetched_at": item.fetched_at.isoformat() if item.fetched_at else None,
        "stored_at": item.stored_at.isoformat() if item.stored_at else None,
        "tags": [{"kind": t.kind, "value": t.value, "score": t.score, "evidence": t.evidence} for t in item.tags],
        "removed": item.removed or [],
    }

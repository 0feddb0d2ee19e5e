"""The questions the entry points ask of the database: newest items, one item or URL, URL states.

Kept here, below the CLI and the API, so that both ask them the same way and no entry point
builds SQL of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, selectinload

from workers.storage import ledger
from workers.storage.models import Item, TagRecord, UrlRecord


def latest_item_id(session: Session) -> int:
    return session.scalar(select(func.max(Item.id))) or 0


def items_after(session: Session, last_id: int) -> list[Item]:
    """Items stored after ``last_id``, oldest first, with their tags (what ``watch`` prints next)."""
    return list(
        session.scalars(select(Item).where(Item.id > last_id).order_by(Item.id).options(selectinload(Item.tags)))
    )


def newest_items(
    session: Session, tags: Iterable[tuple[str, str]] = (), since: datetime | None = None, limit: int = 20
) -> list[Item]:
    """The newest items carrying every (kind, value) tag (the value in any case), stored since ``since``."""
    query = _items_matching(select(Item), tags, since)
    return list(session.scalars(query.order_by(Item.id.desc()).limit(limit).options(selectinload(Item.tags))))


def count_items(session: Session, tags: Iterable[tuple[str, str]] = (), since: datetime | None = None) -> int:
    """How many items ``newest_items`` would list without its limit (so a cut list can say so)."""
    return session.scalar(_items_matching(select(func.count()).select_from(Item), tags, since)) or 0


def _items_matching(query, tags: Iterable[tuple[str, str]], since: datetime | None):
    for kind, value in tags:
        query = query.where(
            exists().where(
                TagRecord.item_id == Item.id, TagRecord.kind == kind, func.lower(TagRecord.value) == value.lower()
            )
        )
    if since is not None:
        query = query.where(Item.stored_at >= since)
    return query


def item_or_url(session: Session, target: str) -> tuple[Item | None, UrlRecord | None]:
    """An item id (``N`` or ``item:N``), a URL id (``url:N``, as push and the demo print them) or a URL as
    pushed: the item (if stored) and the URL record that stored it."""
    kind, sep, number = target.partition(":")
    if sep and number.isdigit() and kind in ("url", "item"):
        if kind == "url":
            record = session.get(UrlRecord, int(number))
            return (session.get(Item, record.item_id) if record and record.item_id else None), record
        target = number
    record = ledger.find(session, target) if not target.isdigit() else None
    item = (
        session.get(Item, int(target))
        if target.isdigit()
        else (session.get(Item, record.item_id) if record and record.item_id else None)
    )
    if item is not None and record is None:
        record = session.scalar(
            select(UrlRecord)
            .where(UrlRecord.item_id == item.id)  # the URL that stored it
            .order_by(UrlRecord.alias_of.is_not(None), UrlRecord.id)
            .limit(1)
        )
    return item, record


def url_states(session: Session, url_ids: Iterable[int]) -> dict[int, str]:
    return dict(session.execute(select(UrlRecord.id, UrlRecord.state).where(UrlRecord.id.in_(list(url_ids)))).all())


def urls_with_items(session: Session, url_ids: Iterable[int]) -> list[tuple[UrlRecord, Item | None]]:
    """The URL records of ``url_ids`` in id order, each with its item when it was stored."""
    records = session.scalars(select(UrlRecord).where(UrlRecord.id.in_(list(url_ids))).order_by(UrlRecord.id))
    return [(record, session.get(Item, record.item_id) if record.item_id else None) for record in records]

"""Watches in the database: adding and listing them, recording what they match, their deliveries' lifecycle.

The path of an alert, each step one transaction:

1. the store transaction writes the item and a ``watch_inbox`` row (``enqueue_item``);
2. matching (``record_matches``) deletes the inbox row and writes the item's ``watch_matches`` and,
   for alerts, ``deliveries`` (UNIQUE per watch and item: an item matched twice alerts once);
3. a delivery is claimed (``claim_delivery``: pending → sending, one attempt, a lease), sent, and
   finished (``finish_delivery``: sent, pending again with a later time, or dead with the reason).

Whatever a killed worker leaves half done, ``sweep`` finds: inbox rows not matched, pending
deliveries whose message is overdue, sending ones whose lease ran out.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from workers.core.errors import MirsadError
from workers.core.settings import Settings
from workers.core.urls import site_of
from workers.stages import alerts
from workers.storage import search
from workers.storage.db import rowcount
from workers.storage.items import ItemFilter, count_items, list_items
from workers.storage.models import Delivery, Item, Watch, WatchInbox, WatchMatch, utcnow
from workers.text import watchmatch
from workers.text.query import parse

DIGEST_PERIODS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}
DELIVERY_STATES = ("pending", "sending", "sent", "dead")
SPIKE_HISTORY_DAYS = 14
WATCH_LOCK_KEY = 0x6D697273_6177  # "mirsaw": serialises recording matches (story quiet) on PostgreSQL
SWEEP_BATCH = 500


class WatchError(MirsadError):
    """A watch that cannot be added or found; the message says why."""


def add(
    session: Session,
    name: str,
    query: str,
    settings: Settings,
    webhook_url: str | None = None,
    email: str | None = None,
    digest: str | None = None,
    spikes: bool = True,
) -> Watch:
    """A new watch (its ``secret`` is the only time the signing secret leaves the database)."""
    name = (name or "").strip()
    if not name or len(name) > 100 or any(ord(c) < 32 for c in name) or name.isdigit():
        raise WatchError(f"a watch name is 1 to 100 characters, not only digits, no control characters: {name!r}")
    parsed = parse(query)
    if not parsed.has_text and not parsed.filters:
        raise WatchError("a watch needs a query: words, phrases or field filters (lang:, site:, topic:…)")
    if digest is not None and digest not in DIGEST_PERIODS:
        raise WatchError(f"digest must be one of {', '.join(DIGEST_PERIODS)}, got {digest!r}")
    if digest and not email:
        raise WatchError("a digest is sent by e-mail: give --email too")
    if webhook_url:
        alerts.check_webhook_url(webhook_url, settings)
    if email:
        alerts.check_email(email)
    if session.scalar(select(Watch.id).where(Watch.name == name)) is not None:
        raise WatchError(f"a watch named {name!r} exists already (remove it first)")
    watch = Watch(
        name=name,
        query=query.strip(),
        webhook_url=webhook_url or None,
        email=email or None,
        digest=(digest or "hourly") if email else None,
        spikes=spikes,
        secret=alerts.new_secret(),
    )
    session.add(watch)
    session.flush()
    return watch


def find(session: Session, name_or_id: str | int) -> Watch:
    """A watch by name (or id); WatchError when there is none."""
    key = str(name_or_id)
    found = session.scalar(select(Watch).where(Watch.name == key))
    if found is None and key.isdigit():
        found = session.get(Watch, int(key))
    if found is None:
        raise WatchError(f"no watch named {key!r} (mirsad watches list)")
    return found


def listing(session: Session) -> list[Watch]:
    return list(session.scalars(select(Watch).order_by(Watch.id)))


def remove(session: Session, name_or_id: str | int) -> None:
    watch = find(session, name_or_id)
    session.execute(delete(Delivery).where(Delivery.watch_id == watch.id))
    session.execute(delete(WatchMatch).where(WatchMatch.watch_id == watch.id))
    session.delete(watch)


def to_dict(watch: Watch, counts: dict[str, int] | None = None) -> dict:
    """A watch as JSON, without its secret."""
    return {
        "id": watch.id,
        "name": watch.name,
        "query": watch.query,
        "webhook": watch.webhook_url,
        "email": watch.email,
        "digest": watch.digest,
        "spikes": watch.spikes,
        "created_at": watch.created_at.isoformat(),
        "last_digest_at": watch.last_digest_at.isoformat() if watch.last_digest_at else None,
        **({"counts": counts} if counts is not None else {}),
    }


def match_counts(session: Session, watch_id: int) -> dict[str, int]:
    matches = session.scalar(select(func.count()).where(WatchMatch.watch_id == watch_id)) or 0
    by_state = dict(
        session.execute(
            select(Delivery.state, func.count()).where(Delivery.watch_id == watch_id).group_by(Delivery.state)
        ).all()
    )
    return {"matches": matches, **{state: by_state.get(state, 0) for state in DELIVERY_STATES}}


def recent(session: Session, watch_id: int, limit: int = 20) -> tuple[list[tuple[WatchMatch, Item]], list[Delivery]]:
    """A watch's latest matches (with their items) and latest deliveries, newest first."""
    matches = session.execute(
        select(WatchMatch, Item)
        .join(Item, Item.id == WatchMatch.item_id)
        .where(WatchMatch.watch_id == watch_id)
        .order_by(WatchMatch.matched_at.desc(), WatchMatch.id.desc())
        .limit(limit)
        .options(selectinload(Item.tags))
    ).all()
    deliveries = session.scalars(
        select(Delivery).where(Delivery.watch_id == watch_id).order_by(Delivery.id.desc()).limit(limit)
    ).all()
    return [(m, i) for m, i in matches], list(deliveries)


def preview(session: Session, query: str, limit: int = 10) -> tuple[int, list[Item]]:
    """How many stored items a query matches now, and the latest ``limit`` of them (the search's listing)."""
    wanted = ItemFilter(parse(query))
    return count_items(session, wanted), list_items(session, wanted, sort="date", limit=limit).items


# -- matching --------------------------------------------------------------------------------------------------


def enqueue_item(session: Session, item_id: int) -> None:
    """Note a stored item for matching, in the caller's (the store's) transaction."""
    insert = _dialect_insert(session)
    session.execute(insert(WatchInbox).values(item_id=item_id, queued_at=utcnow()).on_conflict_do_nothing())


def _dialect_insert(session: Session):
    """The INSERT construct with ON CONFLICT of the session's database."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


@dataclass
class _CachedIndex:
    version: tuple
    index: watchmatch.WatchIndex


_indexes: dict[str, _CachedIndex] = {}


def watch_index(session: Session) -> watchmatch.WatchIndex:
    """This process's compiled index of every watch, rebuilt when a watch was added or removed."""
    # A removed watch's id may be given again (SQLite): the latest creation time tells the new one apart.
    version = tuple(session.execute(select(func.count(Watch.id), func.max(Watch.id), func.max(Watch.created_at))).one())
    database = session.get_bind().engine.url.render_as_string(hide_password=False)
    cached = _indexes.get(database)
    if cached is None or cached.version != version:
        rows = session.execute(select(Watch.id, Watch.query)).all()
        compiled = [watchmatch.compile_watch(watch_id, parse(query)) for watch_id, query in rows]
        cached = _indexes[database] = _CachedIndex(version, watchmatch.WatchIndex(compiled))
    return cached.index


def features_of(session: Session, item: Item) -> watchmatch.ItemFeatures:
    """The item's features from its search index tokens (analysed afresh only when it has none)."""
    tags = [(t.kind, t.value) for t in item.tags]
    tokens = search.stored_tokens(session, item.id)
    if tokens is None:
        return watchmatch.item_features(item.title, item.text, item.language, item.url, tags, item.story_id)
    return watchmatch.features_of_tokens(*tokens, item.language, item.url, tags, item.story_id)


def item_payload(item: Item, settings: Settings) -> dict:
    """The item as alerts show it: id, url, title, language, site, date, tags, story and its page's link."""
    return {
        "id": item.id,
        "url": item.url,
        "title": item.title,
        "language": item.language,
        "site": site_of(item.url),
        "published_at": item.published_at,
        "tags": [{"kind": t.kind, "value": t.value} for t in item.tags],
        "story": item.story_id,
        "link": f"{settings.link_base}/items/{item.id}",
    }


def load_item(session: Session, item_id: int) -> Item | None:
    return session.scalar(select(Item).where(Item.id == item_id).options(selectinload(Item.tags)))


def claim_inbox(session: Session, item_id: int, lease: float) -> bool:
    """Take the item's matching for ``lease`` seconds; False when it is matched already or another run has it."""
    now = utcnow()
    claimed = session.execute(
        update(WatchInbox)
        .where(
            WatchInbox.item_id == item_id,
            (WatchInbox.claimed_until.is_(None)) | (WatchInbox.claimed_until < now),
        )
        .values(claimed_until=now + timedelta(seconds=lease))
    )
    return bool(rowcount(claimed))


def record_matches(
    session: Session, item: Item, watch_ids: list[int], settings: Settings, now: datetime | None = None
) -> list[int] | None:
    """Record ``item``'s matches of ``watch_ids`` and their alerts; the new deliveries' ids, or None when the
    item was matched already (its inbox row gone: another run did it).

    The first statement takes the item's inbox row (SQLite's write lock, and on PostgreSQL the watches'
    lock follows), so two runs never both see a story as not yet alerted."""
    now = now or utcnow()
    if not rowcount(session.execute(delete(WatchInbox).where(WatchInbox.item_id == item.id))):
        return None
    if not watch_ids:
        return []
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WATCH_LOCK_KEY})
    watches = {w.id: w for w in session.scalars(select(Watch).where(Watch.id.in_(watch_ids)))}
    payload = item_payload(item, settings)
    created: list[int] = []
    for watch in watches.values():
        alerted = item.story_id is None or not _story_alerted(session, watch.id, item, now, settings)
        if not _insert_match(session, watch.id, item, alerted, now):
            continue
        if alerted and watch.webhook_url:
            created += _new_delivery(session, watch, f"item:{item.id}", "match", item.id, payload, now)
        if watch.spikes and watch.webhook_url:
            created += _spike(session, watch, now, settings)
    return created


def _story_alerted(session: Session, watch_id: int, item: Item, now: datetime, settings: Settings) -> bool:
    """Whether the watch alerted on the item's story within MIRSAD_WATCH_STORY_QUIET."""
    quiet_since = now - timedelta(seconds=settings.watch_story_quiet)
    return (
        session.scalar(
            select(WatchMatch.id)
            .where(
                WatchMatch.watch_id == watch_id,
                WatchMatch.story_id == item.story_id,
                WatchMatch.alerted.is_(True),
                WatchMatch.matched_at >= quiet_since,
                WatchMatch.item_id != item.id,
            )
            .limit(1)
        )
        is not None
    )


def _insert_match(session: Session, watch_id: int, item: Item, alerted: bool, now: datetime) -> bool:
    insert = _dialect_insert(session)
    statement = (
        insert(WatchMatch)
        .values(watch_id=watch_id, item_id=item.id, story_id=item.story_id, alerted=alerted, matched_at=now)
        .on_conflict_do_nothing(index_elements=["watch_id", "item_id"])
        .returning(WatchMatch.id)
    )
    return session.execute(statement).scalar() is not None


def _new_delivery(
    session: Session, watch: Watch, event_key: str, kind: str, item_id: int | None, data: dict, now: datetime
) -> list[int]:
    """A pending delivery unless the watch has one for this event already (the UNIQUE key decides)."""
    body = json.dumps(
        {
            "type": f"watch.{kind}",
            "timestamp": now.isoformat(timespec="seconds"),
            "data": {"watch": {"id": watch.id, "name": watch.name, "query": watch.query}, **_data(kind, data)},
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    insert = _dialect_insert(session)
    statement = (
        insert(Delivery)
        .values(
            watch_id=watch.id,
            event_key=event_key,
            kind=kind,
            item_id=item_id,
            message_id=f"msg_{secrets.token_hex(12)}",
            body=body,
            state="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["watch_id", "event_key"])
        .returning(Delivery.id)
    )
    new_id = session.execute(statement).scalar()
    return [new_id] if new_id is not None else []


def _data(kind: str, data: dict) -> dict:
    return {"item": data} if kind == "match" else data


def _spike(session: Session, watch: Watch, now: datetime, settings: Settings) -> list[int]:
    """A spike delivery when this hour's matches rise far above the same hour's median of the last 14 days
    (of the days the watch existed; at least one)."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    if watch.created_at > hour - timedelta(days=1):
        return []  # no usual level yet: a watch younger than a day cannot spike
    current = (
        session.scalar(select(func.count()).where(WatchMatch.watch_id == watch.id, WatchMatch.matched_at >= hour)) or 0
    )
    if current < settings.watch_spike_min:
        return []
    history = hourly_history(session, watch.id, hour, watch.created_at)
    if not watchmatch.is_spike(current, history, settings.watch_spike_factor, settings.watch_spike_min):
        return []
    usual = sorted(history)[len(history) // 2] if history else 0
    data = {"spike": {"hour": hour.isoformat(), "count": current, "usual": usual, "days": SPIKE_HISTORY_DAYS}}
    return _new_delivery(session, watch, f"spike:{hour.isoformat(timespec='hours')}", "spike", None, data, now)


def hourly_history(session: Session, watch_id: int, hour: datetime, since: datetime) -> list[int]:
    """The watch's match count in the same hour on each of the last SPIKE_HISTORY_DAYS days it existed
    (``since``: its creation), zeros included."""
    starts = [
        start
        for d in range(1, SPIKE_HISTORY_DAYS + 1)
        if (start := hour - timedelta(days=d)) >= since - timedelta(hours=1)
    ]
    moments = session.scalars(
        select(WatchMatch.matched_at).where(
            WatchMatch.watch_id == watch_id, WatchMatch.matched_at >= starts[-1], WatchMatch.matched_at < hour
        )
    ).all()
    counts = dict.fromkeys(starts, 0)
    for moment in moments:
        start = moment.replace(minute=0, second=0, microsecond=0)
        if start in counts:
            counts[start] += 1
    return list(counts.values())


# -- deliveries ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedDelivery:
    id: int
    attempt: int
    url: str
    secret: str
    message_id: str
    body: str


def claim_delivery(
    session: Session, delivery_id: int, lease: float, now: datetime | None = None
) -> ClaimedDelivery | None:
    """Take a due pending delivery for one attempt (the attempt counts now); None when it is not ours to send."""
    now = now or utcnow()
    claimed = rowcount(
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.state == "pending", Delivery.next_attempt_at <= now)
            .values(state="sending", attempts=Delivery.attempts + 1, lease_until=now + timedelta(seconds=lease))
        )
    )
    if not claimed:
        return None
    row = session.execute(
        select(Delivery.attempts, Delivery.message_id, Delivery.body, Watch.webhook_url, Watch.secret)
        .join(Watch, Watch.id == Delivery.watch_id)
        .where(Delivery.id == delivery_id)
    ).one()
    if not row.webhook_url:  # the watch lost its webhook since: nothing to send to
        _finish(session, delivery_id, row.attempts, state="dead", last_error="the watch has no webhook any more")
        return None
    return ClaimedDelivery(delivery_id, row.attempts, row.webhook_url, row.secret, row.message_id, row.body)


def finish_delivery(
    session: Session, claimed: ClaimedDelivery, outcome: alerts.SendOutcome, retry_in: float | None, max_attempts: int
) -> str:
    """Record one attempt's outcome; the delivery's new state (sent, pending again, or dead)."""
    now = utcnow()
    if outcome.delivered:
        state = "sent"
    elif outcome.retryable and retry_in is not None and claimed.attempt < max_attempts:
        state = "pending"
    else:
        state = "dead"
    error = outcome.error
    if state == "dead" and outcome.retryable:
        error = f"{error} (after {claimed.attempt} attempts)"
    _finish(
        session,
        claimed.id,
        claimed.attempt,
        state=state,
        last_error=error,
        sent_at=now if state == "sent" else None,
        next_attempt_at=now + timedelta(seconds=retry_in or 0) if state == "pending" else None,
    )
    return state


def _finish(session: Session, delivery_id: int, attempt: int, **values) -> None:
    """Only the attempt that holds the claim may finish it (a lease taken over by the sweeper is not ours)."""
    values = {k: v for k, v in values.items() if v is not None or k in ("last_error", "sent_at")}
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.state == "sending", Delivery.attempts == attempt)
        .values(lease_until=None, **values)
    )


def deliveries(session: Session, dead_only: bool = False, limit: int = 100) -> list[tuple[Delivery, str]]:
    """Deliveries with their watch's name, newest first (``dead_only``: those that gave up)."""
    statement = select(Delivery, Watch.name).join(Watch, Watch.id == Delivery.watch_id)
    if dead_only:
        statement = statement.where(Delivery.state == "dead")
    rows = session.execute(statement.order_by(Delivery.id.desc()).limit(limit)).all()
    return [(d, name) for d, name in rows]


def delivery_to_dict(delivery: Delivery, watch_name: str) -> dict:
    return {
        "id": delivery.id,
        "watch": watch_name,
        "kind": delivery.kind,
        "item": delivery.item_id,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "message_id": delivery.message_id,
        "created_at": delivery.created_at.isoformat(),
        "sent_at": delivery.sent_at.isoformat() if delivery.sent_at else None,
        "next_attempt_at": delivery.next_attempt_at.isoformat() if delivery.state == "pending" else None,
    }


def reopen(session: Session, delivery_id: int) -> None:
    """Send a delivery again from its first attempt (``mirsad alerts resend``): dead or sent ones alike."""
    changed = rowcount(
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.state.in_(("dead", "sent")))
            .values(state="pending", attempts=0, next_attempt_at=utcnow(), lease_until=None)
        )
    )
    if not changed:
        state = session.scalar(select(Delivery.state).where(Delivery.id == delivery_id))
        raise WatchError(
            f"no delivery {delivery_id} (mirsad alerts)"
            if state is None
            else f"delivery {delivery_id} is {state} already"
        )


@dataclass(frozen=True)
class Sweep:
    items: list[int]
    deliveries: list[int]


def sweep(session: Session, after: float, lease_over: float = 0.0) -> Sweep:
    """What killed workers or lost messages left: items not matched (nor being matched) for ``after`` seconds or
    whose matching run's claim ran out, pending deliveries
    overdue by ``after``, and sending ones whose lease ended; each touched so the next sweep waits again."""
    now = utcnow()
    late = now - timedelta(seconds=after)
    unclaimed = WatchInbox.claimed_until.is_(None) & (WatchInbox.queued_at < late)
    items = list(
        session.scalars(
            select(WatchInbox.item_id)
            .where(unclaimed | (WatchInbox.claimed_until < now))
            .order_by(WatchInbox.item_id)
            .limit(SWEEP_BATCH)
        )
    )
    if items:
        session.execute(
            update(WatchInbox).where(WatchInbox.item_id.in_(items)).values(queued_at=now, claimed_until=None)
        )
    session.execute(
        update(Delivery)
        .where(Delivery.state == "sending", Delivery.lease_until < now - timedelta(seconds=lease_over))
        .values(
            state="pending",
            next_attempt_at=late - timedelta(seconds=1),
            lease_until=None,
            last_error="the worker sending it was lost; sending again",
        )
    )
    overdue = list(
        session.scalars(
            select(Delivery.id)
            .where(Delivery.state == "pending", Delivery.next_attempt_at < late)
            .order_by(Delivery.id)
            .limit(SWEEP_BATCH)
        )
    )
    if overdue:
        session.execute(update(Delivery).where(Delivery.id.in_(overdue)).values(next_attempt_at=now))
    return Sweep(items, overdue)


# -- digests and feeds -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Digest:
    watch_id: int
    name: str
    email: str
    period: str
    match_ids: list[int]
    stories: list[tuple[str, list[dict]]]


def due_digests(session: Session, settings: Settings, force: bool = False, name: str | None = None) -> list[Digest]:
    """The digests to send now: per e-mail watch whose period has passed (``force``: whatever the period),
    its matches not sent yet, grouped by story. A watch with a webhook had its alerts sent there, so
    its digest holds the quiet ones (later items of alerted stories); without one, every match."""
    now = utcnow()
    statement = select(Watch).where(Watch.email.is_not(None))
    if name is not None:
        statement = statement.where(Watch.id == find(session, name).id)
    found = []
    for watch in session.scalars(statement):
        period = DIGEST_PERIODS.get(watch.digest or "hourly", DIGEST_PERIODS["hourly"])
        if not force and watch.last_digest_at is not None and watch.last_digest_at + period > now:
            continue
        wanted = select(WatchMatch, Item).join(Item, Item.id == WatchMatch.item_id)
        wanted = wanted.where(WatchMatch.watch_id == watch.id, WatchMatch.digested_at.is_(None))
        if watch.webhook_url:
            wanted = wanted.where(WatchMatch.alerted.is_(False))
        rows = session.execute(wanted.order_by(WatchMatch.id).options(selectinload(Item.tags))).all()
        if not rows:
            continue
        by_story: dict[int, list[dict]] = {}
        for _match, item in rows:
            by_story.setdefault(item.story_id or item.id, []).append(item_payload(item, settings))
        titles = dict(session.execute(select(Item.id, Item.title).where(Item.id.in_(list(by_story)))).all())
        stories = [
            (titles.get(story) or items[0]["title"] or f"story {story}", items) for story, items in by_story.items()
        ]
        found.append(
            Digest(watch.id, watch.name, watch.email or "", watch.digest or "hourly", [m.id for m, _ in rows], stories)
        )
    return found


def mark_digested(session: Session, digest: Digest) -> None:
    now = utcnow()
    session.execute(update(WatchMatch).where(WatchMatch.id.in_(digest.match_ids)).values(digested_at=now))
    session.execute(update(Watch).where(Watch.id == digest.watch_id).values(last_digest_at=now))


def feed_entries(session: Session, watch_id: int, limit: int = 50) -> list[tuple[WatchMatch, Item]]:
    return recent(session, watch_id, limit)[0]

"""The URL ledger: every pushed URL's state, attempts and history, kept in the database.

States move forward one stage at a time::

    queued → fetched → cleaned → stripped → classified → stored
                 ↘ failed (permanent error, with reason)   ↘ dead (gave up after MIRSAD_MAX_ATTEMPTS)

Each change is a conditional update (``WHERE state = <expected>``), so a message
delivered twice, or a stage run by two workers at once, moves a URL only once.
``begin`` counts an attempt *before* a stage runs, so a page that kills its worker
every time still ends ``dead`` instead of looping forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .db import UrlEvent, UrlRecord, insert_unless_exists, pack, unpack, utcnow
from .urls import canonicalize, url_hash

ACTIVE_STATES = ("queued", "fetched", "cleaned", "stripped", "classified")
FINAL_STATES = ("stored", "failed", "dead")


@dataclass(frozen=True)
class Registration:
    url_id: int
    canonical_url: str
    created: bool
    state: str


@dataclass(frozen=True)
class Claim:
    """A stage's right to work on a URL: its id, input payload and which attempt this is."""

    url_id: int
    url: str
    url_hash: str
    attempt: int
    payload: dict | None


def register(session: Session, url: str) -> Registration:
    """Record a pushed URL as ``queued`` unless its canonical form is already known (raises InvalidURL)."""
    canonical = canonicalize(url)
    key = url_hash(canonical)
    now = utcnow()
    created = insert_unless_exists(session, UrlRecord, "url_hash", url_hash=key, url=url.strip(),
                                   canonical_url=canonical, state="queued", attempts=0, created_at=now, updated_at=now)
    record = session.execute(select(UrlRecord.id, UrlRecord.state).where(UrlRecord.url_hash == key)).one()
    if created:
        session.add(UrlEvent(url_id=record.id, state="queued", attempt=0, at=now, detail=url.strip()))
    return Registration(record.id, canonical, created, record.state)


def begin(session: Session, url_id: int, expected_state: str, max_attempts: int) -> Claim | None:
    """Count an attempt at the stage that takes ``expected_state``; None when the URL moved on or is now dead."""
    bumped = session.execute(
        update(UrlRecord).where(UrlRecord.id == url_id, UrlRecord.state == expected_state)
        .values(attempts=UrlRecord.attempts + 1, updated_at=utcnow())).rowcount
    if not bumped:
        return None
    record = session.get(UrlRecord, url_id, populate_existing=True)
    if record.attempts > max_attempts:
        _move(session, record, "dead", f"gave up after {max_attempts} attempts; last error: "
                                       f"{record.last_error or 'the worker died during the stage'}")
        return None
    return Claim(record.id, record.url, record.url_hash, record.attempts,
                 unpack(record.payload) if record.payload else None)


def advance(session: Session, claim: Claim, from_state: str, to_state: str, payload: dict | None,
            item_id: int | None = None) -> bool:
    """Move to the next state with the stage's output; False when another run got there first."""
    values = {"state": to_state, "attempts": 0, "last_error": None, "updated_at": utcnow(),
              "payload": pack(payload) if payload is not None else None}
    if item_id is not None:
        values["item_id"] = item_id
    moved = session.execute(update(UrlRecord).where(UrlRecord.id == claim.url_id, UrlRecord.state == from_state)
                            .values(**values)).rowcount == 1
    if moved:
        session.add(UrlEvent(url_id=claim.url_id, state=to_state, attempt=claim.attempt))
    return moved


def fail(session: Session, claim: Claim, from_state: str, reason: str) -> None:
    """A permanent failure: the URL ends ``failed`` with the reason."""
    record = session.get(UrlRecord, claim.url_id, populate_existing=True)
    if record is not None and record.state == from_state:
        _move(session, record, "failed", reason)


def note_retry(session: Session, claim: Claim, from_state: str, reason: str, max_attempts: int) -> bool:
    """Record a retryable failure; True when another attempt is allowed, False when the URL is now dead."""
    record = session.get(UrlRecord, claim.url_id, populate_existing=True)
    if record is None or record.state != from_state:
        return False
    if record.attempts >= max_attempts:
        _move(session, record, "dead", f"gave up after {record.attempts} attempts; last error: {reason}")
        return False
    record.last_error = reason
    record.updated_at = utcnow()
    session.add(UrlEvent(url_id=record.id, state=from_state, attempt=record.attempts, detail=f"retry: {reason}"))
    return True


def stuck(session: Session, older_than: timedelta, limit: int = 500) -> list[tuple[int, str]]:
    """(id, state) of URLs in a non-final state untouched for longer than ``older_than``, oldest first."""
    cutoff = utcnow() - older_than
    rows = session.execute(select(UrlRecord.id, UrlRecord.state)
                           .where(UrlRecord.state.in_(ACTIVE_STATES), UrlRecord.updated_at < cutoff)
                           .order_by(UrlRecord.updated_at).limit(limit))
    return [(row.id, row.state) for row in rows]


def touch(session: Session, url_id: int, state: str, detail: str) -> None:
    """Mark a URL as handled now (so the reconciler leaves it alone for another period) and log why."""
    session.execute(update(UrlRecord).where(UrlRecord.id == url_id, UrlRecord.state == state)
                    .values(updated_at=utcnow()))
    session.add(UrlEvent(url_id=url_id, state=state, detail=detail))


def counts_by_state(session: Session) -> dict[str, int]:
    return dict(session.execute(select(UrlRecord.state, func.count()).group_by(UrlRecord.state)).all())


def latest_failures(session: Session, limit: int = 10) -> list[UrlRecord]:
    return list(session.scalars(select(UrlRecord).where(UrlRecord.state.in_(("failed", "dead")))
                                .order_by(UrlRecord.updated_at.desc()).limit(limit)))


def find(session: Session, url_or_id: str) -> UrlRecord | None:
    """A URL's record by row id, pushed URL or any URL with the same canonical form."""
    if url_or_id.isdigit():
        return session.get(UrlRecord, int(url_or_id))
    return session.scalar(select(UrlRecord).where(UrlRecord.url_hash == url_hash(canonicalize(url_or_id))))


def _move(session: Session, record: UrlRecord, state: str, reason: str) -> None:
    record.state = state
    record.last_error = reason
    record.payload = None
    record.updated_at = utcnow()
    session.add(UrlEvent(url_id=record.id, state=state, attempt=record.attempts, detail=reason))

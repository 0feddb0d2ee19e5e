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

from sqlalchemy import Connection, Text, case, func, insert, literal, select, update
from sqlalchemy.orm import Session

from workers.core.topology import ACTIVE_STATES, FINAL_STATES, UrlState
from workers.core.urls import canonicalize, url_hash
from workers.storage.db import insert_unless_exists, pack, rowcount, unpack
from workers.storage.models import UrlEvent, UrlRecord, utcnow

# The Tables themselves (``__table__`` is typed as any FromClause, which insert and update do not take).
URLS = UrlRecord.metadata.tables[UrlRecord.__tablename__]
EVENTS = UrlEvent.metadata.tables[UrlEvent.__tablename__]
Executor = Session | Connection


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
    new_id = insert_unless_exists(
        session,
        UrlRecord,
        "url_hash",
        url_hash=key,
        url=url.strip(),
        canonical_url=canonical,
        state=UrlState.QUEUED,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    if new_id is not None:
        session.execute(
            insert(EVENTS).values(url_id=new_id, state=UrlState.QUEUED, attempt=0, at=now, detail=url.strip())
        )
        return Registration(new_id, canonical, True, UrlState.QUEUED)
    known = session.execute(select(URLS.c.id, URLS.c.state).where(URLS.c.url_hash == key)).one()
    return Registration(known.id, canonical, False, known.state)


def begin(
    db: Executor, url_id: int, expected_state: str, max_attempts: int, reclaim: int | None = None
) -> Claim | None:
    """Count an attempt at the stage that takes ``expected_state``; None when the URL moved on or is now dead.

    ``reclaim``: an attempt a database outage interrupted after its claim; it is taken again instead of
    counting a new one, unless another run has claimed the URL since. One statement, so it needs no
    transaction of its own.
    """
    attempts = URLS.c.attempts + 1
    if reclaim is not None:
        attempts = case((URLS.c.attempts == reclaim, URLS.c.attempts), else_=attempts)
    row = db.execute(
        update(URLS)
        .where(URLS.c.id == url_id, URLS.c.state == expected_state)
        .values(attempts=attempts, updated_at=utcnow())
        .returning(URLS.c.url, URLS.c.url_hash, URLS.c.attempts, URLS.c.payload, URLS.c.last_error)
    ).first()
    if row is None:
        return None
    if row.attempts > max_attempts:
        _transition(
            db,
            url_id,
            expected_state,
            row.attempts,
            UrlState.DEAD,
            f"gave up after {max_attempts} attempts; last error: "
            f"{row.last_error or 'the worker died during the stage'}",
        )
        return None
    return Claim(url_id, row.url, row.url_hash, row.attempts, unpack(row.payload) if row.payload else None)


def advance(
    db: Executor,
    claim: Claim,
    from_state: str,
    to_state: str,
    payload: dict | None,
    item_id: int | None = None,
    detail: str | None = None,
    alias_of: int | None = None,
) -> bool:
    """Move to the next state with the stage's output; False when another run got there first.

    ``alias_of``: the page is an item already stored from another URL (``detail`` says so in the history).
    """
    values = {"attempts": 0, "last_error": None, "payload": pack(payload) if payload is not None else None}
    if item_id is not None:
        values["item_id"] = item_id
    if alias_of is not None:
        values["alias_of"] = alias_of
    return _transition(db, claim.url_id, from_state, claim.attempt, to_state, detail, **values)


def advance_and_begin(db: Executor, claim: Claim, from_state: str, to_state: str, payload: dict) -> Claim | None:
    """Move to the next state with the stage's output and claim the first attempt of the stage that takes it,
    in one update (its event included): the hop between two stages run back to back by one worker.
    The next stage's Claim (its input is ``payload`` itself), or None when another run got there first.

    The output is saved all the same: a crash during the next stage resumes from it.
    """
    moved = _transition(
        db, claim.url_id, from_state, claim.attempt, to_state, None, attempts=1, last_error=None, payload=pack(payload)
    )
    return Claim(claim.url_id, claim.url, claim.url_hash, 1, payload) if moved else None


def fail(db: Executor, claim: Claim, from_state: str, reason: str) -> None:
    """A permanent failure: the URL ends ``failed`` with the reason."""
    _transition(db, claim.url_id, from_state, claim.attempt, UrlState.FAILED, reason)


def note_retry(db: Executor, claim: Claim, from_state: str, reason: str, max_attempts: int) -> bool:
    """Record a retryable failure; True when another attempt is allowed, False when the URL is now dead."""
    if claim.attempt >= max_attempts:
        _transition(
            db,
            claim.url_id,
            from_state,
            claim.attempt,
            UrlState.DEAD,
            f"gave up after {claim.attempt} attempts; last error: {reason}",
        )
        return False
    return _transition(db, claim.url_id, from_state, claim.attempt, from_state, f"retry: {reason}", last_error=reason)


def stuck(db: Executor, older_than: timedelta, limit: int = 500) -> list[tuple[int, str]]:
    """(id, state) of URLs in a non-final state untouched for longer than ``older_than``, oldest first."""
    cutoff = utcnow() - older_than
    rows = db.execute(
        select(URLS.c.id, URLS.c.state)
        .where(URLS.c.state.in_(ACTIVE_STATES), URLS.c.updated_at < cutoff)
        .order_by(URLS.c.updated_at)
        .limit(limit)
    )
    return [(row.id, row.state) for row in rows]


def reopen(db: Executor, url_id: int, from_state: str, to_state: str, detail: str) -> bool:
    """Put a failed or dead URL back in ``to_state`` with a fresh count of attempts (a requeue);
    False when it was no longer in ``from_state``."""
    return _transition(db, url_id, from_state, 0, to_state, detail, attempts=0, last_error=None)


def touch(db: Executor, url_id: int, state: str, detail: str) -> None:
    """Mark a URL as handled now (so the reconciler leaves it alone for another period) and log why."""
    _transition(db, url_id, state, None, state, detail)


def _transition(
    db: Executor, url_id: int, from_state: str, attempt: int | None, to_state: str, detail: str | None, **values
) -> bool:
    """Move a URL from ``from_state`` and log the event; False when it was no longer in ``from_state``.

    On PostgreSQL the update and the event are one statement (a data-modifying CTE), so a stage's
    ledger work is two round trips in all; SQLite runs the two statements in the caller's transaction.
    """
    now = utcnow()
    if to_state == UrlState.STORED:  # the item holds it all now
        values = {"payload": None, "last_error": detail, **values}
    elif to_state in FINAL_STATES:  # failed or dead keep the input of the stage that failed, for a requeue
        values = {"last_error": detail, **values}
    moved = (
        update(URLS)
        .where(URLS.c.id == url_id, URLS.c.state == from_state)
        .values(state=to_state, updated_at=now, **values)
    )
    event = {
        "state": literal(to_state),
        "at": literal(now, UrlEvent.at.type),
        "attempt": literal(attempt if attempt is not None else 0),
        "detail": literal(detail, Text()),
    }
    if (db.get_bind() if isinstance(db, Session) else db).dialect.name == "postgresql":
        step = moved.returning(URLS.c.id).cte("moved")
        statement = insert(EVENTS).from_select(["url_id", *event], select(step.c.id, *event.values()))
        return db.execute(statement.returning(EVENTS.c.url_id)).first() is not None
    if rowcount(db.execute(moved)) != 1:
        return False
    db.execute(insert(EVENTS).values(url_id=url_id, state=to_state, at=now, attempt=attempt or 0, detail=detail))
    return True


def counts_by_state(session: Session) -> dict[str, int]:
    return dict(session.execute(select(UrlRecord.state, func.count()).group_by(UrlRecord.state)).all())


def latest_failures(session: Session, limit: int = 10) -> list[UrlRecord]:
    return list(
        session.scalars(
            select(UrlRecord)
            .where(UrlRecord.state.in_((UrlState.FAILED, UrlState.DEAD)))
            .order_by(UrlRecord.updated_at.desc())
            .limit(limit)
        )
    )


def find(session: Session, url_or_id: str) -> UrlRecord | None:
    """A URL's record by row id, pushed URL or any URL with the same canonical form."""
    if url_or_id.isdigit():
        return session.get(UrlRecord, int(url_or_id))
    return session.scalar(select(UrlRecord).where(UrlRecord.url_hash == url_hash(canonicalize(url_or_id))))

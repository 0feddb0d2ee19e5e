"""Replay: put failed or dead URLs back to the stage they failed at, with a fresh count of attempts.

The ledger keeps a failed URL's last input (the previous stage's output), so a URL that failed in
classify because of a typo in a vocabulary starts again at classify, not at fetch; one whose input
is gone (a URL that failed before this rule) starts again at fetch. The URL's history says who
requeued it. ``mirsad requeue`` calls this, and so will the API and the web page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from workers.core.topology import ACTIVE_STATES, UrlState
from workers.core.urls import site_of
from workers.storage import ledger
from workers.storage.models import UrlEvent, UrlRecord

REPLAYABLE = (UrlState.FAILED, UrlState.DEAD)


@dataclass(frozen=True)
class Requeued:
    url_id: int
    url: str
    was: str  # failed or dead
    reason: str | None
    to_state: str  # the state it is back in: the stage that takes it runs next


def resume_state(session: Session, record: UrlRecord) -> UrlState:
    """The state the URL was in when its stage failed (its last non-final event), or queued when the
    stage's input is gone."""
    state = session.scalar(
        select(UrlEvent.state)
        .where(UrlEvent.url_id == record.id, UrlEvent.state.in_(ACTIVE_STATES))
        .order_by(UrlEvent.id.desc())
        .limit(1)
    )
    if state is None or (state != UrlState.QUEUED and record.payload is None):
        return UrlState.QUEUED
    return UrlState(state)


def matching(
    session: Session,
    states: Sequence[str] = REPLAYABLE,
    reason: str | None = None,
    since: datetime | None = None,
    site: str | None = None,
    targets: Sequence[str] = (),
    limit: int | None = None,
) -> list[UrlRecord]:
    """Failed/dead URLs by filter: ``reason`` a case-insensitive part of the last error, ``since`` ended at or
    after, ``site`` as ``site_of`` folds it, ``targets`` URLs, url ids (``N`` or ``url:N``) or item ids (``item:N``)."""
    query = select(UrlRecord).where(UrlRecord.state.in_(states)).order_by(UrlRecord.id)
    if reason:
        query = query.where(UrlRecord.last_error.ilike(f"%{reason}%"))
    if since is not None:
        query = query.where(UrlRecord.updated_at >= since)
    if targets:
        ids = {record.id for target in targets if (record := find_target(session, target)) is not None}
        query = query.where(UrlRecord.id.in_(ids))
    records = list(session.scalars(query))
    if site:
        wanted = site_of(site)
        records = [record for record in records if site_of(record.canonical_url) == wanted]
    return records[:limit] if limit else records


def find_target(session: Session, target: str) -> UrlRecord | None:
    """A URL record by ``url:N`` / ``N`` (url id), ``item:N`` (the URL that stored item N) or a URL."""
    kind, sep, number = target.partition(":")
    if sep and number.isdigit() and kind in ("url", "item"):
        if kind == "url":
            return session.get(UrlRecord, int(number))
        return session.scalar(select(UrlRecord).where(UrlRecord.item_id == int(number)).limit(1))
    return ledger.find(session, target)


def requeue(session: Session, records: Sequence[UrlRecord], by: str, dry_run: bool = False) -> list[Requeued]:
    """Move each record back to the state its stage takes, attempts reset, "requeued by ``by``" in its history.
    The caller sends each URL's stage after the commit (``runtime.replay``); a dry run changes nothing."""
    done = []
    for record in records:
        to_state = resume_state(session, record)
        was, reason = record.state, record.last_error
        if dry_run or ledger.reopen(session, record.id, was, to_state, f"requeued by {by} (was {was}: {reason})"):
            done.append(Requeued(record.id, record.url, was, reason, to_state))
    return done

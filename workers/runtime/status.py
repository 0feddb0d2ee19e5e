"""What the pipeline is doing, for ``GET /status`` and ``GET /metrics``: queue depths, states, failures.

The same figures ``mirsad status --json`` prints; everything comes from the ledger except queue
depths, which come from the broker (reported as ``"? (Error)"`` when it cannot be reached).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workers.core.settings import get_settings
from workers.core.topology import FINAL_STATES, TASK_ROUTES, UrlState
from workers.runtime.deployment import attached, broker_client
from workers.storage import health, ledger, sources
from workers.storage.models import Item, UrlEvent, UrlRecord

QUEUES = tuple(sorted({route["queue"] for route in TASK_ROUTES.values()}))
LATENCY_WINDOW = timedelta(hours=1)
LATENCY_EVENTS = 20_000  # the latest moves read for the latency histograms, at most


def queue_depths() -> dict[str, int | str]:
    """Messages waiting per queue (Redis list lengths); a string saying why when the broker is away."""
    from workers.runtime.celery_app import app

    try:
        with app.connection_for_read() as connection:
            client = connection.default_channel.client
            return {queue: client.llen(queue) for queue in QUEUES}
    except Exception as exc:  # the broker may be down; the database still answers
        return {queue: f"? ({type(exc).__name__})" for queue in QUEUES}


def attached_processes() -> list[dict] | None:
    """The workers and beat beating on the broker now (``runtime.deployment.attached``); None when it is down."""
    try:
        return attached(broker_client(get_settings()))
    except redis.RedisError:
        return None


def status_report(session: Session) -> dict:
    """``mirsad status --json`` and ``GET /status``: queues, URLs per state, the latest failures, the sources and
    sites needing a look, and the workers and beat attached (None when the broker is down)."""
    return {
        "queues": queue_depths(),
        "states": ledger.counts_by_state(session),
        "latest_failures": [
            {"url": r.url, "state": r.state, "reason": r.last_error, "at": r.updated_at.isoformat()}
            for r in ledger.latest_failures(session)
        ],
        "flagged_sources": sources.flagged(session, datetime.now(UTC)),
        "flagged_sites": [site.to_dict() for site in health.flagged(session)],
        "processes": attached_processes(),
    }


def items_stored(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Item)) or 0


def failures_by_class(session: Session) -> dict[str, int]:
    """Failed and dead URLs per error class (the part of the reason before the colon)."""
    counts: dict[str, int] = {}
    rows = session.execute(
        select(UrlRecord.last_error, func.count())
        .where(UrlRecord.state.in_((UrlState.FAILED, UrlState.DEAD)))
        .group_by(UrlRecord.last_error)
    )
    for reason, count in rows:
        kind = (reason or "unknown").split(":", 1)[0].strip() or "unknown"
        counts[kind] = counts.get(kind, 0) + count
    return counts


def oldest_queued_age(session: Session) -> float:
    """Seconds the longest-waiting queued URL has waited (0 when none waits)."""
    oldest = session.scalar(select(func.min(UrlRecord.updated_at)).where(UrlRecord.state == UrlState.QUEUED))
    if oldest is None:
        return 0.0
    return max(0.0, (datetime.now(UTC) - _aware(oldest)).total_seconds())


def stage_latencies(session: Session) -> dict[str, list[float]]:
    """Seconds each stage took in the last hour: from a URL's previous move to the move into the stage's
    state (fetched = fetch, …), read from the ledger's history, so every worker's work counts."""
    since = datetime.now(UTC) - LATENCY_WINDOW
    previous = func.lag(UrlEvent.at).over(partition_by=UrlEvent.url_id, order_by=UrlEvent.id)
    moves = (
        select(UrlEvent.state, UrlEvent.at, previous.label("before"))
        .where(UrlEvent.at >= since)
        .order_by(UrlEvent.id.desc())
        .limit(LATENCY_EVENTS)
        .subquery()
    )
    found: dict[str, list[float]] = {}
    for state, at, before in session.execute(select(moves.c.state, moves.c.at, moves.c.before)):
        if before is None or state in (UrlState.QUEUED, *[s for s in FINAL_STATES if s != UrlState.STORED]):
            continue
        found.setdefault(state, []).append(max(0.0, (_aware(at) - _aware(before)).total_seconds()))
    return found


def _aware(moment: datetime | str) -> datetime:
    """A UTC datetime from what an aggregate or window function returns (text and naive on SQLite)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

"""Pushing URLs: the ledger row is written before the message, so no pushed URL is ever only in Redis."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from kombu.exceptions import OperationalError as BrokerError

from workers.core.errors import InvalidURL
from workers.core.topology import STAGE_FOR_STATE, PushVerdict, UrlState
from workers.runtime.dispatch import send_stage
from workers.storage import ledger
from workers.storage.db import session_scope


@dataclass(frozen=True)
class PushResult:
    url: str
    outcome: PushVerdict
    detail: str
    url_id: int | None = None


def push(urls: Iterable[str], database_url: str | None = None, enqueue: bool = True) -> Iterator[PushResult]:
    """Validate, record and enqueue each URL, yielding what happened to it (``enqueue=False``: record only)."""
    for url in urls:
        try:
            with session_scope(database_url) as session:
                registration = ledger.register(session, url)
        except InvalidURL as exc:
            yield PushResult(url, PushVerdict.REJECTED, str(exc))
            continue
        if not registration.created:
            yield PushResult(
                url,
                PushVerdict.KNOWN,
                f"already known as url:{registration.url_id} ({registration.state}"
                + (f", item {registration.item_id})" if registration.item_id is not None else ")"),
                registration.url_id,
            )
            continue
        if not enqueue:
            yield PushResult(url, PushVerdict.ACCEPTED, f"recorded as url:{registration.url_id}", registration.url_id)
            continue
        try:
            send_stage(STAGE_FOR_STATE[UrlState.QUEUED], registration.url_id)
            detail = f"queued as url:{registration.url_id}"
        except BrokerError as exc:
            detail = (
                f"recorded as url:{registration.url_id}; broker unreachable ({exc}), the reconciler will enqueue it"
            )
        yield PushResult(url, PushVerdict.ACCEPTED, detail, registration.url_id)

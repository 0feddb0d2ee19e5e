"""Replay failed or dead URLs: the ledger moves first, then each URL's stage is sent (``storage.replay``).

The one function behind ``mirsad requeue`` (and the API and web page to come). A message that
cannot be sent (the broker is down) is not lost: the URL is in an active state, so the
reconciler sends it after MIRSAD_RECONCILE_AFTER.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from kombu.exceptions import OperationalError as BrokerError

from workers.core.topology import STAGE_FOR_STATE, UrlState
from workers.runtime.dispatch import send_stage
from workers.storage import replay
from workers.storage.db import session_scope
from workers.storage.replay import REPLAYABLE, Requeued

log = logging.getLogger("mirsad.replay")


def requeue(
    by: str,
    states: Sequence[str] = REPLAYABLE,
    reason: str | None = None,
    since: datetime | None = None,
    site: str | None = None,
    targets: Sequence[str] = (),
    dry_run: bool = False,
    database_url: str | None = None,
) -> list[Requeued]:
    """Requeue the failed/dead URLs that match (see ``storage.replay.matching``); what was (or would be) requeued."""
    with session_scope(database_url) as session:
        records = replay.matching(session, states, reason, since, site, targets)
        done = replay.requeue(session, records, by, dry_run)
    if dry_run:
        return done
    for requeued in done:
        try:
            send_stage(STAGE_FOR_STATE[UrlState(requeued.to_state)], requeued.url_id)
        except BrokerError as exc:
            log.warning("url_id=%s requeued but not sent (%s); the reconciler will send it", requeued.url_id, exc)
    return done

"""The watches' Celery tasks: match a stored item, deliver a webhook, send digests, sweep up after losses.

Matching runs on its own queue (``watches``) after store, so a thousand watches never slow the chain;
deliveries and digests are network I/O, on ``deliveries`` (the fetch worker's threads). Every step
is recorded in the database first (``storage.watches``), and the sweeper (beat) re-sends what a
killed worker or a lost message left, so an alert is delivered even then, and once: the database's
unique keys make a second match or delivery of the same (watch, item) impossible.
"""

from __future__ import annotations

import logging
import time

from workers.core.errors import DatabaseUnavailable, MirsadError
from workers.core.settings import get_settings
from workers.core.topology import DELIVER_WEBHOOK_TASK, MATCH_WATCHES_TASK, SEND_DIGESTS_TASK, SWEEP_WATCHES_TASK
from workers.runtime.celery_app import app
from workers.runtime.dispatch import send_delivery, send_match
from workers.runtime.tasks import backoff
from workers.stages import alerts
from workers.storage import watches
from workers.storage.db import session_scope

log = logging.getLogger("mirsad.watches")
MATCH_LEASE = 60.0  # seconds a matching run holds an item before the sweeper may give it to another
LEASE_MARGIN = 5.0  # seconds beyond the webhook timeout before a delivery in flight counts as lost


def match_item(item_id: int) -> list[int]:
    """Match one stored item against every watch and record the alerts; the deliveries to send."""
    settings = get_settings()
    started = time.monotonic()
    with session_scope(durable=False) as session:
        if not watches.claim_inbox(session, item_id, MATCH_LEASE):
            return []  # matched already, or being matched: a second message (the sweeper's, a retried task)
    with session_scope(durable=False) as session:
        item = watches.load_item(session, item_id)
        if item is None:
            return []  # deleted since it was stored: its inbox row went with it
        index = watches.watch_index(session)
        matched = index.matching(watches.features_of(session, item)) if index.size else []
        created = watches.record_matches(session, item, matched, settings)
    log.info(
        "item %s matched %d watch(es) of %d in %.1f ms",
        item_id,
        len(matched),
        index.size,
        (time.monotonic() - started) * 1000,
    )
    return created or []


@app.task(name=MATCH_WATCHES_TASK, bind=True, max_retries=None)
def match_watches(self, item_id: int) -> int:
    """Match one newly stored item against the watches, then send its alerts."""
    try:
        created = match_item(item_id)
    except DatabaseUnavailable as exc:
        raise self.retry(countdown=backoff(self.request.retries + 1, get_settings())) from exc
    for delivery_id in created:
        send_delivery(delivery_id)
    return len(created)


def deliver(delivery_id: int) -> str | None:
    """One attempt at one webhook delivery; its new state (None: not due, or not pending: nothing done)."""
    settings = get_settings()
    with session_scope() as session:
        claimed = watches.claim_delivery(session, delivery_id, settings.webhook_timeout + LEASE_MARGIN)
    if claimed is None:
        return None
    outcome = alerts.send_webhook(claimed.url, claimed.secret, claimed.message_id, claimed.body, settings)
    retry_in = backoff(claimed.attempt, settings, outcome.retry_after) if outcome.retryable else None
    with session_scope() as session:
        state = watches.finish_delivery(session, claimed, outcome, retry_in, settings.webhook_max_attempts)
    if state == "pending":
        log.warning("delivery %s attempt %d: %s; again in %.1fs", delivery_id, claimed.attempt, outcome.error, retry_in)
        send_delivery(delivery_id, countdown=retry_in)
    elif state == "dead":
        log.warning("delivery %s dead after %d attempt(s): %s", delivery_id, claimed.attempt, outcome.error)
    return state


@app.task(name=DELIVER_WEBHOOK_TASK, bind=True, max_retries=None)
def deliver_webhook(self, delivery_id: int) -> str | None:
    """Send one webhook delivery (signed), recording the attempt; a later attempt is sent if it failed."""
    try:
        return deliver(delivery_id)
    except DatabaseUnavailable as exc:
        raise self.retry(countdown=backoff(self.request.retries + 1, get_settings())) from exc


def send_due_digests(force: bool = False, name: str | None = None) -> int:
    """E-mail every digest that is due (``force``: now, whatever the period); the number sent."""
    settings = get_settings()
    if not settings.smtp_url:
        return 0
    with session_scope() as session:
        due = watches.due_digests(session, settings, force=force, name=name)
    sent = 0
    for digest in due:
        message = alerts.digest_message(settings.smtp_from, digest.email, digest.name, digest.stories, digest.period)
        try:
            alerts.send_email(message, settings)
        except MirsadError as exc:
            log.warning("digest of watch %r not sent: %s (tried again at the next run)", digest.name, exc.reason)
            continue
        with session_scope() as session:
            watches.mark_digested(session, digest)
        sent += 1
    return sent


@app.task(name=SEND_DIGESTS_TASK)
def send_digests() -> int:
    """Beat: send the e-mail digests whose period has passed."""
    return send_due_digests()


@app.task(name=SWEEP_WATCHES_TASK)
def sweep_watches() -> int:
    """Beat: send again the matches and deliveries whose messages were lost (killed worker, broker restart)."""
    settings = get_settings()
    with session_scope() as session:
        found = watches.sweep(session, settings.watch_sweep_after)
    for item_id in found.items:
        send_match(item_id)
    for delivery_id in found.deliveries:
        send_delivery(delivery_id)
    if found.items or found.deliveries:
        log.warning("sweeper re-sent %d match(es) and %d delivery(ies)", len(found.items), len(found.deliveries))
    return len(found.items) + len(found.deliveries)

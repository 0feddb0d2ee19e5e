"""The pipeline's shape as data: URL states, stages, queues and task names, with no code attached.

The Celery app routes from this module and the dispatcher sends tasks by these names, so neither
needs to import a stage (trafilatura, lxml, numpy…) to know where a message goes. Task and queue
names are a contract with messages already queued: change them only with a migration of the queues.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum


class UrlState(StrEnum):
    """Where a URL is in the pipeline; the value is the text stored in the ledger and shown in JSON."""

    QUEUED = "queued"
    FETCHED = "fetched"
    CLEANED = "cleaned"
    STRIPPED = "stripped"
    CLASSIFIED = "classified"
    STORED = "stored"
    FAILED = "failed"
    DEAD = "dead"


ACTIVE_STATES = (UrlState.QUEUED, UrlState.FETCHED, UrlState.CLEANED, UrlState.STRIPPED, UrlState.CLASSIFIED)
FINAL_STATES = (UrlState.STORED, UrlState.FAILED, UrlState.DEAD)


class StepResult(StrEnum):
    """What one attempt at one stage did."""

    ADVANCED = "advanced"  # the stage ran and the URL moved on
    SKIPPED = "skipped"  # nothing to do: another run did it, or the URL is final
    FAILED = "failed"  # a permanent error: the page, not luck
    RETRY = "retry"  # a retryable error, attempts left
    DEAD = "dead"  # a retryable error, no attempts left


class PushVerdict(StrEnum):
    """What pushing one URL did."""

    ACCEPTED = "accepted"
    KNOWN = "known"
    REJECTED = "rejected"


@dataclass(frozen=True)
class StageSpec:
    """One hop: consumes URLs in state ``takes`` from its own queue and leaves them in ``gives``."""

    name: str
    takes: UrlState
    gives: UrlState

    @property
    def queue(self) -> str:
        return self.name

    @property
    def task_name(self) -> str:
        return f"mirsad.{self.name}"


STAGES = (
    StageSpec("fetch", UrlState.QUEUED, UrlState.FETCHED),
    StageSpec("clean", UrlState.FETCHED, UrlState.CLEANED),
    StageSpec("strip", UrlState.CLEANED, UrlState.STRIPPED),
    StageSpec("classify", UrlState.STRIPPED, UrlState.CLASSIFIED),
    StageSpec("store", UrlState.CLASSIFIED, UrlState.STORED),
)
STAGE_FOR_STATE = {stage.takes: stage for stage in STAGES}
NEXT_STAGE = {stage.name: STAGE_FOR_STATE.get(stage.gives) for stage in STAGES}

RECONCILE_TASK = "mirsad.reconcile"
POLL_SOURCES_TASK = "mirsad.poll_sources"
POLL_SOURCE_TASK = "mirsad.poll_source"
MATCH_WATCHES_TASK = "mirsad.match_watches"
DELIVER_WEBHOOK_TASK = "mirsad.deliver_webhook"
SEND_DIGESTS_TASK = "mirsad.send_digests"
SWEEP_WATCHES_TASK = "mirsad.sweep_watches"
MAINTENANCE_QUEUE = "maintenance"
FETCH_QUEUE = "fetch"
WATCHES_QUEUE = "watches"  # matching stored items against the watches: CPU, off the chain
DELIVERIES_QUEUE = "deliveries"  # webhooks and SMTP: network, like fetching
IO_QUEUES = (FETCH_QUEUE, DELIVERIES_QUEUE)  # network-bound: the fetch worker's threads (pages, polls, deliveries)
CPU_QUEUES = tuple(stage.queue for stage in STAGES if stage.queue not in IO_QUEUES) + (MAINTENANCE_QUEUE, WATCHES_QUEUE)

# Every task and its queue, in one table; tests check that every registered task has a route.
TASK_ROUTES = {stage.task_name: {"queue": stage.queue} for stage in STAGES} | {
    RECONCILE_TASK: {"queue": MAINTENANCE_QUEUE},
    POLL_SOURCES_TASK: {"queue": MAINTENANCE_QUEUE},
    POLL_SOURCE_TASK: {"queue": FETCH_QUEUE},  # polling a source is network I/O, like fetching a page
    MATCH_WATCHES_TASK: {"queue": WATCHES_QUEUE},
    DELIVER_WEBHOOK_TASK: {"queue": DELIVERIES_QUEUE},
    SEND_DIGESTS_TASK: {"queue": DELIVERIES_QUEUE},
    SWEEP_WATCHES_TASK: {"queue": MAINTENANCE_QUEUE},
}


def arrivals_channel(broker_url: str) -> str:
    """The Redis pub/sub channel on which the store step announces each stored item's id.

    Pub/sub channels are shared by every database of a Redis server, so the name carries the broker
    URL's digest: two deployments on one server (other database numbers) never hear each other."""
    return "mirsad.arrivals." + hashlib.sha256(broker_url.encode("utf-8")).hexdigest()[:16]

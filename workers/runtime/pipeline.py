"""The pipeline's topology, declared in one place: stages, their queues and the states they move.

Each stage reads its input from the URL's ledger row (the previous stage's
output) and returns its own output; Celery tasks (``tasks.py``) and the
in-process path (``mirsad extract``, the benchmark) both walk this list, so
the two cannot drift apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from workers.core.document import Document
from workers.core.errors import DatabaseUnavailable, PermanentError, RetryableError
from workers.core.settings import get_settings
from workers.core.topology import STAGES, StageSpec, StepResult, UrlState
from workers.core.urls import site_of
from workers.intake import politeness
from workers.stages import stories
from workers.stages.classify import classify
from workers.stages.clean import clean
from workers.stages.fetch import FetchResult
from workers.stages.strip import strip
from workers.storage import ledger, sites, sources, watches
from workers.storage.db import session_scope, step_scope
from workers.storage.ledger import Claim
from workers.storage.models import UrlRecord
from workers.storage.store import StoredItem, store_item


@dataclass(frozen=True)
class Step:
    """A stage of the topology with its code: ``run`` the pure stage on the claimed input, ``persist``
    its output (the store stage), ``gate`` before the claim (0, or seconds to wait: requeue, no attempt)."""

    spec: StageSpec
    run: Callable[[Claim], dict]
    persist: Callable[[Session, Claim, dict], StoredItem] | None = None
    gate: Callable[[int], float] | None = None

    @property
    def name(self) -> str:
        return self.spec.name


def fetch_stage(claim: Claim) -> dict:
    return politeness.fetch_page(claim.url).to_dict()


def fetch_gate(url_id: int) -> float:
    """Take the turn of the URL's host before the claim, so that waiting for a busy host costs no attempt:
    0.0 when the turn is ours, else the seconds until the host is free."""
    with step_scope() as step:
        url = step.execute(
            select(UrlRecord.url).where(UrlRecord.id == url_id, UrlRecord.state == UrlState.QUEUED)
        ).scalar()
    return politeness.take_turn(url) if url else 0.0


def clean_stage(claim: Claim) -> dict:
    page = FetchResult.from_dict(_input(claim))
    document = clean(page.html, url=page.final_url, fetched_at=page.fetched_at)
    return sources.apply_hints(document, claim.url_hash).to_dict()  # the feed's title and date when the page has none


def strip_stage(claim: Claim) -> dict:
    """Strip with what the site has taught: its lines seen in other articles go, and this
    article's lines are counted for the articles to come (shared by all workers in the database)."""
    document = Document.from_dict(_input(claim))
    site = site_of(document.url or claim.url)
    with session_scope(durable=False) as session:
        learned = sites.observe(
            session, site, claim.url_hash, document.text.split("\n"), get_settings().site_line_min_articles
        )
    return strip(document, site_lines=learned).to_dict()


def classify_stage(claim: Claim) -> dict:
    return tag_document(Document.from_dict(_input(claim))).to_dict()


def store_stage(claim: Claim) -> dict:
    return _input(claim)


def _input(claim: Claim) -> dict:
    """The previous stage's output, which every stage after fetch reads."""
    if claim.payload is None:
        raise ValueError(f"URL {claim.url_id} has no output of the previous stage to work on")
    return claim.payload


def persist_item(session: Session, claim: Claim, output: dict) -> StoredItem:
    stored = store_item(session, claim.url_hash, claim.url, Document.from_dict(output))
    watches.enqueue_item(session, stored.item_id)  # the watches' outbox, committed with the item
    return stored


def tag_document(document: Document) -> Document:
    """The Document with its tags, and its language set from the language tag when there is one."""
    tags = classify(document)
    language = next((t.value for t in tags if t.kind == "language"), document.language)
    return document.replace(tags=tags, language=language)


STEPS = {
    step.name: step
    for step in (
        Step(STAGES[0], run=fetch_stage, gate=fetch_gate),
        Step(STAGES[1], run=clean_stage),
        Step(STAGES[2], run=strip_stage),
        Step(STAGES[3], run=classify_stage),
        Step(STAGES[4], run=store_stage, persist=persist_item),
    )
}
assert list(STEPS) == [stage.name for stage in STAGES], "a step for every stage of the topology, in order"


@dataclass(frozen=True)
class StepOutcome:
    """What one attempt at one stage did: advanced, skipped (nothing to do), failed, retry or dead.

    ``next_claim``: when the advance also claimed the following stage (``run_step(then=…)``), its claim.
    """

    outcome: StepResult
    attempt: int = 0
    reason: str | None = None
    retry_after: float | None = None
    elapsed_ms: float = 0.0
    next_claim: Claim | None = None
    item_id: int | None = None  # the store stage: the new item stored (not when the URL was an alias)


def run_step(
    stage: Step,
    url_id: int,
    max_attempts: int | None = None,
    claim: Claim | None = None,
    then: Step | None = None,
    reclaim: int | None = None,
) -> StepOutcome:
    """One attempt at ``stage`` for one URL, with the ledger around it; no Celery involved.

    Claims the URL (counting the attempt), runs the pure stage function, then saves its output
    and moves the state in one step. ``claim``: the attempt is already claimed (by the previous
    stage's advance); ``then``: the stage this worker runs next, whose first attempt the advance
    claims in the same update (``ledger.advance_and_begin``); ``reclaim``: the attempt a database
    outage interrupted, taken again (``ledger.begin``). Database outages propagate as
    DatabaseUnavailable, carrying the attempt claimed so far. ``max_attempts``: the stage's own
    limit (the retry policy in ``runtime.tasks``), else the setting.
    """
    started = time.monotonic()
    max_attempts = max_attempts or get_settings().max_attempts
    if claim is None:
        with step_scope() as db:
            claim = ledger.begin(db, url_id, stage.spec.takes, max_attempts, reclaim)
        if claim is None:
            return StepOutcome(StepResult.SKIPPED)
    try:
        return _attempt(stage, claim, max_attempts, then, started)
    except DatabaseUnavailable as exc:
        exc.claimed_attempt = claim.attempt
        raise


def _attempt(stage: Step, claim: Claim, max_attempts: int, then: Step | None, started: float) -> StepOutcome:
    """Run the claimed stage and record what it did (``run_step`` without the claim)."""
    takes, gives = stage.spec.takes, stage.spec.gives
    try:
        output = stage.run(claim)
    except PermanentError as exc:
        with step_scope() as db:
            ledger.fail(db, claim, takes, exc.reason)
        return StepOutcome(StepResult.FAILED, claim.attempt, exc.reason)
    except DatabaseUnavailable:
        raise  # not the page's fault, and the ledger cannot record it: the task retries until the database is back
    except Exception as exc:  # retryable, or a bug that may not recur: bounded by max_attempts either way
        reason = exc.reason if isinstance(exc, RetryableError) else f"{type(exc).__name__}: {exc}"
        with step_scope() as db:
            again = ledger.note_retry(db, claim, takes, reason, max_attempts)
        return StepOutcome(
            StepResult.RETRY if again else StepResult.DEAD, claim.attempt, reason, getattr(exc, "retry_after", None)
        )
    next_claim = None
    item_id = None
    if stage.persist:  # the item, its tags, its story and the state move commit together
        with session_scope(durable=False) as session:
            stored = stage.persist(session, claim, output)
            moved = ledger.advance(session, claim, takes, gives, None, stored.item_id, stored.detail, stored.alias_of)
        item_id = stored.item_id if moved and stored.alias_of is None else None  # a new item, not an alias
    elif then is not None:
        with step_scope() as db:
            next_claim = ledger.advance_and_begin(db, claim, takes, gives, output)
        moved = next_claim is not None
    else:
        with step_scope() as db:
            moved = ledger.advance(db, claim, takes, gives, output)
    return StepOutcome(
        StepResult.ADVANCED if moved else StepResult.SKIPPED,
        claim.attempt,
        elapsed_ms=(time.monotonic() - started) * 1000,
        next_claim=next_claim,
        item_id=item_id,
    )


def extract(html: str, url: str | None = None, fetched_at: str | None = None) -> Document:
    """clean → strip → classify in this process: no queue, no database (``mirsad extract``)."""
    return tag_document(strip(clean(html, url=url, fetched_at=fetched_at)))


def extract_text(text: str) -> Document:
    """strip → classify on already extracted plain text, such as the output of another extractor."""
    return tag_document(strip(Document(text=text)))


def warm_up() -> None:
    """Load strip's markers, classify's vocabularies and language model, and the story signature's MinHash,
    before a worker consumes (and before a prefork pool forks, so children inherit them) instead of
    spending a second on the first item."""
    stories.signature(extract_text("Türkiye ile Libya arasında askeri eğitim anlaşması imzalandı."))

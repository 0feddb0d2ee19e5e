"""Celery tasks: thin wrappers that walk ``pipeline.STAGES`` with the ledger around each stage.

A stage task claims its URL (counting the attempt), runs the pure stage
function, then in one transaction saves the output and moves the state on,
and finally enqueues the next stage. Retryable errors retry with exponential
backoff and jitter (honouring Retry-After); permanent ones end the URL
``failed`` with the reason; after MIRSAD_MAX_ATTEMPTS the URL is ``dead``.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta

from . import ledger
from .celery_app import RECONCILE_TASK, app
from .db import session_scope
from .errors import DatabaseUnavailable, PermanentError, RetryableError
from .pipeline import NEXT_STAGE, STAGE_FOR_STATE, STAGES, Stage
from .settings import Settings, get_settings

log = logging.getLogger("mirsad.tasks")


def backoff(attempt: int, settings: Settings, retry_after: float | None = None) -> float:
    """Exponential delay with full jitter; a server's Retry-After wins when it asks for longer."""
    ceiling = min(settings.retry_backoff_max, settings.retry_backoff * 2 ** max(0, attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, min(retry_after, 3600.0)) if retry_after else delay


def enqueue(stage: Stage, url_id: int) -> None:
    STAGE_TASKS[stage.name].apply_async(args=[url_id])


def run_stage(task, stage: Stage, url_id: int) -> None:
    """One attempt at one stage; a database outage anywhere in it retries the whole attempt."""
    settings = get_settings()
    try:
        _attempt(task, stage, url_id, settings)
    except DatabaseUnavailable as exc:
        delay = backoff(task.request.retries + 1, settings)
        log.warning("%s url_id=%s: %s; retry in %.1fs", stage.name, url_id, exc, delay)
        raise task.retry(countdown=delay, max_retries=None) from exc


def _attempt(task, stage: Stage, url_id: int, settings: Settings) -> None:
    started = time.monotonic()
    with session_scope() as session:
        claim = ledger.begin(session, url_id, stage.takes, settings.max_attempts)
    if claim is None:
        log.info("%s url_id=%s: nothing to do (already past %s, or dead)", stage.name, url_id, stage.takes)
        return
    try:
        output = stage.run(claim)
    except PermanentError as exc:
        with session_scope() as session:
            ledger.fail(session, claim, stage.takes, exc.reason)
        log.warning("%s url_id=%s failed: %s (%s)", stage.name, url_id, exc.reason, claim.url)
        return
    except Exception as exc:  # retryable, or a bug that may not recur: bounded by max_attempts either way
        reason = exc.reason if isinstance(exc, RetryableError) else f"{type(exc).__name__}: {exc}"
        with session_scope() as session:
            again = ledger.note_retry(session, claim, stage.takes, reason, settings.max_attempts)
        if not again:
            log.error("%s url_id=%s dead after %d attempts: %s", stage.name, url_id, claim.attempt, reason)
            return
        delay = backoff(claim.attempt, settings, getattr(exc, "retry_after", None))
        log.warning("%s url_id=%s attempt %d: %s; retry in %.1fs", stage.name, url_id, claim.attempt, reason, delay)
        raise task.retry(countdown=delay, max_retries=None) from exc
    with session_scope() as session:
        item_id = stage.persist(session, claim, output) if stage.persist else None
        moved = ledger.advance(session, claim, stage.takes, stage.gives,
                               None if stage.persist else output, item_id)
    log.info("%s url_id=%s ok in %.0f ms%s", stage.name, url_id, (time.monotonic() - started) * 1000,
             "" if moved else " (another run had finished it)")
    if moved and NEXT_STAGE[stage.name]:
        enqueue(NEXT_STAGE[stage.name], url_id)


def _stage_task(stage: Stage):
    @app.task(name=stage.task_name, bind=True)
    def task(self, url_id: int) -> None:
        run_stage(self, stage, url_id)
    task.__doc__ = f"Run the {stage.name} stage on one URL (ledger row id)."
    return task


STAGE_TASKS = {stage.name: _stage_task(stage) for stage in STAGES}


@app.task(name=RECONCILE_TASK)
def reconcile() -> int:
    """Re-enqueue URLs stuck in a non-final state (lost message, killed worker, Redis restart)."""
    settings = get_settings()
    with session_scope() as session:
        rows = ledger.stuck(session, timedelta(seconds=settings.reconcile_after))
        for url_id, state in rows:
            ledger.touch(session, url_id, state, "re-enqueued by the reconciler")
    for url_id, state in rows:
        enqueue(STAGE_FOR_STATE[state], url_id)
    if rows:
        log.warning("reconciler re-enqueued %d stuck URLs", len(rows))
    return len(rows)

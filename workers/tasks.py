"""Celery tasks: thin wrappers that walk ``pipeline.STAGES`` with the ledger around each stage.

A stage task runs one ``pipeline.run_step`` (claim, run the pure stage, save
and move the state) and then enqueues the next stage. Retryable errors retry
with exponential backoff and jitter (honouring Retry-After); permanent ones end
the URL ``failed`` with the reason; after MIRSAD_MAX_ATTEMPTS it is ``dead``.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from . import ledger, politeness, sources
from .celery_app import POLL_SOURCE_TASK, POLL_SOURCES_TASK, RECONCILE_TASK, app
from .db import session_scope, utcnow
from .errors import DatabaseUnavailable
from .pipeline import NEXT_STAGE, STAGE_FOR_STATE, STAGES, Stage, run_step
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
    """One attempt at one stage: retries on retryable errors and database outages, then the next stage."""
    settings = get_settings()
    try:
        if stage.gate and (wait := stage.gate(url_id)) > 0:  # the host is busy: come back soon, no attempt spent
            delay = politeness.requeue_delay(wait, settings)
            log.debug("%s url_id=%s: host busy for %.2fs; back in %.2fs", stage.name, url_id, wait, delay)
            raise task.retry(countdown=delay)
        step = run_step(stage, url_id)
    except DatabaseUnavailable as exc:
        delay = backoff(task.request.retries + 1, settings)
        log.warning("%s url_id=%s: %s; retry in %.1fs", stage.name, url_id, exc, delay)
        raise task.retry(countdown=delay) from exc
    if step.outcome == "retry":
        delay = backoff(step.attempt, settings, step.retry_after)
        log.warning("%s url_id=%s attempt %d: %s; retry in %.1fs", stage.name, url_id, step.attempt, step.reason, delay)
        raise task.retry(countdown=delay)
    if step.outcome in ("failed", "dead"):
        log.warning("%s url_id=%s %s after %d attempt(s): %s", stage.name, url_id, step.outcome, step.attempt,
                    step.reason)
    elif step.outcome == "skipped":
        log.info("%s url_id=%s: nothing to do (already done by another run, or dead)", stage.name, url_id)
    else:
        log.info("%s url_id=%s ok in %.0f ms", stage.name, url_id, step.elapsed_ms)
        if NEXT_STAGE[stage.name]:
            enqueue(NEXT_STAGE[stage.name], url_id)


def _stage_task(stage: Stage):
    @app.task(name=stage.task_name, bind=True, max_retries=None)  # the ledger bounds attempts, not Celery
    def task(self, url_id: int) -> None:
        run_stage(self, stage, url_id)
    task.__doc__ = f"Run the {stage.name} stage on one URL (ledger row id)."
    return task


STAGE_TASKS = {stage.name: _stage_task(stage) for stage in STAGES}


@app.task(name=RECONCILE_TASK)
def reconcile() -> int:
    """Re-enqueue URLs stuck in a non-final state (lost message, killed worker, Redis restart)."""
    settings = get_settings()
    with session_scope(durable=False) as session:
        rows = ledger.stuck(session, timedelta(seconds=settings.reconcile_after))
        for url_id, state in rows:
            ledger.touch(session, url_id, state, "re-enqueued by the reconciler")
    for url_id, state in rows:
        enqueue(STAGE_FOR_STATE[state], url_id)
    if rows:
        log.warning("reconciler re-enqueued %d stuck URLs", len(rows))
    return len(rows)


@app.task(name=POLL_SOURCES_TASK)
def poll_sources() -> int:
    """Beat: sync config/sources.yaml into the sources table, then send every due source to be polled."""
    settings = get_settings()
    with session_scope() as session:
        try:
            sources.sync_from_config(session, settings.config_dir)
        except ValueError as exc:  # a typo in the file must not stop the sources already known
            log.error("sources not synced: %s", exc)
        due = sources.claim_due(session, utcnow())
    for source_id in due:
        poll_source.apply_async(args=[source_id])
    return len(due)


@app.task(name=POLL_SOURCE_TASK, bind=True, max_retries=None)
def poll_source(self, source_id: int) -> int:
    """Poll one source politely and push its never-seen entries; a busy host brings the task back shortly."""
    report = sources.poll_source(source_id)
    if report.retry_in is not None:
        raise self.retry(countdown=politeness.requeue_delay(report.retry_in))
    return len(report.pushed)

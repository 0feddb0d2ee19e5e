"""Celery tasks: thin wrappers that walk ``pipeline.STEPS`` with the ledger around each stage.

A stage task runs one ``pipeline.run_step`` (claim, run the pure stage, save
and move the state) and then enqueues the next stage, or, when the next stage is
also a processing stage, runs it right away in the same task: clean → strip →
classify → store run back to back on one processing worker, each advance claiming
the next stage in the same update, so a page costs one message and one ledger
update per hop instead of two updates and a message. Every state and its history
is still recorded, and a crash at any point leaves the URL in a state the
reconciler resumes from (each stage's output is saved with its state). Retryable errors retry
with exponential backoff and jitter (honouring Retry-After); permanent ones end
the URL ``failed`` with the reason; after the stage's attempts it is ``dead``.

The retry policy per stage: fetch gets MIRSAD_MAX_ATTEMPTS (the network is luck); the
deterministic CPU stages (clean, strip, classify) at most ``CPU_STAGE_ATTEMPTS``, since an
exception there is almost always the page, not luck; a database outage costs no attempt in any
stage: when the claim itself could not be made, or when the database went away between the claim
and the stage's commit (the retry takes the interrupted attempt again: ``reclaim``). The task
retries until the database is back.
A dead or failed URL can be replayed (``mirsad requeue``).
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from workers.core.errors import DatabaseUnavailable
from workers.core.settings import Settings, get_settings
from workers.core.topology import (
    IO_QUEUES,
    NEXT_STAGE,
    POLL_SOURCE_TASK,
    POLL_SOURCES_TASK,
    RECONCILE_TASK,
    STAGE_FOR_STATE,
    StepResult,
    UrlState,
)
from workers.intake import politeness
from workers.runtime import arrivals, polling
from workers.runtime.celery_app import app
from workers.runtime.dispatch import send_poll, send_stage
from workers.runtime.pipeline import STEPS, Step, run_step
from workers.storage import ledger, sources
from workers.storage.db import session_scope
from workers.storage.models import utcnow

log = logging.getLogger("mirsad.tasks")

CPU_STAGE_ATTEMPTS = 2
DETERMINISTIC_STAGES = ("clean", "strip", "classify")


def stage_attempts(stage: Step, settings: Settings) -> int:
    """How many attempts ``stage`` gets before the URL is dead (the retry policy above)."""
    if stage.name in DETERMINISTIC_STAGES:
        return min(settings.max_attempts, CPU_STAGE_ATTEMPTS)
    return settings.max_attempts


def backoff(attempt: int, settings: Settings, retry_after: float | None = None) -> float:
    """Exponential delay with full jitter; a server's Retry-After wins when it asks for longer."""
    ceiling = min(settings.retry_backoff_max, settings.retry_backoff * 2 ** max(0, attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, min(retry_after, 3600.0)) if retry_after else delay


def chained(stage: Step) -> Step | None:
    """The stage this task runs right after ``stage``: the next one when both are processing stages."""
    following = NEXT_STAGE[stage.name]
    if following is None or stage.spec.queue in IO_QUEUES or following.queue in IO_QUEUES:
        return None
    return STEPS[following.name]


def run_stage(task, stage: Step, url_id: int, reclaim: int | None = None) -> None:
    """One attempt at one stage, and at the processing stages chained after it: retries on retryable
    errors and database outages (the stage where it happened comes back), then the next stage."""
    settings = get_settings()
    claim = None  # the chained stage's claim, made by the previous stage's advance
    while True:
        then = chained(stage)
        try:
            if claim is None and stage.gate and (wait := stage.gate(url_id)) > 0:  # the host is busy: no attempt
                delay = politeness.requeue_delay(wait, settings)
                log.debug("%s url_id=%s: host busy for %.2fs; back in %.2fs", stage.name, url_id, wait, delay)
                raise task.retry(countdown=delay)
            step = run_step(stage, url_id, stage_attempts(stage, settings), claim, then, reclaim)
        except DatabaseUnavailable as exc:
            delay = backoff(task.request.retries + 1, settings)
            log.warning("%s url_id=%s: %s; retry in %.1fs", stage.name, url_id, exc, delay)
            # the attempt interrupted after its claim, or still the one to take again when the claim failed
            return come_back(task, stage, url_id, delay, exc.claimed_attempt or reclaim, cause=exc)
        if step.outcome == StepResult.RETRY:
            delay = backoff(step.attempt, settings, step.retry_after)
            log.warning(
                "%s url_id=%s attempt %d: %s; retry in %.1fs", stage.name, url_id, step.attempt, step.reason, delay
            )
            return come_back(task, stage, url_id, delay)
        if step.outcome in (StepResult.FAILED, StepResult.DEAD):
            log.warning(
                "%s url_id=%s %s after %d attempt(s): %s", stage.name, url_id, step.outcome, step.attempt, step.reason
            )
        elif step.outcome == StepResult.SKIPPED:
            log.info("%s url_id=%s: nothing to do (already done by another run, or dead)", stage.name, url_id)
        else:
            log.info("%s url_id=%s ok in %.0f ms", stage.name, url_id, step.elapsed_ms)
            if step.item_id is not None:
                arrivals.announce(step.item_id)
            if then is not None and step.next_claim is not None:  # claimed with the advance: run it here
                stage, claim, reclaim = then, step.next_claim, None
                continue
            if (following := NEXT_STAGE[stage.name]) is not None:
                send_stage(following, url_id)
        return


def come_back(
    task, stage: Step, url_id: int, delay: float, reclaim: int | None = None, cause: Exception | None = None
) -> None:
    """``stage`` again for this URL in ``delay`` seconds: the task's own retry when it is the task's stage,
    else a message to that stage's queue (a stage chained after the task's own)."""
    if stage.spec.task_name == task.name:
        raise task.retry(countdown=delay, kwargs={"reclaim": reclaim} if reclaim else {}) from cause
    send_stage(stage.spec, url_id, countdown=delay, reclaim=reclaim)


def _stage_task(stage: Step):
    @app.task(name=stage.spec.task_name, bind=True, max_retries=None)  # the ledger bounds attempts, not Celery
    def task(self, url_id: int, reclaim: int | None = None) -> None:
        run_stage(self, stage, url_id, reclaim)

    task.__doc__ = f"Run the {stage.name} stage on one URL (ledger row id); ``reclaim``: see ``run_stage``."
    return task


STAGE_TASKS = {name: _stage_task(step) for name, step in STEPS.items()}


@app.task(name=RECONCILE_TASK)
def reconcile() -> int:
    """Re-enqueue URLs stuck in a non-final state (lost message, killed worker, Redis restart)."""
    settings = get_settings()
    with session_scope(durable=False) as session:
        rows = ledger.stuck(session, timedelta(seconds=settings.reconcile_after))
        for url_id, state in rows:
            ledger.touch(session, url_id, state, "re-enqueued by the reconciler")
    for url_id, state in rows:
        send_stage(STAGE_FOR_STATE[UrlState(state)], url_id)
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
        send_poll(source_id)
    return len(due)


@app.task(name=POLL_SOURCE_TASK, bind=True, max_retries=None)
def poll_source(self, source_id: int) -> int:
    """Poll one source politely and push its never-seen entries; a busy host brings the task back shortly."""
    report = polling.poll_source(source_id)
    if report.retry_in is not None:
        raise self.retry(countdown=politeness.requeue_delay(report.retry_in))
    return len(report.pushed)

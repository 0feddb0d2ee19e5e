"""Sending work by task name: the one place below the entry points that talks to the broker.

Nothing imports the task functions to enqueue them (``send_task`` with the name from the
topology, routed by the app's one routing table), so intake, polling and the API can send
work without importing a stage.
"""

from __future__ import annotations

from workers.core.topology import POLL_SOURCE_TASK, StageSpec
from workers.runtime.celery_app import app


def send_stage(stage: StageSpec, url_id: int, countdown: float | None = None, reclaim: int | None = None) -> None:
    """Enqueue ``stage`` for one URL (its ledger row id); ``reclaim``: the attempt a database outage
    interrupted, to be taken again rather than counted anew."""
    app.send_task(stage.task_name, args=[url_id], kwargs={"reclaim": reclaim} if reclaim else None, countdown=countdown)


def send_poll(source_id: int) -> None:
    """Enqueue one poll of one source."""
    app.send_task(POLL_SOURCE_TASK, args=[source_id])

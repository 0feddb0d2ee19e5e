"""The Celery application: broker, reliability settings, the one routing table and the beat schedule.

Reliability: late acknowledgement and requeue on worker loss (a killed worker
hands its message back), prefetch 1 (a slow page does not hold others hostage),
JSON only. Messages carry a ledger row id, never a page.
"""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init

from .db import forget_engines
from .pipeline import STAGES
from .settings import Settings, get_settings

RECONCILE_TASK = "mirsad.reconcile"
POLL_SOURCES_TASK = "mirsad.poll_sources"
POLL_SOURCE_TASK = "mirsad.poll_source"
MAINTENANCE_QUEUE = "maintenance"
POLL_QUEUE = "fetch"  # polling a source is network I/O, like fetching a page: the fetch worker's threads

# Every task and its queue, in one table; tests check that every registered task has a route.
TASK_ROUTES = {stage.task_name: {"queue": stage.queue} for stage in STAGES} | {
    RECONCILE_TASK: {"queue": MAINTENANCE_QUEUE},
    POLL_SOURCES_TASK: {"queue": MAINTENANCE_QUEUE},
    POLL_SOURCE_TASK: {"queue": POLL_QUEUE},
}


def reconcile_interval(settings: Settings) -> float:
    """Often enough to honour a short MIRSAD_RECONCILE_AFTER, never more than once a second."""
    return max(1.0, min(60.0, settings.reconcile_after / 4))


def make_app(settings: Settings) -> Celery:
    app = Celery("mirsad", include=["workers.tasks"])
    app.conf.update(
        broker_url=settings.redis_url,
        broker_transport="workers.broker:Transport" if settings.redis_url.startswith(("redis:", "rediss:")) else None,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout},
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_routes=TASK_ROUTES,
        task_default_queue=MAINTENANCE_QUEUE,
        beat_schedule={
            "reconcile": {"task": RECONCILE_TASK, "schedule": reconcile_interval(settings),
                          "options": {"expires": reconcile_interval(settings)}},
            "poll-sources": {"task": POLL_SOURCES_TASK, "schedule": settings.source_check_interval,
                             "options": {"expires": settings.source_check_interval}},
        },
    )
    return app


app = make_app(get_settings())


@worker_process_init.connect
def _fresh_connections_after_fork(**_kwargs) -> None:
    forget_engines()

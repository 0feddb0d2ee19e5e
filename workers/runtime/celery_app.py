"""The Celery application: broker, reliability settings, routes (``core.topology``) and the beat schedule.

Importing it loads no stage: routes are data, and the tasks (``runtime.tasks``) are imported only by
a worker, so Flower, health probes and the API that sends tasks by name start quickly.

Reliability: late acknowledgement and requeue on worker loss (a killed worker
hands its message back), prefetch 1 (a slow page does not hold others hostage),
JSON only. Messages carry a ledger row id, never a page.
"""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init

from workers.core.settings import Settings, get_settings
from workers.core.topology import (
    MAINTENANCE_QUEUE,
    POLL_SOURCES_TASK,
    RECONCILE_TASK,
    SEND_DIGESTS_TASK,
    SWEEP_WATCHES_TASK,
    TASK_ROUTES,
)
from workers.storage.db import forget_engines

DIGEST_CHECK_INTERVAL = 60.0  # seconds between beat's looks for e-mail digests due (hourly or daily)


def reconcile_interval(settings: Settings) -> float:
    """Often enough to honour a short MIRSAD_RECONCILE_AFTER, never more than once a second."""
    return max(1.0, min(60.0, settings.reconcile_after / 4))


def make_app(settings: Settings) -> Celery:
    app = Celery("mirsad", include=["workers.runtime.tasks", "workers.runtime.watches"])
    app.conf.update(
        broker_url=settings.redis_url,
        broker_transport=(
            "workers.runtime.broker:Transport" if settings.redis_url.startswith(("redis:", "rediss:")) else None
        ),
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
            "reconcile": {
                "task": RECONCILE_TASK,
                "schedule": reconcile_interval(settings),
                "options": {"expires": reconcile_interval(settings)},
            },
            "poll-sources": {
                "task": POLL_SOURCES_TASK,
                "schedule": settings.source_check_interval,
                "options": {"expires": settings.source_check_interval},
            },
            "sweep-watches": {
                "task": SWEEP_WATCHES_TASK,
                "schedule": max(1.0, settings.watch_sweep_after),
                "options": {"expires": max(1.0, settings.watch_sweep_after)},
            },
            "send-digests": {"task": SEND_DIGESTS_TASK, "schedule": DIGEST_CHECK_INTERVAL, "options": {"expires": 60}},
        },
    )
    return app


app = make_app(get_settings())


@worker_process_init.connect
def _fresh_connections_after_fork(**_kwargs) -> None:
    forget_engines()

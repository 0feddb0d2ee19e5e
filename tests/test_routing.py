"""Every Celery task has a route, and every routed queue is consumed by a service of the stack."""

from itertools import pairwise

from workers.core.settings import Settings
from workers.core.topology import CPU_QUEUES, IO_QUEUES, STAGES, TASK_ROUTES
from workers.runtime.celery_app import app, reconcile_interval
from workers.runtime.stack import services


def registered_tasks() -> set[str]:
    app.loader.import_default_modules()
    return {name for name in app.tasks if not name.startswith("celery.")}


def test_every_task_has_a_route():
    assert registered_tasks() - TASK_ROUTES.keys() == set()


def test_every_route_names_a_real_task():
    assert TASK_ROUTES.keys() - registered_tasks() == set()


def test_every_queue_has_a_consumer_in_the_stack():
    consumed = set()
    for args in services(process_workers=2).values():
        if "--queues" in args:
            consumed |= set(args[args.index("--queues") + 1].split(","))
    assert {route["queue"] for route in TASK_ROUTES.values()} <= consumed
    assert set(IO_QUEUES + CPU_QUEUES) == consumed


def test_one_queue_per_stage_in_pipeline_order():
    assert [s.name for s in STAGES] == ["fetch", "clean", "strip", "classify", "store"]
    assert [s.queue for s in STAGES] == ["fetch", "clean", "strip", "classify", "store"]
    assert all(a.gives == b.takes for a, b in pairwise(STAGES))


def test_messages_are_json_and_acknowledged_late():
    conf = app.conf
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1


def test_the_reconciler_runs_often_enough_for_a_short_setting():
    assert reconcile_interval(Settings(reconcile_after=3)) <= 1.0
    assert reconcile_interval(Settings(reconcile_after=600)) <= 150


def test_the_stack_runs_one_processing_worker_per_process_slot():
    names = list(services(process_workers=3))
    assert names == ["fetch-worker", "process-worker-1", "process-worker-2", "process-worker-3", "beat", "api"]

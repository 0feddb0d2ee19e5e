"""Running Mirsad: the whole stack, one worker, beat, migrations and the settings."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import time
from collections.abc import Callable

from rich.markup import escape

from workers.cli.output import (
    err,
    fail,
    print_rows,
    require_broker,
    require_free_port,
    safe_url,
)
from workers.core.settings import Settings, get_settings
from workers.storage.db import migrate

log = logging.getLogger("mirsad.cli")


def check_config_or_exit(settings: Settings) -> None:
    """Refuse to start on a broken config/ (every error one line, naming file, line and column); warn on the rest."""
    from workers.runtime.config_check import check_config

    report = check_config(settings.config_dir)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    if report.errors:
        for error in report.errors[:-1]:
            err.print(f"[red]error:[/red] {escape(error)}")
        raise fail(f"{report.errors[-1]} (fix the file; nothing was started)")


def claim_broker_or_exit(settings: Settings) -> None:
    """This deployment's lease on the broker database; a broker that is down now is the watchdog's business."""
    import redis

    from workers.runtime.deployment import broker_client, claim_broker

    try:
        claim_broker(broker_client(settings), settings)
    except redis.RedisError as exc:
        log.warning("the broker is not reachable yet (%s); starting anyway, the worker reconnects", exc)


def cmd_migrate(_args) -> int:
    settings = get_settings()
    migrate()
    err.print(f"database {safe_url(settings.database_url)} is at the newest revision")
    return 0


def cmd_worker(args) -> int:
    from workers.core.topology import CPU_QUEUES, IO_QUEUES
    from workers.runtime.celery_app import app
    from workers.runtime.liveness import Watchdog

    settings = get_settings()
    check_config_or_exit(settings)
    claim_broker_or_exit(settings)
    queues = args.queues.split(",") if args.queues else list(IO_QUEUES + CPU_QUEUES)
    io_only = set(queues) <= set(IO_QUEUES)
    pool = args.pool or ("threads" if io_only else "solo")
    argv = [
        "worker",
        "--queues",
        ",".join(queues),
        "--loglevel",
        settings.log_level,
        "--pool",
        pool,
        "--hostname",
        f"{'fetch' if io_only else 'process'}-{os.getpid()}@%h",
    ]
    if pool == "threads":  # many requests in flight, and a few messages prefetched per thread
        argv += ["--concurrency", str(args.concurrency or settings.fetch_concurrency), "--prefetch-multiplier", "2"]
    elif pool == "prefork":
        argv += ["--concurrency", str(args.concurrency or settings.process_concurrency)]
    if not io_only:  # before consuming (and before a prefork pool forks, so children inherit it)
        from workers.runtime.pipeline import warm_up

        warm_up()
    Watchdog(
        settings, f"{'fetch' if io_only else 'process'}-{os.getpid()}@{socket.gethostname()}", ",".join(queues)
    ).start()
    app.worker_main(argv)
    return 0


def cmd_beat(_args) -> int:
    """Celery beat with its in-memory scheduler: every entry is an interval that may as well start
    over after a restart, and without a schedule file two stacks on one machine cannot share one.
    One beat per deployment: a second one waits, as a standby, until the first one's lease lapses."""
    import redis

    from workers.runtime import deployment
    from workers.runtime.celery_app import app
    from workers.runtime.liveness import Watchdog

    settings = get_settings()
    check_config_or_exit(settings)
    claim_broker_or_exit(settings)
    token, waiting_since = deployment.beat_token(), time.monotonic()
    client = deployment.broker_client(settings)
    said = False
    while True:
        try:
            if deployment.take_beat_lock(client, token):
                break
            if not said:
                log.warning(
                    "another beat (%s) runs for this deployment; this one stands by until it stops",
                    deployment.beat_holder(client),
                )
                said = True
            waiting_since = time.monotonic()
        except redis.RedisError as exc:
            if time.monotonic() - waiting_since > settings.worker_stall_exit:
                raise fail(
                    f"the broker {safe_url(settings.redis_url)} has been unreachable for longer than "
                    f"MIRSAD_WORKER_STALL_EXIT ({exc})"
                ) from None
        time.sleep(5)
    Watchdog(settings, f"beat-{os.getpid()}@{socket.gethostname()}", beat_token=token).start()
    app.start(["beat", "--scheduler", "celery.beat:Scheduler", "--loglevel", settings.log_level])
    return 0


def cmd_up(args) -> int:
    """The stack in the foreground: SIGINT, SIGTERM and SIGHUP (terminal closed) stop it, children first;
    a child that exits is restarted with a backoff (``Stack.restart_exited``)."""
    from workers.runtime.stack import Stack

    settings = get_settings()
    check_config_or_exit(settings)
    port = settings.api_port if args.port is None else args.port
    require_free_port(settings.api_host, port)  # the stack's API would only die on it, again and again
    migrate()
    require_broker()

    def stop(*_) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    stack = Stack(env={"MIRSAD_API_PORT": str(port)})
    try:
        stack.start()
        err.print(
            f"[bold]Mirsad is running[/bold] (database {safe_url(settings.database_url)}, broker "
            f"{safe_url(settings.redis_url)}, API http://{settings.api_host}:{port}/). Push with "
            f"[cyan]mirsad push URL[/cyan], follow with [cyan]mirsad watch[/cyan]. Ctrl-C stops."
        )
        while True:
            stack.restart_exited()  # logged, with the exit code and the backoff
            time.sleep(0.5)
    except KeyboardInterrupt:
        err.print("stopping (running tasks finish first)…")
        return 0
    finally:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a second signal must not cut the stopping short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()


def cmd_settings(args) -> int:
    rows = get_settings().describe()
    if args.markdown:
        print("| variable | default | meaning |\n| --- | --- | --- |")
        for name, _value, default, doc in rows:
            print(f"| `{name}` | `{default}` | {doc} |")
        return 0
    print_rows(
        ["variable", "value", "meaning"],
        [[name, value, doc] for name, value, _default, doc in rows],
        no_wrap=("variable",),
    )
    return 0


def register(commands, command: Callable[..., argparse.ArgumentParser]) -> None:
    up = command("up", cmd_up, "Run a whole stack in the foreground (migrate, workers for every queue, beat, API).")
    up.add_argument("--port", type=int, help="the API's port (default MIRSAD_API_PORT)")
    worker = command("worker", cmd_worker, "Run one Celery worker (scale out by running more).")
    worker.add_argument("--queues", help="comma-separated queues (default: all)")
    worker.add_argument("--concurrency", type=int, help="threads (threads pool) or processes (prefork pool)")
    worker.add_argument(
        "--pool",
        choices=["solo", "threads", "prefork"],
        help="default: threads for the fetch queue alone, else solo (one process: run one per core)",
    )
    command("beat", cmd_beat, "Run the scheduler (the reconciler); run exactly one per deployment.")
    command("migrate", cmd_migrate, "Bring the database schema to the newest revision.")
    settings = command("settings", cmd_settings, "Print every MIRSAD_* setting with its value and meaning.")
    settings.add_argument("--markdown", action="store_true", help="as a Markdown table (for the README)")

"""Running Mirsad: the whole stack, one worker, beat, migrations and the settings."""

from __future__ import annotations

import argparse
import os
import signal
import time
from collections.abc import Callable

from rich.table import Column, Table

from workers.cli.output import (
    err,
    out,
    require_broker,
    safe_url,
)
from workers.core.settings import get_settings
from workers.storage.db import migrate


def cmd_migrate(_args) -> int:
    settings = get_settings()
    migrate()
    err.print(f"database {safe_url(settings.database_url)} is at the newest revision")
    return 0


def cmd_worker(args) -> int:
    from workers.core.topology import CPU_QUEUES, IO_QUEUES
    from workers.runtime.celery_app import app

    settings = get_settings()
    queues = args.queues.split(",") if args.queues else list(IO_QUEUES + CPU_QUEUES)
    io_only = set(queues) <= set(IO_QUEUES)
    pool = args.pool or ("threads" if io_only else "solo")
    argv = ["worker", "--queues", ",".join(queues), "--loglevel", settings.log_level, "--pool", pool,
            "--hostname", f"{'fetch' if io_only else 'process'}-{os.getpid()}@%h"]
    if pool == "threads":  # many requests in flight, and a few messages prefetched per thread
        argv += ["--concurrency", str(args.concurrency or settings.fetch_concurrency), "--prefetch-multiplier", "2"]
    elif pool == "prefork":
        argv += ["--concurrency", str(args.concurrency or settings.process_concurrency)]
    if not io_only:  # before consuming (and before a prefork pool forks, so children inherit it)
        from workers.runtime.pipeline import warm_up
        warm_up()
    app.worker_main(argv)
    return 0


def cmd_beat(_args) -> int:
    """Celery beat with its in-memory scheduler: every entry is an interval that may as well start
    over after a restart, and without a schedule file two stacks on one machine cannot share one."""
    from workers.runtime.celery_app import app

    app.start(["beat", "--scheduler", "celery.beat:Scheduler", "--loglevel", get_settings().log_level])
    return 0


def cmd_up(_args) -> int:
    from workers.runtime.stack import Stack

    settings = get_settings()
    migrate()
    require_broker()
    stack = Stack().start()
    err.print(f"[bold]Mirsad is running[/bold] (database {safe_url(settings.database_url)}, broker "
              f"{safe_url(settings.redis_url)}). Push with [cyan]mirsad push URL[/cyan], follow with "
              f"[cyan]mirsad watch[/cyan]. Ctrl-C stops.")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while not stack.exited():
            time.sleep(0.5)
        err.print(f"[red]a service stopped:[/red] {stack.exited()}; stopping the rest")
        return 1
    except KeyboardInterrupt:
        err.print("stopping (running tasks finish first)…")
        return 0
    finally:
        stack.stop()


def cmd_settings(args) -> int:
    rows = get_settings().describe()
    if args.markdown:
        print("| variable | default | meaning |\n| --- | --- | --- |")
        for name, _value, default, doc in rows:
            print(f"| `{name}` | `{default}` | {doc} |")
        return 0
    table = Table(Column("variable", no_wrap=True), Column("value", overflow="fold"),
                  Column("meaning", overflow="fold"))
    for name, value, _default, doc in rows:
        table.add_row(name, value, doc)
    out.print(table)
    return 0

def register(commands, command: Callable[..., argparse.ArgumentParser]) -> None:
    command("up", cmd_up, "Run a whole stack in the foreground (migrate, workers for every queue, beat).")
    worker = command("worker", cmd_worker, "Run one Celery worker (scale out by running more).")
    worker.add_argument("--queues", help="comma-separated queues (default: all)")
    worker.add_argument("--concurrency", type=int, help="threads (threads pool) or processes (prefork pool)")
    worker.add_argument("--pool", choices=["solo", "threads", "prefork"],
                        help="default: threads for the fetch queue alone, else solo (one process: run one per core)")
    command("beat", cmd_beat, "Run the scheduler (the reconciler); run exactly one per deployment.")
    command("migrate", cmd_migrate, "Bring the database schema to the newest revision.")
    settings = command("settings", cmd_settings, "Print every MIRSAD_* setting with its value and meaning.")
    settings.add_argument("--markdown", action="store_true", help="as a Markdown table (for the README)")

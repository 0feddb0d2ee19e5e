"""Replaying what failed: ``mirsad requeue``."""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Callable

from workers.cli.output import err, parse_since, print_json, print_rows, require_broker
from workers.core.topology import UrlState


def cmd_requeue(args) -> int:
    from workers.runtime.replay import requeue

    if not args.dry_run:
        require_broker()
    states = [args.state] if args.state else [UrlState.FAILED, UrlState.DEAD]
    done = requeue(
        f"mirsad requeue ({getpass.getuser()})",
        states=states,
        reason=args.reason,
        since=parse_since(args.since) if args.since else None,
        site=args.site,
        targets=args.targets,
        dry_run=args.dry_run,
    )
    if args.json:
        for row in done:
            print_json(
                {
                    "url_id": row.url_id,
                    "url": row.url,
                    "was": row.was,
                    "reason": row.reason,
                    "to_state": row.to_state,
                    "dry_run": args.dry_run,
                }
            )
    elif done:
        print_rows(
            ["url id", "was", "reason", "back to", "URL"],
            [[f"url:{row.url_id}", row.was, row.reason or "", row.to_state, row.url] for row in done],
        )
    verb = "would be requeued (dry run: nothing changed)" if args.dry_run else "requeued"
    err.print(f"{len(done)} URL(s) {verb}")
    return 0


def register(commands, command: Callable[..., argparse.ArgumentParser]) -> None:
    requeue = command(
        "requeue", cmd_requeue, "Put failed or dead URLs back to the stage they failed at, attempts reset."
    )
    requeue.add_argument(
        "targets", nargs="*", metavar="URL|ID", help="only these: URLs, url ids (N or url:N) or item ids (item:N)"
    )
    requeue.add_argument("--state", choices=[UrlState.FAILED, UrlState.DEAD], help="default: both")
    requeue.add_argument("--reason", help="only URLs whose last error contains this text (any case)")
    requeue.add_argument("--since", help="only URLs that ended since an ISO date/time, or a duration such as 2h, 7d")
    requeue.add_argument("--site", help="only URLs of this site (aa.com.tr also takes www.aa.com.tr)")
    requeue.add_argument("--dry-run", action="store_true", help="list what would be requeued; change nothing")
    requeue.add_argument("--json", action="store_true", help="JSON lines")

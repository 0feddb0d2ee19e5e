"""``mirsad watches add|list|show|remove|digest`` and ``mirsad alerts [--dead] | alerts resend ID``.

A watch is a saved search that alerts: its signing secret (``whsec_…``) is printed once, when it is
added, for the receiver to verify the webhooks' signatures (Standard Webhooks).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from workers.cli.output import out, print_rows
from workers.core.settings import get_settings
from workers.storage import watches
from workers.storage.db import migrate, session_scope


def register(commands, command: Callable[..., argparse.ArgumentParser]) -> None:
    group = command("watches", cmd_list, "Saved searches that alert: add, list, show or remove them.")
    group.set_defaults(json=False)
    actions = group.add_subparsers(dest="watches_command", metavar="add|list|show|remove|digest")
    add = actions.add_parser("add", help="save a search; its webhook signing secret is printed once")
    add.add_argument("name")
    add.add_argument("query", help='the search language: words, "phrases", OR, -x, prefix*, lang:, site:, topic:…')
    add.add_argument("--webhook", metavar="URL", help="POST each alert there, signed (Standard Webhooks)")
    add.add_argument("--email", metavar="ADDR", help="send digests to this address (MIRSAD_SMTP_URL)")
    add.add_argument("--digest", choices=tuple(watches.DIGEST_PERIODS), help="how often the e-mail digest goes")
    add.add_argument("--no-spikes", dest="spikes", action="store_false", help="no alert when its hourly count spikes")
    add.add_argument("--json", action="store_true", help='print {"name", "query", "secret", …}')
    add.set_defaults(handler=cmd_add)
    listing = actions.add_parser("list", help="every watch with its counts of matches and deliveries")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)
    show = actions.add_parser("show", help="one watch: its recent matches and deliveries")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_show)
    remove = actions.add_parser("remove", help="delete a watch with its matches and deliveries")
    remove.add_argument("name")
    remove.set_defaults(handler=cmd_remove)
    digest = actions.add_parser("digest", help="send the e-mail digests now, whatever their period")
    digest.add_argument("name", nargs="?", help="only this watch's")
    digest.set_defaults(handler=cmd_digest)

    alerts = command("alerts", cmd_alerts, "Webhook deliveries of the watches: list them, or send one again.")
    alerts.add_argument("--dead", action="store_true", help="only those that gave up, with their last error")
    alerts.add_argument("--json", action="store_true")
    alerts.add_argument("--limit", type=int, default=100)
    alert_actions = alerts.add_subparsers(dest="alerts_command", metavar="resend")
    resend = alert_actions.add_parser("resend", help="send a delivery again from its first attempt")
    resend.add_argument("id", type=int)
    resend.set_defaults(handler=cmd_resend)


def cmd_add(args) -> int:
    migrate()
    with session_scope() as session:
        watch = watches.add(
            session, args.name, args.query, get_settings(), args.webhook, args.email, args.digest, args.spikes
        )
        shown = watches.to_dict(watch)
        secret = watch.secret
    if args.json:
        print(json.dumps({**shown, "secret": secret}, ensure_ascii=False))
    else:
        print(secret)
        print(f"watch {watch.name!r} added; its signing secret is shown only now: keep it", file=sys.stderr)
    return 0


def cmd_list(args) -> int:
    migrate()
    with session_scope() as session:
        found = [watches.to_dict(w, watches.match_counts(session, w.id)) for w in watches.listing(session)]
    if args.json:
        print(json.dumps(found, ensure_ascii=False))
        return 0
    print_rows(
        ["id", "name", "query", "delivers to", "matched", "sent", "dead"],
        [
            [
                w["id"],
                w["name"],
                w["query"],
                ", ".join(filter(None, [w["webhook"], w["email"] and f"{w['email']} ({w['digest']})"])) or "feed only",
                w["counts"]["matches"],
                w["counts"]["sent"],
                w["counts"]["dead"],
            ]
            for w in found
        ],
    )
    print(f"{len(found)} watch(es)", file=sys.stderr)
    return 0


def cmd_show(args) -> int:
    migrate()
    with session_scope() as session:
        watch = watches.find(session, args.name)
        matches, sent = watches.recent(session, watch.id)
        shown = {
            **watches.to_dict(watch, watches.match_counts(session, watch.id)),
            "matches": [
                {
                    "item": item.id,
                    "title": item.title,
                    "url": item.url,
                    "story": match.story_id,
                    "alerted": match.alerted,
                    "matched_at": match.matched_at.isoformat(),
                }
                for match, item in matches
            ],
            "deliveries": [watches.delivery_to_dict(d, watch.name) for d in sent],
        }
    if args.json:
        print(json.dumps(shown, ensure_ascii=False))
        return 0
    for key in ("id", "name", "query", "webhook", "email", "digest", "spikes", "counts"):
        out.print(f"{key}: {str(shown[key])}")
    out.print("recent matches:")
    print_rows(
        ["matched at", "item", "sent as", "title"],
        [
            [m["matched_at"], m["item"], "alert" if m["alerted"] else "digest", m["title"] or m["url"]]
            for m in shown["matches"]
        ],
    )
    out.print("recent deliveries:")
    _print_deliveries(shown["deliveries"])
    return 0


def cmd_remove(args) -> int:
    migrate()
    with session_scope() as session:
        watches.remove(session, args.name)
    print(f"watch {args.name!r} removed", file=sys.stderr)
    return 0


def cmd_digest(args) -> int:
    migrate()
    if not get_settings().smtp_url:
        print("error: no MIRSAD_SMTP_URL: e-mail digests cannot be sent", file=sys.stderr)
        return 2
    from workers.runtime.watches import send_due_digests  # the runtime loads settings and Celery: only when asked

    sent = send_due_digests(force=True, name=args.name)
    print(f"{sent} digest(s) sent", file=sys.stderr)
    return 0


def cmd_alerts(args) -> int:
    migrate()
    with session_scope() as session:
        found = [watches.delivery_to_dict(d, name) for d, name in watches.deliveries(session, args.dead, args.limit)]
    if args.json:
        print(json.dumps(found, ensure_ascii=False))
        return 0
    _print_deliveries(found)
    print(f"{len(found)} deliver(ies)", file=sys.stderr)
    return 0


def cmd_resend(args) -> int:
    migrate()
    with session_scope() as session:
        watches.reopen(session, args.id)
    from workers.runtime.dispatch import send_delivery

    send_delivery(args.id)
    print(f"delivery {args.id} sent again", file=sys.stderr)
    return 0


def _print_deliveries(found: list[dict]) -> None:
    print_rows(
        ["id", "watch", "item", "state", "attempts", "last error"],
        [
            [
                d["id"],
                d["watch"],
                f"item {d['item']}" if d["item"] else d["kind"],
                d["state"],
                d["attempts"],
                d["last_error"] if d["state"] != "sent" else "",
            ]
            for d in found
        ],
    )

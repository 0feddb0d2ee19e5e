"""``mirsad tokens add|list|revoke``: the API's bearer tokens (the secret is printed once, kept hashed)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from workers.cli.output import print_rows
from workers.storage import tokens
from workers.storage.db import migrate, session_scope


def register(commands, command: Callable[..., argparse.ArgumentParser]) -> None:
    group = command("tokens", cmd_list, "Add, list or revoke API tokens (sent as Authorization: Bearer …).")
    group.set_defaults(json=False)  # `mirsad tokens` alone lists them
    group.add_argument("--json", dest="json_listing", action="store_true", help="list them as JSON")
    actions = group.add_subparsers(dest="tokens_command", metavar="add|list|revoke")
    add = actions.add_parser("add", help="create a token and print it (the only time it is shown)")
    add.add_argument("name")
    add.add_argument("--scope", choices=tokens.SCOPES, required=True, help="read, or write (which reads too)")
    add.add_argument("--json", action="store_true", help='print {"name", "scope", "token"}')
    add.set_defaults(handler=cmd_add)
    listing = actions.add_parser("list", help="every token's name, scope and last use (never the secret)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)
    revoke = actions.add_parser("revoke", help="delete a token: requests with it get 401 from now on")
    revoke.add_argument("name")
    revoke.set_defaults(handler=cmd_revoke)


def cmd_add(args) -> int:
    migrate()
    with session_scope() as session:
        secret = tokens.add(session, args.name, args.scope)
    if args.json:
        print(json.dumps({"name": args.name, "scope": args.scope, "token": secret}))
    else:
        print(secret)
        print(f"token {args.name!r} ({args.scope}) created; it is shown only now: keep it", file=sys.stderr)
    return 0


def cmd_list(args) -> int:
    migrate()
    with session_scope() as session:
        found = tokens.listing(session)
    if args.json or getattr(args, "json_listing", False):
        print(json.dumps([t.to_dict() for t in found]))
        return 0
    print_rows(
        ["name", "scope", "created", "last used"],
        [
            [
                token.name,
                token.scope,
                token.created_at.isoformat(timespec="seconds"),
                token.last_used_at.isoformat(timespec="seconds") if token.last_used_at else "never",
            ]
            for token in found
        ],
    )
    print(f"{len(found)} token(s)", file=sys.stderr)
    return 0


def cmd_revoke(args) -> int:
    migrate()
    with session_scope() as session:
        tokens.revoke(session, args.name)
    print(f"token {args.name!r} revoked", file=sys.stderr)
    return 0

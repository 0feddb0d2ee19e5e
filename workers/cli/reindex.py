"""``mirsad reindex``: index every stored item afresh (after an analyzer change; migration 0005 ran it once)."""

from __future__ import annotations

import sys
import time

from workers.storage.db import migrate, session_scope
from workers.storage.search import reindex


def register(commands) -> None:
    command = commands.add_parser("reindex", help="Rebuild the search index of every stored item.",
                                  description="Rebuild the search index of every stored item.")
    command.set_defaults(handler=cmd_reindex)


def cmd_reindex(_args) -> int:
    migrate()
    started = time.monotonic()
    with session_scope() as session:
        count = reindex(session)
    print(f"{count} item(s) indexed in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0

"""``mirsad reindex``: index every stored item afresh (after an analyzer change; migration 0005 ran it once)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from workers.storage.db import migrate, session_scope
from workers.storage.search import reindex


def register(commands, command: Callable[..., argparse.ArgumentParser]) -> None:
    command("reindex", cmd_reindex, "Rebuild the search index of every stored item.")


def cmd_reindex(_args) -> int:
    migrate()
    started = time.monotonic()
    with session_scope() as session:
        count = reindex(session)
    print(f"{count} item(s) indexed in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0

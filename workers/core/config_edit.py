"""Editing the YAML files users keep in ``config/`` without losing their comments and layout.

The CLI adds entries (``mirsad entities add``, ``mirsad sources add``) by inserting text into the
file instead of re-dumping the parsed YAML, which would drop every comment; the replacement is
atomic, so a worker reloading the file never reads half an entry.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

_TOP_LEVEL_KEY = re.compile(r"^[^\s#]")


def insert_entry(text: str, section: str, entry: list[str]) -> str:
    """``text`` with ``entry`` after the last line of ``section``'s block (the section is created if missing)."""
    lines = text.splitlines()
    header = re.compile(rf"{section}:\s*(\{{\}}|\[\])?\s*(#.*)?$")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        block = ([""] if lines and lines[-1].strip() else []) + [f"{section}:", *entry]
        return "\n".join(lines + block) + "\n"
    opened = header.match(lines[start])
    if opened and opened.group(1):
        lines[start] = f"{section}:"  # "orgs: {}" becomes a block
    end = next((i for i in range(start + 1, len(lines)) if _TOP_LEVEL_KEY.match(lines[i])), len(lines))
    while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1  # blank lines and comments before the next section belong to it
    return "\n".join(lines[:end] + entry + lines[end:]) + "\n"


def replace_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: a reader sees the old file or the new."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

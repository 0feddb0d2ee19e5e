"""The one rule for the files in ``config/``: whatever is built from them is rebuilt when one changes.

Every reader goes through ``current``: it compares the files' stamps (time, size, inode) on each
call, a stat per file, and rebuilds only when one differs, so an edit applies in every worker on
its next item, with no restart and no polling thread. When the edited version is invalid the
last valid one stays in use and the error is logged once per version; with no valid version yet
(a worker starting on a broken file) the error propagates, naming the file.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
Stamp = tuple[tuple[int, int, int], ...]

log = logging.getLogger("mirsad.config")
_built: dict[Hashable, tuple[Stamp, Any]] = {}
_refused: dict[Hashable, Stamp] = {}
_lock = threading.RLock()  # a build may read another file through current()


def file_stamp(path: Path) -> tuple[int, int, int]:
    """Changes whenever the file does: time, size and inode (a file replaced within one clock tick is new too)."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return 0, 0, 0
    return status.st_mtime_ns, status.st_size, status.st_ino


def current(key: Hashable, paths: Sequence[Path], build: Callable[[], T]) -> T:
    """``build()``'s result for the files ``paths`` as they are now, built again only after one changed."""
    stamp = tuple(file_stamp(path) for path in paths)
    entry = _built.get(key)
    if entry is not None and (entry[0] == stamp or _refused.get(key) == stamp):
        return entry[1]
    with _lock:
        try:
            value = build()
        except (ValueError, yaml.YAMLError) as exc:
            if entry is None:
                raise
            if _refused.get(key) != stamp:
                log.error("%s; keeping the last valid version until the file is fixed", explain(exc, paths))
                _refused[key] = stamp
            return entry[1]
        _built[key] = (stamp, value)
        _refused.pop(key, None)
        return value


def yaml_error(path: Path) -> str | None:
    """``config/x.yaml line 217 column 5: <problem>`` when ``path`` is not valid YAML, else None (also when absent)."""
    try:
        yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        return f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        return f"{path}{where}: {exc.problem or exc.context}"
    except yaml.YAMLError as exc:
        return f"{path}: {exc}"
    return None


def explain(exc: Exception, paths: Sequence[Path]) -> str:
    """An error building from ``paths``, said with the file, line and column when it is a YAML syntax error
    (PyYAML's own message names "<unicode string>", not the file)."""
    if isinstance(exc, yaml.YAMLError):
        return next((found for path in paths if (found := yaml_error(path))), str(exc))
    return str(exc)


def forget() -> None:
    """Drop everything built (tests that rewrite a file within one clock tick and size)."""
    _built.clear()
    _refused.clear()

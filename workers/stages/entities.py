"""The watchlist of people and organisations (``config/entities.yaml``): read it, list it, add to it.

``mirsad entities add`` and ``mirsad entities list`` are thin wrappers of ``add_entity`` and
``list_entities``. Adding appends text to the file instead of re-dumping the YAML, so the analysts'
comments and layout survive; the result is parsed again before it replaces the file, and the
replacement is atomic, so a worker that reloads the watchlist never reads half an entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from workers.core.config_edit import insert_entry, replace_atomically
from workers.text.textnorm import fold_words

WATCHLIST_FILE = "entities.yaml"
SECTIONS = {"person": "persons", "org": "orgs"}


@dataclass(frozen=True)
class Entity:
    """One watchlist entry. ``short`` spellings count only after a full mention of it or of its ``family``."""

    kind: str
    name: str
    aliases: tuple[str, ...]
    short: tuple[str, ...] = ()
    family: str | None = None


def read_watchlist(config_dir: Path | str) -> list[Entity]:
    """Every entry of ``entities.yaml`` in ``config_dir``, people first; none when the file is absent."""
    path = Path(config_dir) / WATCHLIST_FILE
    if not path.exists():
        return []
    return _parse(yaml.safe_load(path.read_text(encoding="utf-8")) or {}, path)


def list_entities(config_dir: Path | str, kind: str | None = None) -> list[Entity]:
    """The watchlist, optionally one kind, sorted by kind then name (what ``mirsad entities list`` prints)."""
    entities = [e for e in read_watchlist(config_dir) if kind is None or e.kind == kind]
    return sorted(entities, key=lambda e: (e.kind, fold_words(e.name)))


def add_entity(config_dir: Path | str, kind: str, name: str, aliases=(), short=()) -> Path:
    """Append ``name`` to its section of ``entities.yaml`` and return the file's path.

    The name itself is always an alias. Refuses a name already on the watchlist (either kind,
    compared folded: "Hulusi AKAR" is "Hulusi Akar") and an empty name, with ``ValueError``.
    """
    if kind not in SECTIONS:
        raise ValueError(f"kind must be one of {', '.join(SECTIONS)}, not {kind!r}")
    name = name.strip()
    if not fold_words(name):
        raise ValueError("an entity needs a name")
    taken = {fold_words(e.name): e for e in read_watchlist(config_dir)}
    if fold_words(name) in taken:
        raise ValueError(f"{name!r} is already on the watchlist as {taken[fold_words(name)].name!r}")
    aliases = list(dict.fromkeys(a.strip() for a in (name, *aliases) if a.strip()))
    short = list(dict.fromkeys(s.strip() for s in short if s.strip()))

    path = Path(config_dir) / WATCHLIST_FILE
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    updated = insert_entry(text, SECTIONS[kind], _entry_lines(name, aliases, short))
    added = next(e for e in _parse(yaml.safe_load(updated) or {}, path) if e.kind == kind and e.name == name)
    if list(added.aliases) != aliases or list(added.short) != short:
        raise ValueError(f"{name!r} could not be written to {path} as given")
    replace_atomically(path, updated)
    return path


def _parse(data: dict, path: Path) -> list[Entity]:
    entities = []
    for kind, section in SECTIONS.items():
        for name, spec in (data.get(section) or {}).items():
            if isinstance(spec, dict):
                entities.append(
                    Entity(
                        kind, str(name), _strings(spec.get("aliases")), _strings(spec.get("short")), spec.get("family")
                    )
                )
            elif isinstance(spec, list) or spec is None:
                entities.append(Entity(kind, str(name), _strings(spec)))
            else:
                raise ValueError(f"{path}: {section}: {name!r} needs a list of aliases or a mapping")
    return entities


def _strings(items) -> tuple[str, ...]:
    return tuple(str(item) for item in items or ())


def _entry_lines(name: str, aliases: list[str], short: list[str]) -> list[str]:
    if not short:
        return [f"  {_scalar(name)}: [{', '.join(map(_scalar, aliases))}]"]
    return [
        f"  {_scalar(name)}:",
        f"    aliases: [{', '.join(map(_scalar, aliases))}]",
        f"    short: [{', '.join(map(_scalar, short))}]",
    ]


def _scalar(text: str) -> str:
    """``text`` as a YAML flow scalar: plain when YAML reads it back unchanged, else double-quoted."""
    try:
        if yaml.safe_load(f"[{text}]") == [text] and yaml.safe_load(f"{text}: x") == {text: "x"}:
            return text
    except yaml.YAMLError:
        pass
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

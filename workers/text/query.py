"""The search query language, parsed into plain data (the API's ``q`` and, later, saved searches).

    turkey libya            both words (every word must match; stems count: libya's, Libya'yla)
    "defence cooperation"   an exact phrase (the words in this order, exact forms)
    drone OR İHA            either side (OR binds tighter than the implicit AND)
    -football               not this word (or -"a phrase")
    anlaş*                  a prefix
    lang:ar country:LY topic:defence-cooperation person:"Yaşar Güler" org:… site:aa.com.tr story:42

Parsing is independent of the database; ``workers.storage.search`` turns a ``Query`` into SQLite
FTS5 and PostgreSQL tsquery expressions with the tokens of ``workers.text.analyzer``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from workers.core.errors import MirsadError
from workers.text.analyzer import word_spans

# Field → the tag kind it filters on (None: a column of the item, not a tag).
FIELDS: dict[str, str | None] = {
    "lang": None,
    "site": None,
    "story": None,
    "country": "country",
    "place": "place",
    "topic": "topic",
    "person": "person",
    "org": "org",
}
MAX_TERMS = 32  # a longer query is a paste, not a search; it would make a huge SQL expression


class QueryError(MirsadError):
    """A query that cannot be parsed; the message says where and why."""


@dataclass(frozen=True)
class Word:
    text: str
    prefix: bool = False


@dataclass(frozen=True)
class Phrase:
    words: tuple[str, ...]


Atom = Word | Phrase


@dataclass(frozen=True)
class Clause:
    """Alternatives of which one must match (one alternative: a plain word or phrase); negated: none may."""

    alternatives: tuple[Atom, ...]
    negated: bool = False


@dataclass(frozen=True)
class Query:
    clauses: tuple[Clause, ...] = ()
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def has_text(self) -> bool:
        return bool(self.clauses)


_LEXEME = re.compile(
    r'\s*(?:(?P<neg>-)?(?:(?P<field>[A-Za-z]+):)?(?:"(?P<quoted>[^"]*)"|(?P<bare>[^\s"]+))'
    r'|(?P<quote>"))'
)


def parse(text: str) -> Query:
    """The ``Query`` of a search string; QueryError names what is wrong (unclosed quote, unknown field…)."""
    pieces: list[tuple[bool, str | None, str, bool]] = []  # (negated, field, text, quoted)
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _LEXEME.match(text, position)
        if match is None or match.group("quote"):
            raise QueryError(f"unclosed quote at character {text.index(chr(34), position) + 1}")
        position = match.end()
        quoted = match.group("quoted") is not None
        pieces.append(
            (
                bool(match.group("neg")),
                match.group("field"),
                match.group("quoted") if quoted else match.group("bare"),
                quoted,
            )
        )
    filters: dict[str, list[str]] = {}
    clauses: list[Clause] = []
    pending_or = False
    for negated, name, value, quoted in pieces:
        if name is not None:
            key = name.lower()
            if key not in FIELDS:
                raise QueryError(f"unknown field {name!r} (known: {', '.join(FIELDS)})")
            if negated or pending_or:
                raise QueryError(f"a field filter ({name}:) cannot be negated or joined with OR")
            if not value.strip():
                raise QueryError(f"{name}: needs a value")
            if key == "story" and not value.isdigit():
                raise QueryError(f"story: wants an item number, got {value!r}")
            filters.setdefault(key, []).append(value.strip())
            continue
        if value == "OR" and not quoted and not negated:
            if not clauses or pending_or or clauses[-1].negated:
                raise QueryError("OR needs a word or phrase on each side")
            pending_or = True
            continue
        atom = _atom(value, quoted)
        if atom is None:
            if pending_or:
                raise QueryError("OR needs a word or phrase on each side")
            continue  # punctuation alone: nothing to match
        if pending_or:
            if negated:
                raise QueryError("OR cannot join an exclusion")
            clauses[-1] = Clause(clauses[-1].alternatives + (atom,))
            pending_or = False
        else:
            clauses.append(Clause((atom,), negated))
    if pending_or:
        raise QueryError("OR needs a word or phrase on each side")
    if clauses and all(c.negated for c in clauses):
        raise QueryError("a query needs a word that must match, not only exclusions")
    if sum(len(c.alternatives) for c in clauses) > MAX_TERMS:
        raise QueryError(f"too many words (at most {MAX_TERMS})")
    return Query(tuple(clauses), {key: tuple(values) for key, values in filters.items()})


def _atom(value: str, quoted: bool) -> Atom | None:
    """A bare or quoted piece as a word, a prefix (``anlaş*``) or a phrase (quoted, or al-Dbeiba: parts in order)."""
    prefix = not quoted and value.endswith("*")
    words = [value[start:end] for start, end in word_spans(value.rstrip("*") if prefix else value)]
    if not words:
        if prefix:
            raise QueryError("a prefix needs at least one letter before *")
        return None
    if quoted or len(words) > 1:
        return Phrase(tuple(words))
    return Word(words[0], prefix=prefix)

"""Full-text search on both databases from one analyzer's tokens: same query, same items.

An item's title and text go through ``workers.text.analyzer`` once, in the store step's transaction
(``index_item``); the tokens are stored

* on SQLite in the FTS5 table ``search_fts`` (columns ``surface`` and ``stems``, rowid = item id,
  the ``ascii`` tokenizer so that FTS5 only splits at our spaces and leaves non-ASCII letters alone);
* on PostgreSQL in ``item_search.vector``, a ``tsvector`` written as a literal (GIN-indexed): surface
  tokens with weight A, stems with weight B and a ``~`` in front so the two never merge into one
  lexeme (PostgreSQL keeps one weight per position).

A parsed ``workers.text.query.Query`` compiles to an FTS5 MATCH string or a tsquery literal with the
same meaning: a word matches its surface form or any of its stems, a phrase matches surface forms
in order, a prefix matches surface forms. Relevance weighs exact forms above stems on both.
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Integer,
    Select,
    Subquery,
    cast,
    column,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from workers.core.urls import site_of
from workers.storage.models import Item, ItemSearch
from workers.text.analyzer import Token, analyze, fold_token, iter_word_spans, prefix_stem, query_forms
from workers.text.query import Atom, Phrase, Query, Word

FTS_TABLE = "search_fts"
_FTS = table(FTS_TABLE, column("rowid", Integer))
STEM_MARK = "~"  # PostgreSQL lexemes of stems start with it
PG_LEXEME_BYTES = 2046  # PostgreSQL's longest lexeme
SURFACE_WEIGHT, STEM_WEIGHT = 10.0, 1.0  # SQLite bm25 column weights: an exact form counts ten stems
PG_WEIGHTS = "{0.0, 0.0, 0.1, 1.0}"  # ts_rank's D, C, B (stems), A (surface forms)
SNIPPET_WORDS = 30
RANKED = (
    1000  # a relevance search ranks this many of its newest matches (ranking all 60,000 of a common word costs seconds)
)
REINDEX_BATCH = 500

Executor = Session | Connection


@dataclass(frozen=True)
class IndexedItem:
    """What the index needs of an item (a plain record, so reindex and benchmarks skip the ORM)."""

    id: int
    url: str
    title: str | None
    text: str
    language: str | None
    published_at: str | None
    stored_at: datetime


def published_date(published_at: str | None, stored_at: datetime) -> datetime:
    """The item's date for search: its published date in UTC (UTC when it has no zone), else when stored."""
    try:
        published = datetime.fromisoformat(published_at or "")
    except ValueError:
        return stored_at
    return published.astimezone(UTC) if published.tzinfo else published.replace(tzinfo=UTC)


def document_tokens(title: str | None, body: str, language: str | None) -> list[Token]:
    return analyze(f"{title or ''}\n{body}", language)


def index_item(db: Executor, item: IndexedItem) -> None:
    """Index one item (again): its search row and its tokens, in the caller's transaction."""
    index_items(db, [item])


def index_items(db: Executor, items: Iterable[IndexedItem]) -> int:
    """Index items in one batch of statements; the number indexed."""
    batch = list(items)
    if not batch:
        return 0
    postgres = _dialect(db) == "postgresql"
    rows, fts_rows = [], []
    for item in batch:
        tokens = document_tokens(item.title, item.text, item.language)
        row = {
            "item_id": item.id,
            "site": site_of(item.url),
            "published": published_date(item.published_at, item.stored_at),
        }
        if postgres:
            row["vector"] = _tsvector_literal(tokens)
            row["pairs"] = _pairs_literal(tokens)
        else:
            fts_rows.append(
                {
                    "rowid": item.id,
                    "surface": " ".join(t.surface for t in tokens),
                    "stems": " ".join(t.stem for t in tokens),
                }
            )
        rows.append(row)
    ids = [item.id for item in batch]
    db.execute(delete(ItemSearch).where(ItemSearch.item_id.in_(ids)))
    if postgres:
        db.execute(
            text(
                "INSERT INTO item_search (item_id, site, published, vector, pairs) "
                "VALUES (:item_id, :site, :published, CAST(:vector AS tsvector), CAST(:pairs AS tsvector))"
            ),
            rows,
        )
    else:
        db.execute(insert(ItemSearch), rows)
        db.execute(text(f"DELETE FROM {FTS_TABLE} WHERE rowid IN ({','.join(map(str, ids))})"))
        db.execute(text(f"INSERT INTO {FTS_TABLE} (rowid, surface, stems) VALUES (:rowid, :surface, :stems)"), fts_rows)
    return len(batch)


def reindex(db: Executor, batch_size: int = REINDEX_BATCH) -> int:
    """Index every stored item afresh (migration 0005 calls it; so does ``mirsad reindex``)."""
    count, last_id = 0, 0
    columns = (Item.id, Item.url, Item.title, Item.text, Item.language, Item.published_at, Item.stored_at)
    while True:
        rows = db.execute(select(*columns).where(Item.id > last_id).order_by(Item.id).limit(batch_size)).all()
        if not rows:
            return count
        count += index_items(db, [IndexedItem(*row) for row in rows])
        last_id = rows[-1].id


def _dialect(db: Executor) -> str:
    return db.get_bind().dialect.name if isinstance(db, Session) else db.dialect.name


# -- queries ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextMatch:
    """A query's text part compiled for one database: ``expression`` for MATCH (SQLite) or @@ (PostgreSQL)."""

    dialect: str
    expression: str
    pairs: str | None = None  # PostgreSQL: what the query's phrases need of ``item_search.pairs``

    def ids(self) -> Select:
        """The ids of the matching items (for ``Item.id.in_``): no ranking, as a date order or an export needs."""
        if self.dialect == "postgresql":
            if self.pairs:  # implied by the phrases: the GIN index of pairs leaves few vectors to read, and
                # the vector is tested as a function, which the planner cannot take to the vector's index
                # (it did: 31,000 vectors read for "defence cooperation" instead of 3,900)
                return select(ItemSearch.item_id).where(
                    ItemSearch.pairs.op("@@")(cast(literal(self.pairs), TSQUERY)),
                    func.ts_match_vq(ItemSearch.vector, self._tsquery()),
                )
            return select(ItemSearch.item_id).where(ItemSearch.vector.op("@@")(self._tsquery()))
        return select(_FTS.c.rowid).where(self._fts_match())

    def ranked(self, matching: Select, candidates: int = RANKED) -> Subquery:
        """(item_id, rank) of the ``candidates`` newest items of ``matching`` (a select of ``Item.id`` joined
        to ``item_search``, with the caller's filters) that match, ranked (lower is better): ranking is what
        costs, so it is bounded.

        On SQLite the FTS5 table drives (its rowids come newest first) and bm25 is computed for the
        candidates alone; on PostgreSQL the newest matching ids come from the GIN index, then ts_rank
        reads those candidates' vectors alone.
        """
        if self.dialect == "postgresql":
            # Every match's id from the GIN index first (see prefer_index), the newest of them next.
            matched = self.ids().cte("matched").prefix_with("MATERIALIZED")
            newest = (
                matching.with_only_columns(ItemSearch.item_id, ItemSearch.vector)
                .join(matched, matched.c.item_id == ItemSearch.item_id)
                .order_by(ItemSearch.item_id.desc())
                .limit(candidates)
                .subquery("newest")
            )
            weighted = func.ts_rank(literal_column(f"'{PG_WEIGHTS}'::float4[]"), newest.c.vector, self._tsquery())
            return select(newest.c.item_id, (-weighted).label("rank")).subquery("hits")
        bm25 = func.bm25(literal_column(FTS_TABLE), SURFACE_WEIGHT, STEM_WEIGHT)
        return (
            matching.with_only_columns(_FTS.c.rowid.label("item_id"), bm25.label("rank"))
            .join(_FTS, _FTS.c.rowid == Item.id)
            .where(self._fts_match())
            .order_by(_FTS.c.rowid.desc())
            .limit(candidates)
            .subquery("hits")
        )

    def prefer_index(self, db: Executor) -> None:
        """On PostgreSQL, for the rest of the transaction: matches come from the GIN index, never from a
        scan that tests each row. The planner prices ``@@`` as cheap, but each row tested means reading
        and uncompressing its vector from TOAST (several seconds for 100,000 items), while the index
        answers a query without phrases exactly, reading no vector."""
        if self.dialect == "postgresql":
            db.execute(text("SET LOCAL enable_seqscan = off"))

    def _tsquery(self):
        return cast(literal(self.expression), TSQUERY)

    def _fts_match(self):
        return text(f"{FTS_TABLE} MATCH :fts").bindparams(fts=self.expression)


def compile_text(query: Query, dialect: str, language: str | None = None) -> TextMatch | None:
    """The text part of ``query`` for ``dialect``; None when it has no words (filters only) or none survive."""
    positive: list[str] = []
    negative: list[str] = []
    pairs: list[str] = []
    for clause in query.clauses:
        alternatives = [
            compiled for atom in clause.alternatives if (compiled := _compile_atom(atom, dialect, language)) is not None
        ]
        if not alternatives:
            continue
        needed = [_atom_pairs(atom, language) for atom in clause.alternatives]
        if not clause.negated and all(needed):
            pairs.append(_either("postgresql", [n for n in needed if n]))
        expression = (
            alternatives[0]
            if len(alternatives) == 1
            else "(" + (" | " if dialect == "postgresql" else " OR ").join(alternatives) + ")"
        )
        (negative if clause.negated else positive).append(expression)
    if not positive:
        return None
    if dialect == "postgresql":
        return TextMatch(dialect, " & ".join(positive + [f"!{n}" for n in negative]), " & ".join(pairs) or None)
    return TextMatch(dialect, " AND ".join(positive) + "".join(f" NOT {n}" for n in negative))


def _compile_atom(atom: Atom, dialect: str, language: str | None) -> str | None:
    """One word, prefix or phrase as a boolean expression of ``dialect``.

    A word: its surface form or any of its stems. A prefix: the start of a surface form or of a stem
    (Arabic clitics stripped, so عسكر* finds العسكرية). A phrase of several words: the surface forms
    in order, or the stems in order (للتعاون الدفاعي is the phrase "التعاون الدفاعي"); quoting one word
    asks for that exact form.
    """
    if isinstance(atom, Word) and atom.prefix:
        surface, stem = fold_token(atom.text), prefix_stem(atom.text)
        if not surface:
            return None
        return _either(
            dialect, [_term(dialect, "surface", surface, prefix=True), _term(dialect, "stems", stem, prefix=True)]
        )
    words = atom.words if isinstance(atom, Phrase) else (atom.text,)
    forms = [form for word in words for form in query_forms(word, language)]
    if not forms:
        return None
    if len(forms) > 1:
        return _either(
            dialect,
            [
                _phrase(dialect, "surface", [surface for surface, _ in forms]),
                *(_phrase(dialect, "stems", list(stems)) for stems in _stem_sequences(forms)),
            ],
        )
    surface, stems = forms[0]
    if isinstance(atom, Phrase):
        return _term(dialect, "surface", surface)
    return _either(dialect, [_term(dialect, "surface", surface), *(_term(dialect, "stems", s) for s in stems)])


def _stem_sequences(forms: list[tuple[str, tuple[str, ...]]]) -> list[tuple[str, ...]]:
    """The phrase's stems in order, once per stemmer (a Latin phrase of unknown language: Turkish and English)."""
    width = max(len(stems) for _, stems in forms)
    return list(dict.fromkeys(tuple(stems[min(i, len(stems) - 1)] for _, stems in forms) for i in range(width)))


def _atom_pairs(atom: Atom, language: str | None) -> str | None:
    """For a phrase of several words: the pairs of adjacent words it needs (of surface forms, or of
    stems for each stem sequence), as a tsquery on ``item_search.pairs``; None for anything else."""
    if not isinstance(atom, Phrase):
        return None
    forms = [form for word in atom.words for form in query_forms(word, language)]
    if len(forms) < 2:
        return None
    sequences = [("", [surface for surface, _ in forms]), *((STEM_MARK, list(s)) for s in _stem_sequences(forms))]
    return _either(
        "postgresql",
        [
            "(" + " & ".join(_pg_lexeme(f"{mark}{a} {b}") for a, b in itertools.pairwise(tokens)) + ")"
            for mark, tokens in sequences
        ],
    )


def _either(dialect: str, expressions: list[str]) -> str:
    unique = list(dict.fromkeys(expressions))
    if len(unique) == 1:
        return unique[0]
    return "(" + (" | " if dialect == "postgresql" else " OR ").join(unique) + ")"


def _term(dialect: str, column: str, token: str, prefix: bool = False) -> str:
    if dialect == "postgresql":
        lexeme = _pg_lexeme(STEM_MARK + token if column == "stems" else token)
        return f"{lexeme}:*" if prefix else lexeme
    return f"{column} : {_fts_string(token)}{' *' if prefix else ''}"


def _phrase(dialect: str, column: str, tokens: list[str]) -> str:
    if dialect == "postgresql":
        return "(" + " <-> ".join(_pg_lexeme(STEM_MARK + t if column == "stems" else t) for t in tokens) + ")"
    return f"{column} : {_fts_string(' '.join(tokens))}"


def _fts_string(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _pg_lexeme(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _pairs_literal(tokens: list[Token]) -> str:
    """Every pair of adjacent surface forms, and of stems (marked), as lexemes without positions."""
    pairs = dict.fromkeys(
        lexeme
        for a, b in itertools.pairwise(tokens)
        for lexeme in (f"{a.surface} {b.surface}", f"{STEM_MARK}{a.stem} {b.stem}")
    )
    return " ".join(_pg_lexeme(pair) for pair in pairs if len(pair.encode()) <= PG_LEXEME_BYTES)


def _tsvector_literal(tokens: list[Token]) -> str:
    """Surface forms (weight A) and marked stems (weight B) at each word's position (1-based, capped)."""
    positions: dict[str, list[str]] = {}
    for token in tokens:
        position = min(token.position + 1, 16383)  # PostgreSQL's largest position
        positions.setdefault(token.surface, []).append(f"{position}A")
        positions.setdefault(STEM_MARK + token.stem, []).append(f"{position}B")
    # A tsvector keeps at most 256 positions per lexeme; the first ones are what phrases need most.
    return " ".join(f"{_pg_lexeme(lexeme)}:{','.join(spots[:256])}" for lexeme, spots in positions.items())


# -- snippets --------------------------------------------------------------------------------------------------


def snippet(body: str, query: Query, language: str | None = None, words: int = SNIPPET_WORDS) -> str:
    """A piece of ``body`` around the first match, HTML-escaped, each matched word in ``<mark>…</mark>``."""
    return Highlighter(query)(body, language, words)


class Highlighter:
    """Snippets of one query for a page of items (``snippet``), each distinct word analysed once per page.

    Words are matched as the index matches them (surface form, stem, or prefix); without a match
    (the hit was in the title) the piece is the beginning of the text. Only the words up to the first
    match and those of the piece are looked at.
    """

    def __init__(self, query: Query):
        self.query = query
        self.terms: dict[str | None, tuple[set[str], set[str], list[str]]] = {}
        self.seen: dict[tuple[str, str | None], bool] = {}

    def matches(self, word: str, language: str | None) -> bool:
        key = (word, language)
        if key not in self.seen:
            if language not in self.terms:
                self.terms[language] = _match_terms(self.query, language)
            self.seen[key] = _matches(word, language, *self.terms[language])
        return self.seen[key]

    def __call__(self, body: str, language: str | None = None, words: int = SNIPPET_WORDS) -> str:
        spans: list[tuple[int, int]] = []
        hit = None
        for start, end in iter_word_spans(body):
            spans.append((start, end))
            if hit is None and self.matches(body[start:end], language):
                hit = len(spans) - 1
            if hit is not None and len(spans) > max(0, hit - words // 3) + words:
                break  # the piece and one word past it (which says whether "…" ends it) are read
        first = max(0, (hit or 0) - words // 3)
        chosen = spans[first : first + words]
        if not chosen:
            return ""
        parts = ["…" if first > 0 else ""]
        cursor = chosen[0][0] if first > 0 else 0
        for start, end in chosen:
            parts.append(html.escape(body[cursor:start]))
            word = html.escape(body[start:end])
            parts.append(f"<mark>{word}</mark>" if self.matches(body[start:end], language) else word)
            cursor = end
        parts.append("…" if first + words < len(spans) else html.escape(body[cursor:]))
        return re.sub(r"\s+", " ", "".join(parts)).strip()


def _match_terms(query: Query, language: str | None) -> tuple[set[str], set[str], list[str]]:
    surfaces: set[str] = set()
    stems: set[str] = set()
    prefixes: list[str] = []
    for clause in query.clauses:
        if clause.negated:
            continue
        for atom in clause.alternatives:
            if isinstance(atom, Word) and atom.prefix:
                prefixes += [fold_token(atom.text), prefix_stem(atom.text)]
                continue
            words = atom.words if isinstance(atom, Phrase) else (atom.text,)
            for word in words:
                for surface, word_stems in query_forms(word, language):
                    surfaces.add(surface)
                    if isinstance(atom, Word) or len(words) > 1:
                        stems.update(word_stems)
    return surfaces, stems, [p for p in prefixes if p]


def _matches(word: str, language: str | None, surfaces: set[str], stems: set[str], prefixes: list[str]) -> bool:
    return any(
        t.surface in surfaces
        or t.stem in stems
        or any(t.surface.startswith(p) or t.stem.startswith(p) for p in prefixes)
        for t in analyze(word, language)
    )

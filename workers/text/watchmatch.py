"""Matching one item against many saved searches (watches) in memory, with the meaning search gives them.

A watch's query is the search language (``workers.text.query``), and a match here means exactly what
``workers.storage.search`` makes the database do with the same query: a word matches its folded form
or any of its stems, a phrase the forms (or the stems) in order, a prefix the start of a form or a
stem, field filters the item's language, site, story and tags. Both sides use the one analyzer.

To scale to thousands of watches, ``WatchIndex`` files each compiled watch under one thing it
requires (a story, a site, a tag, the forms of one word it must contain, a language) and
``candidates`` looks up only the keys an item has; each candidate is then evaluated exactly. A watch
that requires nothing indexable (a prefix alone) is always a candidate.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from statistics import median

from workers.core.urls import site_of
from workers.text.analyzer import analyze, fold_token, prefix_stem, query_forms
from workers.text.query import FIELDS, Phrase, Query, Word

Key = tuple[str, ...]  # ("s", surface), ("t", stem), ("tag", kind, value), ("lang", …), ("site", …), ("story", …)
SURFACE, STEM = "s", "t"


@dataclass(frozen=True)
class ItemFeatures:
    """What matching needs of an item: its tokens' positions by surface form and by stem, and its fields."""

    surfaces: dict[str, tuple[int, ...]]
    stems: dict[str, tuple[int, ...]]
    tags: frozenset[tuple[str, str]]
    language: str | None
    site: str
    story: int | None
    sorted_surfaces: tuple[str, ...] = field(default=(), repr=False)  # for prefixes: a bisection, not a scan
    sorted_stems: tuple[str, ...] = field(default=(), repr=False)

    def field_keys(self) -> Iterable[Key]:
        """The item's keys other than its words: tags, language, site, story."""
        yield from (("tag", kind, value) for kind, value in self.tags)
        if self.language:
            yield ("lang", self.language)
        yield ("site", self.site)
        if self.story is not None:
            yield ("story", str(self.story))


def item_features(
    title: str | None,
    text: str,
    language: str | None,
    url: str,
    tags: Iterable[tuple[str, str]],
    story: int | None,
) -> ItemFeatures:
    """An item's features, its tokens made as the search index makes them (title, then text)."""
    surfaces: dict[str, list[int]] = {}
    stems: dict[str, list[int]] = {}
    for token in analyze(f"{title or ''}\n{text}", language):
        surfaces.setdefault(token.surface, []).append(token.position)
        stems.setdefault(token.stem, []).append(token.position)
    return features_of_tokens(surfaces, stems, language, url, tags, story)


def features_of_tokens(
    surfaces: dict[str, list[int]],
    stems: dict[str, list[int]],
    language: str | None,
    url: str,
    tags: Iterable[tuple[str, str]],
    story: int | None,
) -> ItemFeatures:
    """An item's features from its tokens' positions (as the search index stored them, or freshly made)."""
    return ItemFeatures(
        {k: tuple(v) for k, v in surfaces.items()},
        {k: tuple(v) for k, v in stems.items()},
        frozenset(tags),
        language,
        site_of(url),
        story,
        tuple(sorted(surfaces)),
        tuple(sorted(stems)),
    )


@dataclass(frozen=True)
class Term:
    """A word: its surface form, or any of its stems (``stems`` empty: the exact form only, as quoted)."""

    surface: str
    stems: tuple[str, ...] = ()

    def matches(self, item: ItemFeatures) -> bool:
        return self.surface in item.surfaces or any(stem in item.stems for stem in self.stems)

    def keys(self) -> set[Key]:
        return {(SURFACE, self.surface), *((STEM, stem) for stem in self.stems)}


@dataclass(frozen=True)
class Prefix:
    surface: str
    stem: str

    def matches(self, item: ItemFeatures) -> bool:
        return _has_prefix(item.sorted_surfaces, self.surface) or _has_prefix(item.sorted_stems, self.stem)

    def keys(self) -> set[Key] | None:
        return None  # the start of a word is not a key: always a candidate unless another clause is


@dataclass(frozen=True)
class Sequence:
    """Words in order: one sequence of surface forms and one of stems per stemmer; any one suffices."""

    sequences: tuple[tuple[str, tuple[str, ...]], ...]  # (SURFACE or STEM, tokens)

    def matches(self, item: ItemFeatures) -> bool:
        return any(_in_order(item.surfaces if c == SURFACE else item.stems, tokens) for c, tokens in self.sequences)

    def keys(self) -> set[Key]:
        return {(column, tokens[0]) for column, tokens in self.sequences}


CompiledAtom = Term | Prefix | Sequence


def _has_prefix(ordered: tuple[str, ...], prefix: str) -> bool:
    at = bisect_left(ordered, prefix)
    return at < len(ordered) and ordered[at].startswith(prefix)


def _in_order(positions: dict[str, tuple[int, ...]], tokens: tuple[str, ...]) -> bool:
    if any(token not in positions for token in tokens):
        return False
    later = [set(positions[token]) for token in tokens[1:]]
    return any(all(start + i + 1 in spots for i, spots in enumerate(later)) for start in positions[tokens[0]])


@dataclass(frozen=True)
class CompiledWatch:
    """A watch's query ready to evaluate: clauses of alternatives (all required), exclusions, field filters."""

    watch_id: int
    required: tuple[tuple[CompiledAtom, ...], ...]
    excluded: tuple[tuple[CompiledAtom, ...], ...]
    languages: frozenset[str]
    sites: frozenset[str]
    stories: frozenset[int]
    tags: tuple[tuple[str, str], ...]

    def matches(self, item: ItemFeatures) -> bool:
        return (
            (not self.languages or item.language in self.languages)
            and (not self.sites or item.site in self.sites)
            and (not self.stories or item.story in self.stories)
            and all(tag in item.tags for tag in self.tags)
            and all(any(atom.matches(item) for atom in clause) for clause in self.required)
            and not any(any(atom.matches(item) for atom in clause) for clause in self.excluded)
        )

    def index_keys(self) -> set[Key] | None:
        """The keys of one requirement of this watch (an item lacking all of them cannot match), or None.

        The most selective kind first: a story, a site, a named entity, the forms of one required
        word (the longest: long words are rarer), other tags, then a language."""
        options: list[tuple[int, set[Key]]] = []
        if self.stories:
            options.append((0, {("story", str(s)) for s in self.stories}))
        if self.sites:
            options.append((1, {("site", s) for s in self.sites}))
        for kind, value in self.tags:
            options.append((2 if kind in ("person", "org", "place") else 4, {("tag", kind, value)}))
        for clause in self.required:
            keys: set[Key] = set()
            for atom in clause:
                atom_keys = atom.keys()
                if atom_keys is None:
                    break
                keys |= atom_keys
            else:
                longest = max(len(key[-1]) for key in keys)
                options.append((3 if longest >= 5 else 5, keys))
        if self.languages:
            options.append((6, {("lang", language) for language in self.languages}))
        return min(options, key=lambda option: (option[0], len(option[1])))[1] if options else None


def compile_watch(watch_id: int, query: Query) -> CompiledWatch:
    """``query`` as search would run it: atoms that analyze to nothing are dropped, and a query left
    without a required word keeps only its field filters (what ``storage.search.compile_text`` does)."""
    filters = query.filters
    languages = frozenset(filters.get("lang", ()))
    language = next(iter(languages)) if len(languages) == 1 else None
    required: list[tuple[CompiledAtom, ...]] = []
    excluded: list[tuple[CompiledAtom, ...]] = []
    for clause in query.clauses:
        atoms = tuple(a for atom in clause.alternatives if (a := _compile_atom(atom, language)) is not None)
        if atoms:
            (excluded if clause.negated else required).append(atoms)
    if not required:
        excluded = []
    return CompiledWatch(
        watch_id,
        tuple(required),
        tuple(excluded),
        languages,
        frozenset(site_of(s) for s in filters.get("site", ())),
        frozenset(int(s) for s in filters.get("story", ())),
        tuple(
            (kind, value.upper() if kind == "country" else value)
            for key, values in filters.items()
            if (kind := FIELDS[key])
            for value in values
        ),
    )


def _compile_atom(atom: Word | Phrase, language: str | None) -> CompiledAtom | None:
    if isinstance(atom, Word) and atom.prefix:
        surface = fold_token(atom.text)
        return Prefix(surface, prefix_stem(atom.text)) if surface else None
    words = atom.words if isinstance(atom, Phrase) else (atom.text,)
    forms = [form for word in words for form in query_forms(word, language)]
    if not forms:
        return None
    if len(forms) > 1:
        width = max(len(stems) for _, stems in forms)
        stem_sequences = dict.fromkeys(tuple(stems[min(i, len(stems) - 1)] for _, stems in forms) for i in range(width))
        return Sequence(
            ((SURFACE, tuple(surface for surface, _ in forms)), *((STEM, sequence) for sequence in stem_sequences))
        )
    surface, stems = forms[0]
    return Term(surface) if isinstance(atom, Phrase) else Term(surface, tuple(dict.fromkeys(stems)))


class WatchIndex:
    """Compiled watches filed by a key each requires; ``matching`` gives the ids of those an item matches.

    Word keys are kept by column (surface forms, stems), so finding the item's words among them is a
    set intersection in C, not a lookup per word of a long article."""

    def __init__(self, watches: Iterable[CompiledWatch]):
        self.by_column: dict[str, dict[str, list[CompiledWatch]]] = {SURFACE: {}, STEM: {}}
        self.by_key: dict[Key, list[CompiledWatch]] = {}
        self.always: list[CompiledWatch] = []
        self.size = 0
        for watch in watches:
            self.size += 1
            keys = watch.index_keys()
            if keys is None:
                self.always.append(watch)
            for key in keys or ():
                filed = self.by_column[key[0]].setdefault(key[1], []) if key[0] in self.by_column else None
                (filed if filed is not None else self.by_key.setdefault(key, [])).append(watch)

    def candidates(self, item: ItemFeatures) -> list[CompiledWatch]:
        """The watches the item could match (each once): those filed under a key it has, and the unindexed."""
        found = {watch.watch_id: watch for watch in self.always}
        for column, tokens in ((SURFACE, item.surfaces), (STEM, item.stems)):
            filed = self.by_column[column]
            for token in filed.keys() & tokens.keys():
                found.update((watch.watch_id, watch) for watch in filed[token])
        for key in item.field_keys():
            found.update((watch.watch_id, watch) for watch in self.by_key.get(key, ()))
        return list(found.values())

    def matching(self, item: ItemFeatures) -> list[int]:
        return sorted(watch.watch_id for watch in self.candidates(item) if watch.matches(item))


def is_spike(count: int, history: list[int], factor: float, minimum: int) -> bool:
    """Whether ``count`` matches this hour are a spike: at least ``minimum``, and above ``factor`` times the
    median of ``history`` (the counts of the same hour on earlier days, zeros included)."""
    return count >= minimum and count > factor * (median(history) if history else 0)

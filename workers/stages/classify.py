"""The classify stage: tags on arrival (language, countries, places, people, organisations, topics).

Everything that names a thing lives in ``config/``: ``countries.yaml`` (names, adjectives and
demonyms per country in ar/tr/en), ``places.yaml`` (cities and bases with their country),
``entities.yaml`` (the watchlist of people and organisations, ``workers.stages.entities``) and
``taxonomy.yaml`` (weighted topic rules); places and entities are optional. They are compiled
into one Aho-Corasick automaton (``workers.text.gazetteer``), so a text is read once whatever the size
of the vocabularies. Language comes from py3langid, whose model ships inside its wheel.

Scores: language, the identifier's probability; country, place, person and org,
``1 - exp(-mentions / 2)`` (one mention 0.39, two 0.63, four 0.86); topic,
``min(1, weight total / (2 × threshold))``.

A place is a mention of its country: an item naming Washington is tagged ``country:US`` too
(the place's spelling is in the evidence), so ``--tag country:US`` finds it. A country name that
is also a common word (``ambiguous`` in countries.yaml: Turkish Mısır is Egypt and corn) counts
only when the text also names the country otherwise (another spelling, a nisba, one of its places)
or writes it as a proper noun (Mısır'ın).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import yaml

from workers.core import config_files
from workers.core.document import Document, Tag
from workers.core.settings import get_settings
from workers.stages.entities import WATCHLIST_FILE, read_watchlist
from workers.text.gazetteer import FoldedText, Gazetteer, Match, Term, distinct_spellings, longest

VOCABULARY_FILES = ("countries.yaml", "places.yaml", WATCHLIST_FILE, "taxonomy.yaml")
NAMED_KINDS = ("country", "person", "org")
# py3langid 0.4 tells some Arabic dialects apart (ary Moroccan, arz Egyptian): their probabilities
# add up under ``ar``, and the tag's evidence keeps the label the model gave. Its other labels are
# ISO 639 codes used as they are (ar, tr, en, fa...).
LANGUAGE_FOLDS = {"ary": "ar", "arz": "ar"}
# Endings of the Arabic nisba adjective, added to each ``ar_nisba`` stem: ي، ية، يين، يون، يان، يتين، يتان، يا.
NISBA_ENDINGS = ("ي", "ية", "يين", "يون", "يان", "يتين", "يتان", "يا")
# Language identification reads the title and the start of the body: enough text, bounded time.
LANGUAGE_SAMPLE_CHARS = 1200
MAX_EVIDENCE = 12
# Hits of one rule this close (in words) are one mention: "اتفاقية تعاون عسكري" is one, not two.
MENTION_WORDS = 3
# A place name shared by several places goes to the one whose country is named within this many words.
PLACE_CONTEXT_WORDS = 30
# In taxonomy.yaml, any name of a country or of one of its places (a state as actor: تركيا, Libyan, Ankara).
COUNTRIES_SET = "@countries"


class Name(NamedTuple):
    """What a country, person or org spelling stands for; ``short`` spellings need a full mention too."""

    kind: str
    value: str | None
    short: bool = False


class PlaceName(NamedTuple):
    """A spelling of the vocabulary's place number ``place``; an ``ambiguous`` one is also a common word."""

    place: int
    ambiguous: bool = False


class PlaceContext(NamedTuple):
    """A word that supports place number ``place`` (a district, a landmark) when it stands near a spelling."""

    place: int


@dataclass(frozen=True)
class Place:
    name: str
    country: str


@dataclass(frozen=True)
class Rule:
    """Weighted mentions of ``terms`` (term-list ids), counting only near ``near`` when given; a rule
    adds at most ``cap`` when given (a word repeated through an analysis is not more evidence)."""

    weight: float
    terms: frozenset
    near: frozenset
    window: int
    cap: float | None = None


@dataclass(frozen=True)
class Topic:
    id: str
    threshold: float
    rules: tuple[Rule, ...]
    requires_any: frozenset = frozenset()


@dataclass(frozen=True)
class Vocabulary:
    """Compiled vocabularies: one gazetteer whose targets are a ``Name``, a place or a topic term list id."""

    gazetteer: Gazetteer
    topics: tuple[Topic, ...]
    places: tuple[Place, ...] = ()
    families: dict[str, str] = field(default_factory=dict)  # watchlist name → family


def load_vocabulary(config_dir: Path | str) -> Vocabulary:
    """Read the vocabularies in ``config_dir`` and compile them; ``places.yaml`` and ``entities.yaml`` may be absent."""
    config_dir = Path(config_dir)
    terms = list(_country_terms(_read_yaml(config_dir / "countries.yaml")))
    places_file = config_dir / "places.yaml"
    places = _read_places(_read_yaml(places_file)) if places_file.exists() else ()
    terms.extend(_place_terms(places))
    watchlist = read_watchlist(config_dir)
    terms.extend(_entity_terms(watchlist))
    topics, topic_terms = _compile_taxonomy(_read_yaml(config_dir / "taxonomy.yaml"))
    terms.extend(topic_terms)
    families = {entity.name: entity.family for entity in watchlist if entity.family}
    return Vocabulary(Gazetteer(terms), topics, tuple(place for place, _ in places), families)


def classify(doc: Document, vocabulary: Vocabulary | None = None) -> list[Tag]:
    """Tags for the title and body of ``doc``: language, then countries, people, orgs, places and topics by score."""
    vocabulary = vocabulary or default_vocabulary()
    text = "\n".join(part for part in (doc.title, doc.text) if part)
    tags = []
    language = detect_language(text)
    if language:
        tags.append(language)
    matches = vocabulary.gazetteer.find(FoldedText(text))
    by_target: dict = {}
    for match in matches:
        by_target.setdefault(match.target, []).append(match)
    places = _place_mentions(matches, vocabulary.places)
    implied: dict[str, list[Match]] = {}
    for place, found in places.items():
        implied.setdefault(place.country, []).extend(found)
    for kind in NAMED_KINDS:
        named = [
            m for target, found in by_target.items() if isinstance(target, Name) and target.kind == kind for m in found
        ]
        tags.extend(_name_tags(kind, named, vocabulary.families, implied if kind == "country" else {}))
    tags.extend(
        _by_score(
            [_mention_tag("place", place.name, found, (f"country:{place.country}",)) for place, found in places.items()]
        )
    )
    tags.extend(_topic_tags(by_target, vocabulary.topics))
    return tags


def detect_language(text: str) -> Tag | None:
    """The language of ``text`` (pass title and body: a headline of names alone fools any identifier)."""
    sample = text[:LANGUAGE_SAMPLE_CHARS]
    if not sample.strip():
        return None
    totals: dict[str, float] = {}
    labels: dict[str, str] = {}
    for label, probability in _language_identifier().rank(sample):
        code = LANGUAGE_FOLDS.get(label, label)
        totals[code] = totals.get(code, 0.0) + probability
        labels.setdefault(code, label)  # ranked best first: the model's own top label for the code
    code = max(totals, key=totals.__getitem__)
    return Tag("language", code, min(1.0, totals[code]), [labels[code]])


def default_vocabulary() -> Vocabulary:
    """The vocabulary of ``MIRSAD_CONFIG_DIR``, reloaded when one of its files changes (edits need no restart)."""
    config_dir = get_settings().config_dir
    return config_files.current(
        ("vocabulary", config_dir),
        [config_dir / name for name in VOCABULARY_FILES],
        lambda: load_vocabulary(config_dir),
    )


@lru_cache(maxsize=1)
def _language_identifier():
    """py3langid's bundled model, loaded once per process (about a second)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _read_yaml(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


# --- countries -------------------------------------------------------------------------------------------------


def _country_terms(data: dict):
    for phrase in data.get("ignore") or []:
        yield Term(phrase, Name("country", None))
    for code, entry in (data.get("countries") or {}).items():
        target = Name("country", code)
        for language in ("en", "tr"):
            for name in entry.get(language) or []:
                yield Term(name, target, proper_noun=True)
        for name in entry.get("ar") or []:
            yield Term(name, target)
        for name in entry.get("ambiguous") or []:
            yield Term(name, Name("country", code, short=True), proper_noun=True)
        for stem in entry.get("ar_nisba") or []:
            for ending in NISBA_ENDINGS:
                yield Term(stem + ending, target, article=True)


def _entity_terms(watchlist):
    for entity in watchlist:
        for alias in entity.aliases:
            yield Term(alias, Name(entity.kind, entity.name), proper_noun=True)
        for alias in entity.short:
            yield Term(alias, Name(entity.kind, entity.name, short=True), proper_noun=True)


def _name_tags(kind: str, matches: list[Match], families: dict[str, str], implied: dict[str, list[Match]]) -> list[Tag]:
    """One tag per ``kind`` (country, person or org) named by ``matches`` (all of that kind); the longest
    name wins where names overlap.

    A short spelling (a surname alone, an ambiguous country name) counts only when the document also
    names the entity in full, or a member of its family: أكار after خلوصي أكار, صدام in a story that
    names حفتر. ``implied`` are further mentions by value (the places of a country), which name it in full.
    An ambiguous country name written as a proper noun (``Match.written_as_name``: Mısır'ın, "ve Mısır
    Deniz Kuvvetleri") names the country in full too.
    """
    found = longest(matches)
    named = {_name(m).value for m in found if not _name(m).short or (kind == "country" and m.written_as_name)} | set(
        implied
    )
    named_families = {families[value] for value in named if value in families}
    mentions: dict[str, list[Match]] = {}
    for match in found:
        value = _name(match).value
        if value is None:
            continue
        if _name(match).short and value not in named and families.get(value) not in named_families:
            continue
        mentions.setdefault(value, []).append(match)
    for value, places in implied.items():
        mentions.setdefault(value, []).extend(places)
    return _by_score([_mention_tag(kind, value, found) for value, found in mentions.items()])


def _name(match: Match) -> Name:
    """The ``Name`` a hit of ``_name_tags`` stands for (it keeps only hits on names)."""
    assert isinstance(match.target, Name)
    return match.target


def _mention_tag(kind: str, value: str, mentions: list[Match], labels: tuple[str, ...] = ()) -> Tag:
    """A tag scored by its number of mentions; ``labels`` go before the words in its evidence."""
    return Tag(kind, value, 1 - math.exp(-len(mentions) / 2), [*labels, *_spellings(mentions)])


def _spellings(matches: Iterable[Match]) -> list[str]:
    """The first ``MAX_EVIDENCE`` distinct spellings of the matches: looking one up costs, and most are repeats."""
    return distinct_spellings(matches, MAX_EVIDENCE)


def _by_score(tags: list[Tag]) -> list[Tag]:
    return sorted(tags, key=lambda t: -t.score)


# --- places ----------------------------------------------------------------------------------------------------


def _read_places(data: dict) -> tuple[tuple[Place, dict], ...]:
    places = []
    for entry in data.get("places") or []:
        if not entry.get("name") or not entry.get("country"):
            raise ValueError(f"places: every place needs a name and a country: {entry!r}")
        places.append((Place(str(entry["name"]), str(entry["country"])), entry))
    return tuple(places)


def _place_terms(places):
    """Spellings target ``PlaceName(place, ambiguous)``; context words ``PlaceContext(place)``."""
    for index, (_place, entry) in enumerate(places):
        for language in ("en", "tr"):
            for name in entry.get(language) or []:
                yield Term(name, PlaceName(index), proper_noun=True)
        for name in entry.get("ar") or []:
            yield Term(name, PlaceName(index))
        for name in entry.get("ambiguous") or []:
            yield Term(name, PlaceName(index, ambiguous=True), proper_noun=True)
        for word in entry.get("context") or []:
            yield Term(word, PlaceContext(index), article=True)


def _place_mentions(matches: list[Match], places: tuple[Place, ...]) -> dict[Place, list[Match]]:
    """The mentions of each place named (its tag has its country first in the evidence).

    A spelling that several places share goes, at each mention, to the place with the most mentions of
    its country (country names, its other places, its context words) within ``PLACE_CONTEXT_WORDS``,
    then in the whole text, then to the place listed first. An ``ambiguous`` spelling (also a common
    word) counts only when the text has some such support for its place.
    """
    by_span: dict[tuple[int, int], dict[int, Match]] = {}
    support: dict = {}  # a country code, or a place index for its context words → word positions
    for match in matches:
        target = match.target
        if isinstance(target, Name):
            if target.kind == "country" and target.value:
                support.setdefault(target.value, []).append(match.first)
        elif isinstance(target, PlaceName):
            candidates = by_span.setdefault((match.first, match.last), {})
            if target.place not in candidates or not target.ambiguous:
                candidates[target.place] = match
        elif isinstance(target, PlaceContext):
            support.setdefault(target.place, []).append(match.first)
    for candidates in by_span.values():
        if len(candidates) == 1:
            [(index, match)] = candidates.items()
            if not _place_target(match).ambiguous:
                support.setdefault(places[index].country, []).append(match.first)

    support = {key: sorted(positions) for key, positions in support.items()}

    def strength(index: int, first: int) -> tuple[int, int, int]:
        country, context = support.get(places[index].country, []), support.get(index, [])
        low, high = first - PLACE_CONTEXT_WORDS, first + PLACE_CONTEXT_WORDS
        near = sum(bisect_right(positions, high) - bisect_left(positions, low) for positions in (country, context))
        return near, len(country) + len(context), -index

    chosen = []
    for (first, _last), candidates in by_span.items():
        if len(candidates) == 1:
            [(index, match)] = candidates.items()
        else:
            index = max(candidates, key=lambda i: strength(i, first))
            match = candidates[index]
        if _place_target(match).ambiguous and not strength(index, first)[1]:
            continue
        chosen.append(match)

    mentions: dict[Place, list[Match]] = {}
    for match in longest(chosen):
        mentions.setdefault(places[_place_target(match).place], []).append(match)
    return mentions


def _place_target(match: Match) -> PlaceName:
    """A place hit's target (``_place_mentions`` keeps only spellings in ``by_span``)."""
    assert isinstance(match.target, PlaceName)
    return match.target


# --- topics ----------------------------------------------------------------------------------------------------


def _compile_taxonomy(data: dict) -> tuple[tuple[Topic, ...], list[Term]]:
    """Topics with their rules, and the terms to look for; each list of terms gets an id its hits carry."""
    default_window = int(data.get("window", 6))
    sets = data.get("sets") or {}
    terms: list[Term] = []
    compiled_sets: set[str] = set()

    def term_lists(items, list_id) -> frozenset:
        ids: set[Hashable] = set()
        inline: list[str] = []
        for item in items or []:
            if item == COUNTRIES_SET:
                ids.add(COUNTRIES_SET)
            elif isinstance(item, str) and item.startswith("@"):
                name = item[1:]
                if name not in sets:
                    raise ValueError(f"taxonomy: unknown set {item!r} in {list_id}")
                ids.add(("set", name))
                if name not in compiled_sets:
                    compiled_sets.add(name)
                    terms.extend(_topic_term(t, ("set", name)) for t in sets[name])
            else:
                inline.append(str(item))
        if inline:
            ids.add(list_id)
            terms.extend(_topic_term(t, list_id) for t in inline)
        return frozenset(ids)

    topics = []
    for topic_id, spec in (data.get("topics") or {}).items():
        rules = tuple(
            Rule(
                weight=float(rule.get("weight", 1)),
                terms=term_lists(rule.get("terms"), ("topic", topic_id, index, "terms")),
                near=term_lists(rule.get("near"), ("topic", topic_id, index, "near")),
                window=int(rule.get("window", default_window)),
                cap=float(rule["cap"]) if "cap" in rule else None,
            )
            for index, rule in enumerate(spec.get("rules") or [])
        )
        requires = term_lists(spec.get("requires_any"), ("topic", topic_id, "requires_any"))
        topics.append(Topic(topic_id, float(spec["threshold"]), rules, requires))
    return tuple(topics), terms


def _topic_term(text: str, list_id) -> Term:
    return Term(text, list_id, article=True, inflects=True)


def _topic_tags(by_target: dict, topics: tuple[Topic, ...]) -> list[Tag]:
    """The topics whose rules reach their threshold; ``by_target`` holds the text's matches by target."""
    by_list = {
        **by_target,
        COUNTRIES_SET: [match for target, found in by_target.items() if _names_a_state(target) for match in found],
    }
    merged = _MergedLists(by_list)
    tags = []
    for topic in topics:
        if topic.requires_any and not any(by_list.get(i) for i in topic.requires_any):
            continue
        total, evidence = 0.0, []
        for rule in topic.rules:
            mentions, fired = _mentions(rule, merged)
            added = rule.weight * mentions
            total += added if rule.cap is None else min(added, rule.cap)
            if rule.weight > 0:
                evidence.extend(fired)
        if total >= topic.threshold:
            score = min(1.0, total / (2 * topic.threshold))
            tags.append(Tag("topic", topic.id, score, _spellings(evidence)))
    return _by_score(tags)


def _names_a_state(target) -> bool:
    """A country's name or one of its places: what ``@countries`` stands for in the taxonomy."""
    if isinstance(target, Name):
        return target.kind == "country" and target.value is not None
    return isinstance(target, PlaceName)


class _MergedLists(dict):
    """The hits of several term lists, sorted by position, made once per combination of lists:
    rules share their sets (``@military`` is the context of many), and a text has hundreds of hits."""

    def __init__(self, by_list: dict):
        super().__init__()
        self.by_list = by_list

    def __missing__(self, ids: frozenset) -> tuple[list[Match], list[int]]:
        found = sorted((m for i in ids for m in self.by_list.get(i, ())), key=lambda m: m.first)
        self[ids] = found, [m.first for m in found]
        return self[ids]


def _mentions(rule: Rule, merged: _MergedLists) -> tuple[int, list[Match]]:
    """How many mentions fire the rule, and the matches (term, then the word near it) that fired it.

    Hits within ``MENTION_WORDS`` words of the first hit of a mention belong to it: a phrase counts once.
    """
    hits, _ = merged[rule.terms]
    if not hits:
        return 0, []
    if rule.near:
        context, context_firsts = merged[rule.near]
        if not context:
            return 0, []
        reach = max(m.last - m.first for m in context)
    count, mention_start, fired = 0, None, []
    for hit in hits:
        if rule.near:
            partner = _nearest(hit, context, context_firsts, rule.window, reach)
            if partner is None:
                continue
        if mention_start is None or hit.first - mention_start > MENTION_WORDS:
            count += 1
            mention_start = hit.first
        fired.append(hit)
        if rule.near:
            fired.append(partner)
    return count, fired


def _nearest(hit: Match, context: list[Match], firsts: list[int], window: int, reach: int) -> Match | None:
    """The context match closest to ``hit`` within ``window`` words; ``context`` is sorted by ``firsts``.

    No context match spans more than ``reach`` words after its first, so only those starting within
    ``window + reach`` words before the hit can end near it: a bisect finds them instead of a scan.
    """
    best, best_gap = None, window + 1
    start = bisect_left(firsts, hit.first - window - reach)
    stop = bisect_right(firsts, hit.last + window)
    for other in context[start:stop]:
        if other.last < hit.first:
            gap = hit.first - other.last
        elif other.first > hit.last:
            gap = other.first - hit.last
        else:
            continue  # the same words: a term is not its own context
        if gap < best_gap:
            best, best_gap = other, gap
    return best

"""Story grouping: does a new item report the same event as an earlier one, or republish it verbatim?

Pure functions on plain data; the state (the signatures of earlier items) lives with the items in the
database. ``signature(document)`` turns an item into a small JSON-serialisable ``Signature``, stored
with the item; ``match(signature, candidates)`` compares it with the signatures of the items published
within the window (default 7 days) and answers a ``StoryMatch``: the story to join (or None: a new
story), the item it copies (or None), a score and the reasons.

Three signals, because each catches what the others miss:

- **Shared text** (wire copies, lightly rewritten agency reports): MinHash (datasketch, 128
  permutations) of the body's word 3-shingles after ``textnorm.fold_words``. From the Jaccard estimate
  J and the shingle counts we get the *containment* of the shorter body in the longer,
  ``J·(|A|+|B|) / ((1+J)·min(|A|,|B|))``, which ignores boilerplate one copy adds at the end.
  Containment ≥ ``copy_containment`` (0.8) is a copy; ≥ ``near_duplicate`` (0.5) is the same story.
- **Named entities** (people, organisations, places, countries from classify's tags): language
  independent, so they also work across languages.
- **Key terms and title words**: the event's own words (the place, the object, names the watchlist
  lacks), comparable only between items in the same language.

Different wording of one event is caught by the *event score*, a weighted overlap of the last two:

    event = (0.35 · entities + 0.45 · terms + 0.20 · title) · recency   (same language)
    event = entities · recency                                          (different languages)

Each overlap is ``Σ shared weight / (min(Σ weight of A, Σ weight of B) + 1)``: the share of the smaller
item's content found in the other (a short report inside a long one scores high), damped by the +1 so
that a few shared words never make a full match. A key's weight is its *rarity* in the pool (the
candidates plus the new item), ``ln(1 + N / df)``, times a prior: for entities the kind (person 1,
place and org 0.8, country 0.25: every item here names Turkey and Libya) and the tag's score (how
often it is named); for words 1, or ``COMMON_WORD_WEIGHT`` for the frequent words of the language
(justext's stoplists, shipped with trafilatura), so "minister" and "visit" count little even in a
small pool. Words that named an entity are left out of the terms and title: the entities say *who*,
the terms must say *what happened*. ``recency`` is 1 for items within a day of each other and falls
to 0.6 at the window's edge: reports of one event come out together; the same names days later more
often mean a new meeting.

Same story when the two share at least one person, organisation or place (same topic and same two
countries is not the same event) and, in the same language, ``event ≥ same_event`` (0.22) with
``terms ≥ min_terms`` (0.12: the same people doing something else share names but not the what);
across languages ``event ≥ cross_language_event`` (0.55). The candidate with the highest score gives
the story. Thresholds are in ``StoryRules``; they were set on the seeds and our own fixture set
(bench/stories.py), which is small: expect to retune them on real traffic.

Words are light-stemmed so inflections meet: Arabic loses the article with its clitics (وال، بال،
لل) and one plural or feminine ending; Latin-script words keep their first five letters (a cheap and
well-tested stemmer for Turkish; good enough for English).

Speed: ``StoryIndex`` holds the window's items ready for matching (MinHashes in one numpy matrix,
times parsed, key counts, an index from named entity to items); a match is one numpy pass over all of
them, then a full comparison only of the candidates that share text or a person, organisation or
place, and of those at most ``MAX_COMPARED``: the ones sharing the most text and the rarest names. A
week in which hundreds of items share text and names (one big story, or a site's templated pages)
would otherwise cost a full comparison with each of them for every new item; the best matches are
among the most alike anyway. ``match(signature, candidates)`` builds a throwaway index: fine for tests
and small pools; a worker matching many items should keep one index and ``add`` to it. MinHash LSH
would make the text lookup sub-linear too, but its build cost only pays off far beyond a week of
regional news.
"""

from __future__ import annotations

import base64
import math
import operator
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import chain
from typing import NamedTuple

import numpy as np

from workers.core.document import Document, Tag
from workers.text.textnorm import fold_words

SIGNATURE_VERSION = 1
MINHASH_PERMUTATIONS = 128
MINHASH_SEED = 1
MINHASH_SCHEME = "affine32"
SHINGLE_WORDS = 3
# The lead states the event; later paragraphs are mostly background shared with every related item.
LEAD_WORDS = 80
KEY_TERMS = 40
STEM_LETTERS = 5
MIN_STEM_LETTERS = 3
COMMON_WORD_WEIGHT = 0.25
STOPLIST_LANGUAGES = ("Arabic", "Turkish", "English")
ENTITY_KIND_WEIGHTS = {"person": 1.0, "org": 0.8, "place": 0.8, "country": 0.25}
SPECIFIC_KINDS = ("person", "org", "place")
EVENT_WEIGHTS = {"entities": 0.35, "terms": 0.45, "title": 0.20}
OVERLAP_DAMPING = 1.0
MAX_COMPARED = 48
# In the ranking of candidates for full comparison, a shared name's rarity weight (about 1 to 7) counts
# this much against the text containment (0 to 1): two rare shared names outrank a little shared text.
NAME_RANK_WEIGHT = 0.1

_ARABIC_PREFIX = re.compile(r"^[وف]?(?:بال|كال|لل|ال)")
_ARABIC_SUFFIXES = ("يين", "ات", "ون", "ين", "ه")
# Letters that must remain after an ending of two letters or more: تعاون keeps its ون, عسكريون loses it.
MIN_ROOT_BEFORE_LONG_SUFFIX = 4


@dataclass(frozen=True)
class StoryRules:
    """Thresholds of the decisions (see the module docstring); one place to tune them."""

    window: timedelta = timedelta(days=7)
    fresh: timedelta = timedelta(days=1)
    window_edge_weight: float = 0.6
    copy_containment: float = 0.8
    near_duplicate: float = 0.5
    same_event: float = 0.22
    min_terms: float = 0.12
    cross_language_event: float = 0.55


@dataclass(frozen=True)
class Signature:
    """What story matching needs of an item, small enough to store with it (``to_dict`` is JSON)."""

    published_at: str | None
    language: str | None
    minhash: str
    shingles: int
    terms: dict[str, float]
    title_terms: dict[str, float]
    entities: dict[str, float]

    def to_dict(self) -> dict:
        return {
            "v": SIGNATURE_VERSION,
            "published_at": self.published_at,
            "language": self.language,
            "minhash": self.minhash,
            "shingles": self.shingles,
            "terms": dict(self.terms),
            "title_terms": dict(self.title_terms),
            "entities": dict(self.entities),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Signature:
        if data.get("v") != SIGNATURE_VERSION:
            raise ValueError(f"story signature version {data.get('v')!r}, expected {SIGNATURE_VERSION}")
        return cls(
            published_at=data["published_at"],
            language=data["language"],
            minhash=data["minhash"],
            shingles=int(data["shingles"]),
            terms=_interned(data["terms"]),
            title_terms=_interned(data["title_terms"]),
            entities=_interned(data["entities"]),
        )


def _interned(weights: dict[str, float]) -> dict[str, float]:
    """``weights`` with its keys interned: the window's thousands of signatures read from JSON then share one
    string per stem (most of a worker's story index, which ``StoryIndex`` keeps in memory, is these keys)."""
    return {sys.intern(key): weight for key, weight in weights.items()}


class Candidate(NamedTuple):
    """An earlier item: its id, its story and its signature (a plain tuple will do)."""

    item_id: object
    story_id: object
    signature: Signature


@dataclass(frozen=True)
class StoryMatch:
    """The story to join (None: start a new one), the item this one copies (or None), and why."""

    story_id: object | None
    copy_of: object | None
    score: float
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PairScore:
    """How alike two items are: text containment, the three overlaps and the event score."""

    containment: float
    entities: float
    terms: float
    title: float
    event: float
    shared_entities: tuple[str, ...]
    shared_terms: tuple[str, ...]

    @property
    def shares_specific_entity(self) -> bool:
        return any(_kind(key) in SPECIFIC_KINDS for key in self.shared_entities)


def _kind(entity_key: str) -> str:
    return entity_key.split(":", 1)[0]


# --- signatures ------------------------------------------------------------------------------------------------


def signature(document: Document, tags: Iterable[Tag] | None = None) -> Signature:
    """The signature of ``document`` (body in ``text``, headline in ``title``) with its classify tags.

    The time is ``published_at``, else ``fetched_at``: an item without a date is placed when we saw it.
    """
    tags = list(document.tags if tags is None else tags)
    body_words = fold_words(document.text).split()
    shingles = {" ".join(body_words[i : i + SHINGLE_WORDS]) for i in range(max(1, len(body_words) - SHINGLE_WORDS + 1))}
    language = next((t.value for t in tags if t.kind == "language"), document.language)
    names = _entity_stems(tags)
    return Signature(
        published_at=document.published_at or document.fetched_at,
        language=language,
        minhash=_encode_minhash(shingles),
        shingles=len(shingles),
        terms=_key_terms(body_words, names),
        title_terms={
            stem: _word_prior(stem) for stem in _stems(fold_words(document.title or "").split()) if stem not in names
        },
        entities={
            f"{t.kind}:{t.value}": round(ENTITY_KIND_WEIGHTS[t.kind] * t.score, 3)
            for t in tags
            if t.kind in ENTITY_KIND_WEIGHTS
        },
    )


def _encode_minhash(shingles: set[str]) -> str:
    minhash = _minhash_maker()()
    minhash.update_batch(s.encode("utf-8") for s in shingles)
    return base64.b64encode(minhash.hashvalues.astype("<u4").tobytes()).decode("ascii")


@lru_cache(maxsize=1)
def _minhash_maker():
    """Makes empty MinHashes sharing one set of permutations (drawing them is most of a MinHash's cost).

    datasketch is imported here, not with this module: its package imports scipy (0.6 s), which the
    commands that only read stories (``mirsad stories``, ``show``) never need.
    """
    from datasketch import MinHash

    options = {"num_perm": MINHASH_PERMUTATIONS, "seed": MINHASH_SEED, "scheme": MINHASH_SCHEME}
    permutations = MinHash(**options).permutations
    return lambda: MinHash(**options, permutations=permutations)


def _decode_minhash(encoded: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(encoded), dtype="<u4")


def _key_terms(body_words: list[str], names: frozenset[str]) -> dict[str, float]:
    """The ``KEY_TERMS`` heaviest stems that are not ``names``: what happened, where the entities say who.

    Lead words count twice, frequent words of the language little.
    """
    counts = Counter(stem for stem in _stems(body_words) if stem not in names)
    counts.update(stem for stem in _stems(body_words[:LEAD_WORDS]) if stem not in names)
    weighted = {stem: _word_prior(stem) * (1 + math.log(count)) for stem, count in counts.items()}
    heaviest = sorted(weighted.items(), key=lambda item: (-item[1], item[0]))[:KEY_TERMS]
    return {stem: round(weight, 3) for stem, weight in heaviest}


def _entity_stems(tags: list[Tag]) -> frozenset[str]:
    """Stems of the words that named an entity (a tag's evidence): counted once, as the entity."""
    return frozenset(
        _stems(
            word
            for t in tags
            if t.kind in ENTITY_KIND_WEIGHTS
            for evidence in t.evidence
            for word in fold_words(evidence).split()
        )
    )


def _stems(words: Iterable[str]) -> list[str]:
    return [stem for stem in map(_stem, words) if stem]


def _stem(word: str) -> str | None:
    """Arabic: without the article and its clitics, and one ending; Latin: the first five letters.

    A bare clitic (وتركيا، لتدريب) stays: without a lexicon it can't be told from a root letter (وزير، ليبيا).
    """
    if word.isdigit():
        return word if len(word) >= 2 else None
    if "\u0600" <= word[0] <= "\u06ff":
        without_article = _ARABIC_PREFIX.sub("", word)
        if len(without_article) >= MIN_STEM_LETTERS:
            word = without_article
        word = _strip_arabic_suffix(word)
        return word if len(word) >= MIN_STEM_LETTERS else None
    return word[:STEM_LETTERS] if len(word) >= MIN_STEM_LETTERS else None


def _strip_arabic_suffix(word: str) -> str:
    for suffix in _ARABIC_SUFFIXES:
        least = MIN_ROOT_BEFORE_LONG_SUFFIX if len(suffix) > 1 else MIN_STEM_LETTERS
        if word.endswith(suffix) and len(word) - len(suffix) >= least:
            return word[: -len(suffix)]
    return word


def _word_prior(stem: str) -> float:
    return COMMON_WORD_WEIGHT if stem in _common_stems() else 1.0


@lru_cache(maxsize=1)
def _common_stems() -> frozenset[str]:
    """Stems of the frequent words of Arabic, Turkish and English (justext's stoplists, from its wheel)."""
    import justext

    words = (
        w
        for language in STOPLIST_LANGUAGES
        for entry in justext.get_stoplist(language)
        for w in fold_words(entry).split()
    )
    return frozenset(_stems(words))


# --- matching --------------------------------------------------------------------------------------------------


class Rarity:
    """``ln(1 + N / df)`` of each key (stem or entity) in a pool of N signatures: rare keys weigh more."""

    def __init__(self, frequency: Counter, size: int, plus: Signature | None = None):
        """``frequency`` of each key in ``size`` signatures, and ``plus`` one more (the new item) not in them."""
        self._frequency = frequency
        self._size = size + (plus is not None)
        self._plus = frozenset(_keys(plus)) if plus is not None else frozenset()
        self._weights: dict[str, float] = {}

    @classmethod
    def of(cls, signatures: Iterable[Signature]) -> Rarity:
        signatures = list(signatures)
        return cls(Counter(chain.from_iterable(map(_keys, signatures))), len(signatures))

    def weight(self, key: str) -> float:
        try:
            return self._weights[key]
        except KeyError:
            weight = math.log(1 + self._size / max(1, self._frequency.get(key, 0) + (key in self._plus)))
            self._weights[key] = weight
            return weight

    def total(self, weights: dict[str, float]) -> float:
        return sum(map(operator.mul, weights.values(), map(self.weight, weights)))


def _keys(sig: Signature) -> Iterable[str]:
    return chain(sig.entities, sig.terms.keys() | sig.title_terms.keys())


def compare(a: Signature, b: Signature, rarity: Rarity) -> PairScore:
    """How alike ``a`` and ``b`` are (see the module docstring for the measures)."""
    containment = _containment_from_jaccard(
        float((_decode_minhash(a.minhash) == _decode_minhash(b.minhash)).mean()), a.shingles, b.shingles
    )
    return _compare(a, b, rarity, float(containment))


class StoryIndex:
    """Earlier items prepared once for many matches: MinHashes in one matrix, times parsed, keys counted.

    Build it from the stored signatures of the items of the window (``StoryIndex(candidates)``) and
    ``add`` items as they are stored; ``match`` then costs a numpy pass plus a full comparison of the
    few candidates that share text or a named person, organisation or place with the new item.
    Rarity is counted over every item in the index: give it the window's items, not the archive.
    """

    def __init__(self, candidates: Iterable[Candidate] = (), rules: StoryRules = StoryRules()):
        self.rules = rules
        self._candidates: list[Candidate] = []
        # Grown by doubling, so that adding an item does not copy the window: rows past len(self) are unused.
        self._minhashes = np.zeros((0, MINHASH_PERMUTATIONS), dtype=np.uint32)
        self._sizes = np.zeros(0)
        self._times = np.zeros(0)
        self._frequency: Counter = Counter()
        self._by_entity: dict[str, list[int]] = defaultdict(list)
        for candidate in candidates:
            self.add(*candidate)

    def __len__(self) -> int:
        return len(self._candidates)

    def add(self, item_id: object, story_id: object, sig: Signature) -> None:
        row = len(self._candidates)
        if row == len(self._times):
            capacity = max(64, 2 * row)
            self._minhashes = np.resize(self._minhashes, (capacity, MINHASH_PERMUTATIONS))
            self._sizes, self._times = np.resize(self._sizes, capacity), np.resize(self._times, capacity)
        self._minhashes[row] = _decode_minhash(sig.minhash)
        # The matrix holds the MinHash: its base64 text (~700 bytes) would only double it in memory.
        self._candidates.append(Candidate(item_id, story_id, replace(sig, minhash="")))
        self._sizes[row], self._times[row] = sig.shingles, _timestamp(sig)
        self._frequency.update(_keys(sig))
        for key in sig.entities:
            if _kind(key) in SPECIFIC_KINDS:
                self._by_entity[key].append(row)

    def match(self, new: Signature) -> StoryMatch:
        """The story ``new`` belongs to among the indexed items, and the item it copies."""
        rules = self.rules
        if not self._candidates:
            return StoryMatch(None, None, 0.0, ["no candidate"])
        count = len(self._candidates)
        times = self._times[:count]
        new_time = _timestamp(new)
        in_window = np.isnan(times) | np.isnan(new_time) | (np.abs(times - new_time) <= rules.window.total_seconds())
        jaccard = (self._minhashes[:count] == _decode_minhash(new.minhash)).mean(axis=1)
        containments = _containment_from_jaccard(jaccard, new.shingles, self._sizes[:count])
        rarity = Rarity(self._frequency, count, plus=new)
        best: tuple[float, Candidate, PairScore] | None = None
        copies: list[Candidate] = []
        for index in self._most_alike(new, containments, in_window, rarity):
            candidate, containment = self._candidates[index], float(containments[index])
            sig = candidate.signature
            if (
                containment < rules.near_duplicate
                and new.language == sig.language
                and _overlap(new.terms, sig.terms, rarity)[0] < rules.min_terms
            ):
                continue  # the cheap test first: most related candidates share too few words
            pair = _compare(new, sig, rarity, containment)
            score = _story_score(
                pair,
                same_language=new.language == sig.language,
                recency=_recency(new_time, times[index], rules),
                rules=rules,
            )
            if score is None:
                continue
            if containment >= rules.copy_containment and not times[index] > new_time:
                copies.append(candidate)
            if best is None or score > best[0]:
                best = (score, candidate, pair)
        if best is None:
            return StoryMatch(None, None, 0.0, ["no candidate reports the same event"])
        score, candidate, pair = best
        original = min(copies, key=lambda c: _sort_time(c.signature)) if copies else None
        reasons = _reasons(candidate, pair, score)
        if original is not None:
            reasons.append(f"copy of item {original.item_id}")
        return StoryMatch(candidate.story_id, original.item_id if original else None, round(score, 3), reasons)

    def _most_alike(self, new: Signature, containments: np.ndarray, in_window: np.ndarray, rarity: Rarity) -> list[int]:
        """The rows worth a full comparison, earliest first: in the window, sharing text or a person,
        organisation or place (nothing else can match), at most ``MAX_COMPARED`` of the most alike."""
        rank = containments * (containments >= self.rules.near_duplicate)
        for key in new.entities:
            naming = self._by_entity.get(key)  # the rows that name this person, organisation or place
            if naming:
                rank[naming] += NAME_RANK_WEIGHT * rarity.weight(key)
        rows = np.flatnonzero((rank > 0) & in_window)
        if len(rows) > MAX_COMPARED:  # the highest ranks; among equals, the earliest (the original of copies)
            rows = np.sort(rows[np.lexsort((rows, -rank[rows]))[:MAX_COMPARED]])
        return rows.tolist()


def match(new: Signature, candidates: Iterable[Candidate], rules: StoryRules = StoryRules()) -> StoryMatch:
    """The story ``new`` belongs to among ``candidates`` (earlier items), and the item it copies."""
    return StoryIndex(candidates, rules).match(new)


def assign_stories(
    items: Iterable[tuple[object, Signature]], rules: StoryRules = StoryRules()
) -> dict[object, StoryMatch]:
    """Stories for a batch of items, taken in order of publication as the pipeline would meet them.

    An item that joins no story starts its own, whose id is the item's id (for backfills and benchmarks).
    """
    index = StoryIndex(rules=rules)
    result: dict[object, StoryMatch] = {}
    for item_id, sig in sorted(items, key=lambda item: _sort_time(item[1])):
        found = index.match(sig)
        if found.story_id is None:
            found = StoryMatch(item_id, None, found.score, found.reasons)
        result[item_id] = found
        index.add(item_id, found.story_id, sig)
    return result


def _story_score(pair: PairScore, same_language: bool, recency: float, rules: StoryRules) -> float | None:
    """The score of a candidate that reports the same event, or None."""
    if pair.containment >= rules.near_duplicate:
        return max(pair.containment, pair.event)
    if not pair.shares_specific_entity:
        return None
    event = pair.event * recency
    if same_language:
        return event if event >= rules.same_event and pair.terms >= rules.min_terms else None
    return event if event >= rules.cross_language_event else None


def _compare(a: Signature, b: Signature, rarity: Rarity, containment: float) -> PairScore:
    entities, shared_entities = _overlap(a.entities, b.entities, rarity)
    if a.language == b.language:
        terms, shared_terms = _overlap(a.terms, b.terms, rarity)
        title, _ = _overlap(a.title_terms, b.title_terms, rarity)
        event = EVENT_WEIGHTS["entities"] * entities + EVENT_WEIGHTS["terms"] * terms + EVENT_WEIGHTS["title"] * title
    else:
        terms, title, shared_terms, event = 0.0, 0.0, (), entities
    return PairScore(containment, entities, terms, title, event, shared_entities, shared_terms)


def _overlap(a: dict[str, float], b: dict[str, float], rarity: Rarity) -> tuple[float, tuple[str, ...]]:
    """Shared weight over the smaller side's total (+ damping), and the shared keys, heaviest first."""
    if not a or not b:
        return 0.0, ()
    shared = {key: min(a[key], b[key]) * rarity.weight(key) for key in a.keys() & b.keys()}
    if not shared:
        return 0.0, ()
    score = sum(shared.values()) / (min(rarity.total(a), rarity.total(b)) + OVERLAP_DAMPING)
    return score, tuple(sorted(shared, key=lambda key: -shared[key]))


def _containment_from_jaccard(jaccard, size_a, size_b):
    """|A∩B| / min(|A|, |B|) from J = |A∩B| / |A∪B|: |A∩B| = J·(|A|+|B|) / (1+J)."""
    smaller = np.maximum(np.minimum(size_a, size_b), 1)
    return np.minimum(1.0, jaccard * (size_a + size_b) / ((1 + jaccard) * smaller))


def _reasons(candidate: Candidate, pair: PairScore, score: float) -> list[str]:
    reasons = [
        f"item {candidate.item_id} (story {candidate.story_id}): score {score:.2f}, "
        f"text {pair.containment:.2f}, entities {pair.entities:.2f}, terms {pair.terms:.2f}, "
        f"title {pair.title:.2f}"
    ]
    if pair.shared_entities:
        reasons.append("shared entities: " + ", ".join(pair.shared_entities[:6]))
    if pair.shared_terms:
        reasons.append("shared terms: " + ", ".join(pair.shared_terms[:8]))
    return reasons


# --- time ------------------------------------------------------------------------------------------------------


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _timestamp(sig: Signature) -> float:
    """Seconds since the epoch, NaN when unknown (an unknown time rules no candidate out)."""
    parsed = _parse_time(sig.published_at)
    return parsed.timestamp() if parsed else math.nan


def _recency(time_a: float, time_b: float, rules: StoryRules) -> float:
    """1 within ``fresh`` of each other, falling linearly to ``window_edge_weight`` at the window's edge.

    Reports of one event come out within a day or two; the same names five days later more often
    mean a new meeting. Unknown times count as fresh.
    """
    if math.isnan(time_a) or math.isnan(time_b) or rules.window <= rules.fresh:
        return 1.0
    fresh, window = rules.fresh.total_seconds(), rules.window.total_seconds()
    late = (abs(time_a - time_b) - fresh) / (window - fresh)
    return 1.0 - (1.0 - rules.window_edge_weight) * min(1.0, max(0.0, late))


def _sort_time(sig: Signature) -> datetime:
    return _parse_time(sig.published_at) or datetime.max.replace(tzinfo=UTC)

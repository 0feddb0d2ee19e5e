"""The classify stage: tags on arrival (language, countries, topics), from vocabularies users edit.

Everything that names a thing lives in ``config/``: ``countries.yaml`` (names, adjectives and
demonyms per country in ar/tr/en), ``entities.yaml`` (a watchlist of people and organisations,
optional) and ``taxonomy.yaml`` (weighted topic rules). They are compiled
into one Aho-Corasick automaton (``workers.gazetteer``), so a text is read once whatever the size
of the vocabularies. Language comes from py3langid, whose model ships inside its wheel.

Scores: language, the identifier's probability; country, person and org, ``1 - exp(-mentions / 2)``
(one mention 0.39, two 0.63, four 0.86); topic, ``min(1, weight total / (2 × threshold))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from workers.document import Document, Tag
from workers.gazetteer import FoldedText, Gazetteer, Match, Term, longest
from workers.settings import get_settings

VOCABULARY_FILES = ("countries.yaml", "entities.yaml", "taxonomy.yaml")
NAMED_KINDS = ("country", "person", "org")
# Endings of the Arabic nisba adjective, added to each ``ar_nisba`` stem: ي، ية، يين، يون، يان، يتين، يتان، يا.
NISBA_ENDINGS = ("ي", "ية", "يين", "يون", "يان", "يتين", "يتان", "يا")
# Language identification reads the title and the start of the body: enough text, bounded time.
LANGUAGE_SAMPLE_CHARS = 2000
MAX_EVIDENCE = 12
# Hits of one rule this close (in words) are one mention: "اتفاقية تعاون عسكري" is one, not two.
MENTION_WORDS = 3


@dataclass(frozen=True)
class Rule:
    """Weighted mentions of ``terms`` (term-list ids), counting only near ``near`` when given."""

    weight: float
    terms: frozenset
    near: frozenset
    window: int


@dataclass(frozen=True)
class Topic:
    id: str
    threshold: float
    rules: tuple[Rule, ...]
    requires_any: frozenset = frozenset()


@dataclass(frozen=True)
class Vocabulary:
    """Compiled vocabularies: one gazetteer whose targets are ``(kind, value)`` of a name or a topic term list id."""

    gazetteer: Gazetteer
    topics: tuple[Topic, ...]


def load_vocabulary(config_dir: Path | str) -> Vocabulary:
    """Read the vocabularies in ``config_dir`` and compile them; ``entities.yaml`` may be absent."""
    config_dir = Path(config_dir)
    terms = list(_country_terms(_read_yaml(config_dir / "countries.yaml")))
    entities = config_dir / "entities.yaml"
    if entities.exists():
        terms.extend(_entity_terms(_read_yaml(entities)))
    topics, topic_terms = _compile_taxonomy(_read_yaml(config_dir / "taxonomy.yaml"))
    terms.extend(topic_terms)
    return Vocabulary(Gazetteer(terms), topics)


def classify(doc: Document, vocabulary: Vocabulary | None = None) -> list[Tag]:
    """Tags for the title and body of ``doc``: language, then countries, people, organisations and topics by score."""
    vocabulary = vocabulary or default_vocabulary()
    text = "\n".join(part for part in (doc.title, doc.text) if part)
    tags = []
    language = detect_language(text)
    if language:
        tags.append(language)
    matches = vocabulary.gazetteer.find(FoldedText(text))
    for kind in NAMED_KINDS:
        tags.extend(_name_tags(kind, matches))
    tags.extend(_topic_tags(matches, vocabulary.topics))
    return tags


def detect_language(text: str) -> Tag | None:
    sample = text[:LANGUAGE_SAMPLE_CHARS]
    if not sample.strip():
        return None
    code, probability = _language_identifier().classify(sample)
    return Tag("language", code, float(probability), [])


def default_vocabulary() -> Vocabulary:
    """The vocabulary of ``MIRSAD_CONFIG_DIR``, reloaded when one of its files changes (edits need no restart)."""
    config_dir = get_settings().config_dir
    stamps = tuple(_mtime(config_dir / name) for name in VOCABULARY_FILES)
    return _cached_vocabulary(str(config_dir), stamps)


@lru_cache(maxsize=2)
def _cached_vocabulary(config_dir: str, stamps: tuple[int, ...]) -> Vocabulary:
    return load_vocabulary(config_dir)


@lru_cache(maxsize=1)
def _language_identifier():
    """py3langid's bundled model, loaded once per process (about a second)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def _read_yaml(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


# --- countries -------------------------------------------------------------------------------------------------

def _country_terms(data: dict):
    for phrase in data.get("ignore") or []:
        yield Term(phrase, ("country", None))
    for code, entry in (data.get("countries") or {}).items():
        target = ("country", code)
        for language in ("en", "tr"):
            for name in entry.get(language) or []:
                yield Term(name, target, proper_noun=True)
        for name in entry.get("ar") or []:
            yield Term(name, target)
        for stem in entry.get("ar_nisba") or []:
            for ending in NISBA_ENDINGS:
                yield Term(stem + ending, target, article=True)


def _entity_terms(data: dict):
    for kind, section in (("person", "persons"), ("org", "orgs")):
        for name, aliases in (data.get(section) or {}).items():
            for alias in aliases or []:
                yield Term(alias, (kind, name), proper_noun=True)


def _name_tags(kind: str, matches: list[Match]) -> list[Tag]:
    """One tag per country, person or org named; the longest name wins where names overlap."""
    found = longest(m for m in matches if isinstance(m.target, tuple) and m.target[0] == kind)
    evidence: dict[str, list[str]] = {}
    for match in found:
        value = match.target[1]
        if value is not None:
            evidence.setdefault(value, []).append(match.evidence)
    tags = [Tag(kind, value, 1 - math.exp(-len(words) / 2), list(dict.fromkeys(words))[:MAX_EVIDENCE])
            for value, words in evidence.items()]
    return sorted(tags, key=lambda t: -t.score)


# --- topics ----------------------------------------------------------------------------------------------------

def _compile_taxonomy(data: dict) -> tuple[tuple[Topic, ...], list[Term]]:
    """Topics with their rules, and the terms to look for; each list of terms gets an id its hits carry."""
    default_window = int(data.get("window", 6))
    sets = data.get("sets") or {}
    terms: list[Term] = []
    compiled_sets: set[str] = set()

    def term_lists(items, list_id) -> frozenset:
        ids, inline = set(), []
        for item in items or []:
            if isinstance(item, str) and item.startswith("@"):
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
            Rule(weight=float(rule.get("weight", 1)),
                 terms=term_lists(rule.get("terms"), ("topic", topic_id, index, "terms")),
                 near=term_lists(rule.get("near"), ("topic", topic_id, index, "near")),
                 window=int(rule.get("window", default_window)))
            for index, rule in enumerate(spec.get("rules") or []))
        requires = term_lists(spec.get("requires_any"), ("topic", topic_id, "requires_any"))
        topics.append(Topic(topic_id, float(spec["threshold"]), rules, requires))
    return tuple(topics), terms


def _topic_term(text: str, list_id) -> Term:
    return Term(text, list_id, article=True)


def _topic_tags(matches: list[Match], topics: tuple[Topic, ...]) -> list[Tag]:
    by_list: dict = {}
    for match in matches:
        by_list.setdefault(match.target, []).append(match)
    tags = []
    for topic in topics:
        if topic.requires_any and not any(by_list.get(i) for i in topic.requires_any):
            continue
        total, evidence = 0.0, []
        for rule in topic.rules:
            mentions, words = _mentions(rule, by_list)
            total += rule.weight * mentions
            if rule.weight > 0:
                evidence.extend(words)
        if total >= topic.threshold:
            score = min(1.0, total / (2 * topic.threshold))
            tags.append(Tag("topic", topic.id, score, list(dict.fromkeys(evidence))[:MAX_EVIDENCE]))
    return sorted(tags, key=lambda t: -t.score)


def _mentions(rule: Rule, by_list: dict) -> tuple[int, list[str]]:
    """How many mentions fire the rule, and the words (term, then the word near it) that fired it.

    Hits within ``MENTION_WORDS`` words of the first hit of a mention belong to it: a phrase counts once.
    """
    hits = sorted((m for i in rule.terms for m in by_list.get(i, ())), key=lambda m: m.first)
    context = [m for i in rule.near for m in by_list.get(i, ())]
    count, mention_start, words = 0, None, []
    for hit in hits:
        if rule.near:
            partner = _nearest(hit, context, rule.window)
            if partner is None:
                continue
        if mention_start is None or hit.first - mention_start > MENTION_WORDS:
            count += 1
            mention_start = hit.first
        words.append(hit.evidence)
        if rule.near:
            words.append(partner.evidence)
    return count, words


def _nearest(hit: Match, context: list[Match], window: int) -> Match | None:
    best, best_gap = None, window + 1
    for other in context:
        if other.last < hit.first:
            gap = hit.first - other.last
        elif other.first > hit.last:
            gap = other.first - hit.last
        else:
            continue  # the same words: a term is not its own context
        if gap < best_gap:
            best, best_gap = other, gap
    return best

"""The one search analyzer: the same tokens for indexing and for queries, on SQLite and PostgreSQL alike.

Each word gives a *surface* token (the word folded: no diacritics or tatweel, one alef, ى→ي, ة→ه,
Turkish İ/I/ı/i met on one form) and a *stem* token (Arabic proclitics و ف ب ك ل and ال stripped,
then the Snowball stemmer of the language). Exact forms rank above stems because the backends
weigh surface tokens higher.

Why not the databases' own analyzers: PostgreSQL's ``arabic`` configuration stems التعاون to تعا
but تعاون to تعاون (Snowball's suffix rules depend on whether it removed ال itself), and SQLite's
``unicode61`` splits a word at a shadda and folds Turkish Işık to isık. Stripping the clitics
before the stemmer gives every form of the word one stem; the databases only store our tokens.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

from workers.text.textnorm import fold_words

STEMMED_LANGUAGES = {"ar": "arabic", "tr": "turkish", "en": "english"}
LATIN_QUERY_LANGUAGES = ("tr", "en")  # a Latin query word of unknown language is stemmed both ways

# Diacritics and tatweel go first, so that a shadda or a kashida never splits a word.
_ARABIC_MARKS = re.compile("[\u0640\u064b-\u065f\u0670\u06d6-\u06ed]")
# A word: letters and digits, with apostrophe-joined parts (Turkish İstanbul'da, English Turkey's).
_WORD = re.compile(r"[^\W_]+(?:['’ʼ][^\W_]+)*")
# The same words in raw text, marks included (to find a word's place in the text for snippets).
_RAW_WORD = re.compile(
    "(?:[^\\W_]|[\u0640\u064b-\u065f\u0670\u06d6-\u06ed])+"
    "(?:['’ʼ](?:[^\\W_]|[\u0640\u064b-\u065f\u0670\u06d6-\u06ed])+)*"
)
_APOSTROPHES = re.compile(r"['’ʼ]")
_ARABIC_LETTER = re.compile("[\u0621-\u064a]")
# Proclitics, longest first: a conjunction (و ف), then a preposition (ب ك ل), then the article (ال);
# ل before ال is written لل.
_CLITICS = tuple(
    sorted(
        {c + p + a for c in ("", "و", "ف") for p in ("", "ب", "ك", "ل") for a in ("", "ال")}
        | {c + "لل" for c in ("", "و", "ف")},
        key=len,
        reverse=True,
    )
)
_MIN_STEM_LETTERS = 3  # a prefix is a clitic only if this much word stays (بال+حث is not a clitic)
_TURKISH_VOWELS = frozenset("aeıioöuü")


@dataclass(frozen=True)
class Token:
    """One word of a text: where it is (its index among the words), its folded form and its stem."""

    position: int
    surface: str
    stem: str


def analyze(text: str, language: str | None = None) -> list[Token]:
    """The tokens of ``text`` (an item's title and body, or one query word) in the item's ``language``."""
    tokens: list[Token] = []
    for word in _WORD.findall(_ARABIC_MARKS.sub("", unicodedata.normalize("NFC", text))):
        for surface, stem in _word_forms(word, language):
            tokens.append(Token(len(tokens), surface, stem))
    return tokens


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every word of ``text`` as written (diacritics inside it included)."""
    return list(iter_word_spans(text))


def iter_word_spans(text: str) -> Iterator[tuple[int, int]]:
    """``word_spans`` one at a time (a snippet stops reading a long text once it has its piece)."""
    return (match.span() for match in _RAW_WORD.finditer(text))


def query_forms(word: str, language: str | None = None) -> list[tuple[str, tuple[str, ...]]]:
    """For one query word: (surface, its stem per language tried) for each token it makes.

    Without a language, a Latin word takes both the Turkish and the English stem (an item's stem was
    made by its own language's stemmer, unknown to the query); Arabic script has one stemmer.
    """
    languages = (language,) if language or _ARABIC_LETTER.search(word) else LATIN_QUERY_LANGUAGES
    clean = _ARABIC_MARKS.sub("", unicodedata.normalize("NFC", word))
    per_language = [[pair for raw in _WORD.findall(clean) for pair in _word_forms(raw, lang)] for lang in languages]
    return [(pairs[0][0], tuple(stem for _surface, stem in pairs)) for pairs in zip(*per_language, strict=True)]


def fold_token(text: str) -> str:
    """The surface form of a piece of text (a prefix in a query): folded, apostrophes and spaces dropped."""
    return fold_words(_ARABIC_MARKS.sub("", _APOSTROPHES.sub("", text))).replace(" ", "")


def prefix_stem(text: str) -> str:
    """The stem side of a prefix query: folded, and in Arabic without its proclitics (عسكر*, والعسكر*)."""
    folded = fold_token(text)
    return strip_clitics(folded) if _ARABIC_LETTER.search(folded) else folded


@lru_cache(maxsize=200_000)
def _word_forms(word: str, language: str | None) -> tuple[tuple[str, str], ...]:
    """(surface, stem) of the tokens one word makes: one, or one per part that folding splits apart."""
    head = _APOSTROPHES.split(word, 1)[0] if language != "ar" else word  # İstanbul'da → İstanbul
    lowered = _lower(head, language)
    pairs = []
    for part in fold_words(lowered).split():
        stem = _stem(part, "ar") if _ARABIC_LETTER.search(part) else None
        pairs.append((part, stem))
    if len(pairs) == 1 and pairs[0][1] is None:  # one Latin word: stem its unfolded form (Turkish needs ş, ı)
        return ((pairs[0][0], fold_words(_stem(lowered, language or "en")).replace(" ", "")),)
    return tuple(
        (surface, stem if stem is not None else fold_words(_stem(surface, language or "en"))) for surface, stem in pairs
    )


def _lower(word: str, language: str | None) -> str:
    """Lower case with the Turkish rules (I→ı, İ→i) in Turkish; İ→i in any language."""
    if language == "tr":
        word = word.replace("I", "ı").replace("İ", "i")
    return word.replace("İ", "i").lower()


def strip_clitics(word: str) -> str:
    """An Arabic word without its proclitics (وبالتعاون → تعاون), when enough of it stays."""
    for clitic in _CLITICS:
        if clitic and word.startswith(clitic) and len(word) - len(clitic) >= _MIN_STEM_LETTERS:
            rest = word[len(clitic) :]
            # A lone preposition or conjunction before a short word is more likely its first letter (وزير).
            if "ال" not in clitic and "لل" not in clitic and len(rest) < _MIN_STEM_LETTERS + 1:
                continue
            return rest
    return word


def _stem(word: str, language: str) -> str:
    """The Snowball stem of one lower-case word (after clitic stripping in Arabic)."""
    name = STEMMED_LANGUAGES.get(language, "english")
    if name == "arabic":
        word = strip_clitics(word)
    stem = _stemmer(name).stemWord(word)  # lru_cache on _word_forms: one call per distinct word
    if name == "turkish":
        stem = _turkish_possessive(word, stem)
    return stem


def _turkish_possessive(word: str, stem: str) -> str:
    """Snowball's Turkish keeps the buffer ``s`` of a possessive (anlaşması → anlaşmas): drop it."""
    if (
        stem != word
        and len(stem) > 2
        and stem.endswith("s")
        and stem[-2] in _TURKISH_VOWELS
        and word[len(stem) : len(stem) + 1] in _TURKISH_VOWELS
        and word.startswith(stem)
    ):
        return stem[:-1]
    return stem


_local = threading.local()


def _stemmer(name: str):
    """This thread's stemmer (a Snowball stemmer keeps its word in itself: not for two threads at once)."""
    stemmers = _local.__dict__.setdefault("stemmers", {})
    if name not in stemmers:
        stemmers[name] = snowballstemmer.stemmer(name)
    return stemmers[name]

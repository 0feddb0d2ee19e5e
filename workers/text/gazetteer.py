"""Find vocabulary terms in a text with one Aho-Corasick pass over its folded words.

Terms and text are folded alike (``textnorm``), so spelling variants meet. A hit counts only
on word boundaries, with two exceptions that the languages need:

* Arabic: clitics written as part of the word may come before a term (و ف, then ب ل ك, then
  the article ال where the term allows it), so وتركيا, بليبيا and للجيش match while روس never
  matches inside دروس.
* Latin: Turkish case and number suffixes may follow a term (Türklerin, Libyalılar; after an
  apostrophe they are a separate word anyway), and so may the English plural -s, alone: an -s
  does not start a chain of Turkish suffixes (Şam + s + un is Samsun, not Damascus). A name of
  three letters or fewer (Şam, Rus, Çin) takes, without an apostrophe, only what a people's name
  takes (Ruslar, Çinli): its case endings come after an apostrophe (Şam'da), so Çine is not Çin.
* An acronym never starts right after an apostrophe inside a word: what follows it is a suffix
  (SİVASSPOR'UN is Sivasspor + genitive, not the UN).

A term ending in ``*`` matches any continuation of its last word (تدريب* → التدريبات, train* → training).
An ``inflects`` term (the topic vocabulary) also takes the Arabic endings of number and the attached
pronouns, so one entry covers its forms: زيارة → زيارته، زيارات، زياراتها; اتفاقية → اتفاقيتين، اتفاقيات;
اشتباك → اشتباكات; قاعدة → قاعدتها (the ta marbuta becomes ت before an ending); and a phrase made
definite takes the article on each word (قاعدة عسكرية → القاعدة العسكرية).
"""

from __future__ import annotations

import enum
import unicodedata
from bisect import bisect_right
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

import ahocorasick

from workers.text.textnorm import fold, fold_words

ARABIC_ARTICLE = "ال"
_CONJUNCTIONS = ("", "و", "ف")
_PREPOSITIONS = ("", "ب", "ل", "ك")
# Prefixes allowed before any Arabic term, and the extra ones with the article (لل is ل + ال).
_CLITICS = frozenset(c + p for c in _CONJUNCTIONS for p in _PREPOSITIONS)
_ARTICLE_CLITICS = (
    _CLITICS
    | {c + p + ARABIC_ARTICLE for c in _CONJUNCTIONS for p in ("", "ب", "ك")}
    | {c + "لل" for c in _CONJUNCTIONS}
)
# Turkish suffixes as folded (ı→i, ü→u, ş→s...), chained up to three (Libya+lı+lar+ın); English -s stands alone.
_LATIN_SUFFIXES = frozenset(
    "lar ler li lu i u a e yi yu ya ye in un nin nun na ne ni nu da de ta te dan den tan ten nda nde ndan nden "
    "la le yla yle ki si su imiz umuz miz muz iniz unuz niz nuz".split()
)
_ENGLISH_PLURAL = "s"
_MAX_SUFFIXES = 3
_NO_PREFIX = frozenset({""})
# Arabic endings of an inflecting term: number (plural, dual), then an attached pronoun, each optional.
_ARABIC_PRONOUNS = ("", "ه", "ها", "هم", "هما", "نا")
_ARABIC_NUMBERS = ("", "ات", "ان", "ين", "ون")
_ARABIC_ENDINGS = frozenset(n + p for n in _ARABIC_NUMBERS for p in _ARABIC_PRONOUNS) - {""}
# After a ta marbuta (folded ه), dropped to make the key's stem: ت + pronoun, the dual, or the plural.
_TA_MARBUTA_ENDINGS = frozenset(
    {"ت" + p for p in _ARABIC_PRONOUNS} | {"تين", "تان", "تي"} | {"ات" + p for p in _ARABIC_PRONOUNS}
) - {"ت"}
_TA_MARBUTA = "ه"
# A short name (this many letters or fewer) takes without an apostrophe only these first suffixes.
_SHORT_NAME_LETTERS = 3
_PEOPLE_SUFFIXES = ("li", "lu", "lar", "ler")
_APOSTROPHES = frozenset("'’ʼ‘`´")


@dataclass(frozen=True)
class Term:
    """One vocabulary entry and what a hit on it stands for.

    ``article``: Arabic terms that may take the article ال (nouns and adjectives, not most country names).
    ``proper_noun``: names whose Latin spellings count only when capitalised in the text (all capitals for
    acronyms), so the bird "turkey" or the Turkish word "mali" (financial) are not countries. Arabic has no case.
    ``inflects``: Arabic words that take the endings of number and pronouns (topic vocabulary, not names).
    """

    text: str
    target: Hashable
    article: bool = False
    proper_noun: bool = False
    inflects: bool = False

    @property
    def is_prefix(self) -> bool:
        return self.text.endswith("*")

    @property
    def key(self) -> str:
        return fold_words(self.text.rstrip("*"))

    @property
    def is_acronym(self) -> bool:
        written = [ch for ch in self.text if ch.isalpha()]
        return len(written) > 1 and all(ch.isupper() for ch in written)


class Match:
    """A hit: the term's target, the folded words it covers (``first``..``last``) and their spelling in the text.

    A text has hundreds of hits and a few make tags, so the spelling is looked up only when asked for.
    """

    __slots__ = ("target", "first", "last", "length", "_text")

    def __init__(self, target: Hashable, first: int, last: int, length: int, text: FoldedText):
        self.target, self.first, self.last, self.length, self._text = target, first, last, length, text

    @property
    def evidence(self) -> str:
        return self._text.evidence(self.first, self.last)

    @property
    def written_as_name(self) -> bool:
        """Written the way Turkish marks a proper noun: the whole word, and then a suffix after an apostrophe
        (Mısır'ın) or a capital inside a sentence, after a word in lower case ("ve Mısır Deniz Kuvvetleri")."""
        text = self._text
        if self.length != text.ends[self.last] - text.starts[self.first]:
            return False  # a longer word: Maliye (the finance ministry) is not Mali
        if self.last + 1 in text.suffixes:
            return True
        if self.first == 0:
            return False
        before = text.token(self.first - 1)
        letters = [ch for ch in before if ch.isalpha()]
        return bool(letters) and letters[0].islower() and not before.endswith((".", "!", "?", ":", "؟"))

    def __repr__(self) -> str:
        return f"Match({self.target!r}, {self.first}..{self.last}, {self.evidence!r})"


class FoldedText:
    """The text as folded words, each remembering the piece of the original text it came from.

    Most tokens fold to one word. A token with punctuation inside ("Libya'ya", "U.S.-Turkish") folds
    to several, and is cut into its pieces only when a hit's spelling is asked for (``piece``).
    """

    def __init__(self, text: str):
        words: list[str] = []
        sources: list = []  # per word: its token, or (token, part, parts) when the token folded to several words
        suffixes: set[int] = set()  # words that follow an apostrophe inside their token: Turkish suffixes
        for token in text.split():
            folded = _fold_token(token)
            if " " not in folded:
                if folded:
                    words.append(folded)
                    sources.append(token)
                continue
            parts = folded.split()
            if _APOSTROPHES.intersection(token):
                flags = _pieces_after_apostrophe(token)
                if len(flags) == len(parts):
                    suffixes.update(len(words) + k for k, flag in enumerate(flags) if flag)
            words.extend(parts)
            sources.extend((token, part, len(parts)) for part in range(len(parts)))
        self.words, self._sources, self.suffixes = words, sources, suffixes
        self.string = " ".join(words)
        after = list(accumulate(len(word) + 1 for word in words))  # just past each word's trailing space
        self.starts: list[int] = [0, *after[:-1]] if words else []  # where each word starts in ``string``
        self.ends: list[int] = [position - 1 for position in after]  # and where it ends (exclusive)

    def token(self, index: int) -> str:
        """The whitespace-separated token of the original text that word ``index`` comes from."""
        source = self._sources[index]
        return source if isinstance(source, str) else source[0]

    def piece(self, index: int) -> str:
        source = self._sources[index]
        if isinstance(source, str):
            return source
        token, part, parts = source
        raw = _split_at_separators(token)
        return raw[part] if len(raw) == parts else token

    def evidence(self, first: int, last: int) -> str:
        if first == last:
            return self.piece(first)
        return " ".join(dict.fromkeys(self.piece(index) for index in range(first, last + 1)))


class Gazetteer:
    """All terms of a vocabulary in one automaton; ``find`` returns every hit that respects word boundaries."""

    def __init__(self, terms: Iterable[Term]):
        # key → (target, prefixes allowed, acronym or not (None: no case check), key is a ta marbuta stem,
        # what may follow the key in its last word: a ``_Tail``)
        entries: dict[str, list[tuple[Hashable, frozenset[str], bool | None, bool, _Tail]]] = {}
        for term in terms:
            key = term.key
            if not key:
                continue
            case = None if not term.proper_noun or is_arabic(key[0]) else term.is_acronym
            for variant, prefixes in _variants(key, term):
                entries.setdefault(variant, []).append((term.target, prefixes, case, False, _tail_rule(term, variant)))
                if _takes_ta_marbuta_endings(variant, term):
                    entries.setdefault(variant[:-1], []).append((term.target, prefixes, case, True, _Tail.NONE))
        self._automaton = ahocorasick.Automaton()
        for key, values in entries.items():
            # Whether any entry of the key takes a prefix inside its word: most do not, and a hit inside a
            # word (us in "kuvvetlerimiz") is then refused before its tail is looked at.
            takes_prefix = any(prefixes != _NO_PREFIX for _target, prefixes, _case, _stem, _tail in values)
            first_word = len(key.split(" ", 1)[0])  # the letters a case check reads
            self._automaton.add_word(key, (len(key), takes_prefix, first_word, tuple(values)))
        if entries:
            self._automaton.make_automaton()
        self._empty = not entries

    def find(self, text: str | FoldedText) -> list[Match]:
        """The hits in ``text``; the loop runs once per automaton hit (hundreds a text), so it is kept lean."""
        folded = text if isinstance(text, FoldedText) else FoldedText(text)
        if self._empty or not folded.words:
            return []
        string, starts, ends, suffixes = folded.string, folded.starts, folded.ends, folded.suffixes
        matches: list[Match] = []
        append = matches.append
        for end, (length, takes_prefix, first_word, values) in self._automaton.iter(string):
            start = end - length + 1
            first = bisect_right(starts, start) - 1
            word_start = starts[first]
            if start != word_start:
                if not takes_prefix:
                    continue
                prefix = string[word_start:start]
            else:
                prefix = ""
            last = first if end < ends[first] else bisect_right(starts, end) - 1
            tail = string[end + 1 : ends[last]]
            for target, prefixes, acronym, stem, tail_rule in values:
                if prefix not in prefixes:
                    continue
                if stem:
                    if tail not in _TA_MARBUTA_ENDINGS:
                        continue
                elif tail and not _tail_allowed(tail, tail_rule):
                    continue
                if acronym is not None:
                    if not _capitalised(folded.piece(first), first_word, acronym):
                        continue
                    if acronym and first in suffixes:
                        continue
                append(Match(target, first, last, length, folded))
        return matches


def longest(matches: Iterable[Match]) -> list[Match]:
    """Non-overlapping matches, longer terms first: "South Sudan" hides the "Sudan" inside it."""
    kept: list[Match] = []
    taken: set[int] = set()
    for match in sorted(matches, key=lambda m: (-m.length, m.first)):
        span = set(range(match.first, match.last + 1))
        if span & taken:
            continue
        taken |= span
        kept.append(match)
    return sorted(kept, key=lambda m: m.first)


def distinct_spellings(matches: Iterable[Match], limit: int) -> list[str]:
    """Up to ``limit`` distinct spellings of the matches, in order. A match over the same tokens as an
    earlier one has its spelling and is skipped unread: a tag's evidence holds hundreds of hits, mostly repeats."""
    seen: dict[str, None] = {}
    tokens: set = set()
    for match in matches:
        first, last, sources = match.first, match.last, match._text._sources
        key = sources[first] if first == last else tuple(sources[first : last + 1])
        if key in tokens:
            continue
        tokens.add(key)
        seen[match.evidence] = None
        if len(seen) == limit:
            break
    return list(seen)


def is_arabic(ch: str) -> bool:
    return "\u0600" <= ch <= "\u06ff"


def _variants(key: str, term: Term) -> list[tuple[str, frozenset[str]]]:
    """The automaton keys of a term and the prefixes each may carry inside its first word."""
    if not is_arabic(key[0]):
        return [(key, _NO_PREFIX)]
    if key.startswith(ARABIC_ARTICLE):
        # ل + الجيش is written للجيش: index that spelling too, with only و/ف in front of it.
        return [(key, _CLITICS), ("ل" + key[1:], frozenset(_CONJUNCTIONS))]
    variants = [(key, _ARTICLE_CLITICS if term.article else _CLITICS)]
    words = key.split(" ")
    if term.inflects and len(words) > 1:
        # Made definite, an Arabic phrase takes the article on every word: قاعدة عسكرية → القاعدة العسكرية.
        definite = " ".join([words[0], *(w if w.startswith(ARABIC_ARTICLE) else ARABIC_ARTICLE + w for w in words[1:])])
        if definite != key:
            variants.append((definite, _ARTICLE_CLITICS))
    return variants


def _takes_ta_marbuta_endings(key: str, term: Term) -> bool:
    return term.inflects and not term.is_prefix and len(key) > 3 and key.endswith(_TA_MARBUTA) and is_arabic(key[-2])


class _Tail(enum.Enum):
    """What may follow a key inside its last word, worked out once per key from its term."""

    ANY = "any"  # a prefix term (train*)
    NONE = "none"  # an Arabic term that does not inflect
    ARABIC = "arabic"  # the Arabic endings of number and pronouns
    ARABIC_AFTER_YA = "arabic after ya"  # the same, except a plural ات after a final ي
    SHORT_NAME = "short name"  # a Latin name of three letters or fewer
    LATIN = "latin"  # Turkish suffixes or the English plural


def _tail_rule(term: Term, key: str) -> _Tail:
    if term.is_prefix:
        return _Tail.ANY
    if is_arabic(key[-1]):
        if not term.inflects:
            return _Tail.NONE
        return _Tail.ARABIC_AFTER_YA if key.endswith("ي") else _Tail.ARABIC
    if term.proper_noun and len(key) <= _SHORT_NAME_LETTERS:
        return _Tail.SHORT_NAME
    return _Tail.LATIN


@lru_cache(maxsize=8192)
def _tail_allowed(tail: str, rule: _Tail) -> bool:
    """Whether the non-empty ``tail`` (the rest of the last word after the term) may follow it."""
    if rule is _Tail.ANY:
        return True
    if rule is _Tail.NONE:
        return False
    if rule is _Tail.ARABIC or rule is _Tail.ARABIC_AFTER_YA:
        # After a final ي the plural ات makes another word: الدوري (the league), الدوريات (patrols).
        return tail in _ARABIC_ENDINGS and not (rule is _Tail.ARABIC_AFTER_YA and tail.startswith("ات"))
    if rule is _Tail.SHORT_NAME and not tail.startswith(_PEOPLE_SUFFIXES):
        return False
    return tail == _ENGLISH_PLURAL or _is_suffix_chain(tail, _MAX_SUFFIXES)


@lru_cache(maxsize=4096)
def _is_suffix_chain(tail: str, budget: int) -> bool:
    if not tail:
        return True
    if budget == 0:
        return False
    return any(tail.startswith(s) and _is_suffix_chain(tail[len(s) :], budget - 1) for s in _LATIN_SUFFIXES)


def _capitalised(piece: str, length: int, acronym: bool) -> bool:
    """Capital initial in the text; for an acronym term (US, ABD) its letters all in capitals.

    A name that starts with a number (444 Brigade) has no case to check in its first word.
    """
    if acronym:
        letters = [ch for ch in piece if ch.isalpha()][:length]
        return bool(letters) and all(ch.isupper() for ch in letters)
    for ch in piece:
        if ch.isalpha():
            return ch.isupper()
    return piece[:1].isdigit()


@lru_cache(maxsize=1024)
def _pieces_after_apostrophe(token: str) -> tuple[bool, ...]:
    """For each piece of ``token`` between punctuation, whether an apostrophe comes right before it."""
    flags: list[bool] = []
    in_piece = apostrophe = False
    for ch in token:
        if unicodedata.category(ch)[0] in "PSZC":
            in_piece = False
            apostrophe = apostrophe or ch in _APOSTROPHES
        elif not in_piece:
            in_piece = True
            flags.append(apostrophe and bool(flags))
            apostrophe = False
    return tuple(flags)


@lru_cache(maxsize=8192)
def _split_at_separators(token: str) -> tuple[str, ...]:
    """A token's pieces between punctuation; cached, as a text repeats its tokens (``العسكري،``)."""
    pieces: list[str] = []
    current: list[str] = []
    for ch in token:
        if unicodedata.category(ch)[0] in "PSZC":
            if current:
                pieces.append("".join(current))
                current = []
        else:
            current.append(ch)
    if current:
        pieces.append("".join(current))
    return tuple(pieces)


class _FoldTable(dict):
    """Per-character ``fold_words``, learnt lazily, for ``str.translate``: folding stays textnorm's, but fast.

    Marks fold to nothing; punctuation and spaces to a space (they separate words).
    """

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        folded = fold_words(ch)
        if not folded and (ch.isspace() or fold(ch)):
            folded = " "
        self[code] = folded
        return folded


_FOLD_TABLE = _FoldTable()


@lru_cache(maxsize=100_000)
def _fold_token(token: str) -> str:
    """A token folded; cached, as news repeats its words (و، في، the, ve) within a text and across texts."""
    return token.translate(_FOLD_TABLE)

"""Text folding shared by strip and classify, so spelling variants meet on one form.

Arabic: diacritics and tatweel dropped, alef/hamza forms unified, ى→ي and ة→ه,
Arabic-Indic digits to ASCII. Latin: Turkish dotted/dotless i handled before
case folding, then accents removed, so "Yaşar Güler", "YAŞAR GÜLER" and
"Yasar Guler" fold alike. Punctuation becomes a space and spaces collapse.

Folding works character by character, so each character's folded form is
worked out once and kept in a table; a whole text is then folded by one
``str.translate`` pass (C speed) instead of several Unicode passes.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

_ARABIC_DIACRITICS = frozenset([0x0640, 0x0670, *range(0x064B, 0x0660), *range(0x06D6, 0x06EE)])
_ARABIC_LETTERS = str.maketrans(
    {
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ى": "ي",
        "ة": "ه",
        "ؤ": "و",
        "ئ": "ي",
        "ی": "ي",
        "ک": "ك",
        "ە": "ه",
    }
)
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_TURKISH_CASE = str.maketrans({"İ": "i", "I": "i", "ı": "i"})
_SPACES = re.compile(r"\s+")


def _fold_char(ch: str) -> str:
    text = "".join(c for c in unicodedata.normalize("NFKC", ch) if ord(c) not in _ARABIC_DIACRITICS)
    text = text.translate(_ARABIC_LETTERS).translate(_DIGITS).translate(_TURKISH_CASE).casefold()
    text = "".join(
        c
        for c in unicodedata.normalize("NFKD", text)
        if not unicodedata.combining(c) and ord(c) not in _ARABIC_DIACRITICS
    )
    return unicodedata.normalize("NFC", text)


class _Table(dict):
    """code point → folded form, filled on first sight of each character."""

    def __init__(self, separators_to_space: bool):
        super().__init__()
        self.separators_to_space = separators_to_space

    def __missing__(self, code: int) -> str:
        folded = _fold_char(chr(code))
        if self.separators_to_space:
            folded = "".join(" " if _is_separator(c) else c for c in folded)
        self[code] = folded
        return folded


_FOLD = _Table(separators_to_space=False)
_FOLD_WORDS = _Table(separators_to_space=True)


def fold(text: str) -> str:
    """The matching form of ``text``: lower case, no marks, one space between words, punctuation kept."""
    return _SPACES.sub(" ", text.translate(_FOLD)).strip()


def fold_words(text: str) -> str:
    """``fold`` with punctuation turned into spaces: the form gazetteers and markers match on."""
    return _SPACES.sub(" ", text.translate(_FOLD_WORDS)).strip()


def _is_separator(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PSZC"


CANDIDATE_MAX_WORDS = 40  # longer lines are prose, not the boilerplate a site repeats
FINGERPRINT_CHARS = 16  # 64 bits: no two distinct lines of one site will share one


def line_fingerprint(line: str) -> str | None:
    """The fingerprint of a line that may be site boilerplate; None for a blank or too long line."""
    folded = fold_words(line)
    words = folded.split()
    if not words or len(words) > CANDIDATE_MAX_WORDS or not any(ch.isalpha() for ch in folded):
        return None
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()[:FINGERPRINT_CHARS]


def candidates(lines: Iterable[str]) -> dict[str, str]:
    """fingerprint → line for the candidate lines among ``lines`` (the first spelling of each)."""
    found: dict[str, str] = {}
    for line in lines:
        if (fingerprint := line_fingerprint(line)) is not None:
            found.setdefault(fingerprint, line.strip())
    return found

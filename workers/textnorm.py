"""Text folding shared by strip and classify, so spelling variants meet on one form.

Arabic: diacritics and tatweel dropped, alef/hamza forms unified, ى→ي and ة→ه,
Arabic-Indic digits to ASCII. Latin: Turkish dotted/dotless i handled before
case folding, then accents removed, so "Yaşar Güler", "YAŞAR GÜLER" and
"Yasar Guler" fold alike. Punctuation becomes a space and spaces collapse.
"""

from __future__ import annotations

import re
import unicodedata

_ARABIC_DIACRITICS = dict.fromkeys([0x0640, 0x0670, *range(0x064B, 0x0660), *range(0x06D6, 0x06EE)])
_ARABIC_LETTERS = str.maketrans({
    "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي",
    "ی": "ي", "ک": "ك", "ە": "ه",
})
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_TURKISH_CASE = str.maketrans({"İ": "i", "I": "i", "ı": "i"})
_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """The matching form of ``text``: lower case, no marks, one space between words, punctuation kept."""
    text = unicodedata.normalize("NFKC", text).translate(_ARABIC_DIACRITICS)
    text = text.translate(_ARABIC_LETTERS).translate(_DIGITS).translate(_TURKISH_CASE).casefold()
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


def fold_words(text: str) -> str:
    """``fold`` with punctuation turned into spaces: the form gazetteers and markers match on."""
    folded = fold(text)
    return _SPACES.sub(" ", "".join(" " if _is_separator(ch) else ch for ch in folded)).strip()


def words(text: str) -> list[str]:
    return fold_words(text).split()


def _is_separator(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PSZC"

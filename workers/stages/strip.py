"""Strip: keep the article body, drop what generic extractors leave around it.

Two kinds of evidence, because extractors leave both kinds of residue:

* markers (``config/boilerplate.yaml``): lines a user can name — copyright notices, share
  prompts, comment forms, tag/source/date lines, "read also" blocks — matched on folded text
  so spelling variants meet one rule;
* layout: the site name, section and headline before the first body paragraph, and teasers or
  an author box after the last one, are told apart by their shape, since no list can name them;
* the site's own habits: lines it repeats across its articles (learned in ``sites.py``, passed
  in as fingerprints so strip stays a pure function), and extra markers from its entry in
  ``config/overrides.yaml``.

Every removed line is recorded with its rule so a user can see why it went, and the lines that
carry metadata (dateline, source, tags, byline) fill the document's empty fields on the way;
dates are read in their regional forms (``config/dates.yaml``), relative ones against the fetch time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

from workers.core import config_files
from workers.core.document import Document, RemovedLine
from workers.core.settings import get_settings
from workers.core.urls import site_of
from workers.stages.overrides import override_for, sources_path
from workers.text.textnorm import fold, fold_words, line_fingerprint

MATCH_MODES = ("heading", "label", "prefix", "contains", "only")
FILLABLE_FIELDS = ("keywords", "credit", "published_at", "author")
DEFAULT_MAX_WORDS = 25

FRAGMENT_MAX_WORDS = 3  # site names, section names, stray words: too short to be a headline
PROSE_MIN_WORDS = 15  # a line this long is body text even without a closing full stop
SENTENCE_MIN_WORDS = 4  # a line ending in a full stop is body text from this length on
BYLINE_MAX_WORDS = 4
BIO_MAX_WORDS = 12
KEYWORD_MAX_WORDS = 4
TRAILING_MAX_LINES = 6  # more short lines than this after the body are a list, not teasers
DATE_LINE_MAX_WORDS = 12  # "Friday, 1 March 2024, 10:15 GMT" and the like
DAY_SECONDS = 86_400
BLOCK_CUT_SHARE = 2 / 3  # share of the body that must come before a block starter for it to cut
FOOTER_CUT_SHARE = 1 / 2  # the same for a starter that is itself a footer line

_LETTER = r"[^\W_]"
_WORD = re.compile(rf"{_LETTER}\S*")
_SENTENCE_END = re.compile(r"[.。۔][\"'”’»)\]]*$")
_BULLET = re.compile(r"^[-–•*·▪►◦]\s|^\d{1,2}[.)]\s")
_KEYWORD_SEPARATORS = re.compile(r"[,،;؛|#•]")
_DIGIT = re.compile(r"\d")
_NUMBER = re.compile(r"\d+(?:st|nd|rd|th)?")
_BYLINE_SEPARATORS = re.compile(r"\s*[/|•·]\s*")
_YEAR_GUESS = re.compile(r"\d{4}-01-01")
_FULL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# "ANKARA (AA) - …" at the start of the body, "… (İLKHA)" at its end: the agency that wrote it.
_LEADING_AGENCY = re.compile(r"^[^()]{0,60}?\((?P<agency>[^()\d]{2,30})\)\s*[-–—]")
_TRAILING_AGENCY = re.compile(r"\((?P<agency>[^()\d]{2,30})\)\s*$")


@dataclass(frozen=True)
class MarkerRule:
    """One rule of boilerplate.yaml, with its phrases compiled into one pattern on folded text."""

    id: str
    match: str
    pattern: re.Pattern[str]
    max_words: int
    starts_block: bool = False
    footer: bool = False
    fills: str | None = None

    def find(self, line: str, folded: str) -> MarkerHit | None:
        """This rule's hit on ``line`` (``folded`` is its folded form), or None."""
        found = next((m for m in self.pattern.finditer(folded) if _starts_word(folded, m.start())), None)
        if found is None:
            return None
        if self.match == "prefix":
            if _SENTENCE_END.search(line):
                return None
            value = _words_after(line, len(found["phrase"].split()))
        elif self.match in ("heading", "label") and found["value"]:
            value = re.split(r"[:：]", line, maxsplit=1)[-1].strip()
        else:
            value = None
        if self.fills == "author" and (not value or _DIGIT.search(value)):
            return None
        return MarkerHit(self, value or None)


@dataclass(frozen=True)
class DateWords:
    """Everything strip reads from dates.yaml, folded: month names, relative-date words, date-line words."""

    months: dict[str, int]
    ago: frozenset[str] = frozenset()
    units: dict[str, tuple[int, int | None]] = dataclasses.field(default_factory=dict)
    numbers: dict[str, int] = dataclasses.field(default_factory=dict)
    days: dict[str, int] = dataclasses.field(default_factory=dict)
    line_words: frozenset[str] = frozenset()

    @cached_property
    def vocabulary(self) -> frozenset[str]:
        """Every word a line that is only a date may contain, besides numbers."""
        month_words = {word for name in self.months for word in name.split()}
        return frozenset({*month_words, *self.ago, *self.units, *self.numbers, *self.days, *self.line_words})

    def parse(self, value: str, fetched_at: str | None) -> str | None:
        """The ISO date (or date and time, for "3 hours ago") ``value`` gives, or None."""
        return _iso_date(value, self.months) or self._relative(fold_words(value).split(), fetched_at)

    def is_date_line(self, line: str, word_count: int) -> bool:
        """True when ``line`` is a date and nothing else: "1 Mart 2024", "منذ ساعتين", "3 hours ago"."""
        if word_count > DATE_LINE_MAX_WORDS:
            return False
        tokens = fold_words(line).split()
        if not all(_NUMBER.fullmatch(token) or token in self.vocabulary for token in tokens):
            return False
        relative = any(token in self.days for token in tokens) or (
            any(token in self.units for token in tokens) and any(token in self.ago for token in tokens)
        )
        return relative or _iso_date(line, self.months) is not None

    def _relative(self, tokens: list[str], fetched_at: str | None) -> str | None:
        """ "2 saat önce", "منذ ساعتين", "yesterday": counted back from the fetch time."""
        try:
            fetched = dt.datetime.fromisoformat(fetched_at) if fetched_at else None
        except ValueError:
            return None
        if fetched is None:
            return None
        before_now = any(token in self.ago for token in tokens)
        for position, token in enumerate(tokens):
            if token in self.days:
                return (fetched.date() - dt.timedelta(days=self.days[token])).isoformat()
            if token in self.units and before_now:
                seconds, own_count = self.units[token]
                count = own_count or self._count(tokens[position - 1] if position else "") or 1
                when = fetched - dt.timedelta(seconds=seconds * count)
                if seconds >= DAY_SECONDS:
                    return when.date().isoformat()
                return when.replace(second=0, microsecond=0).isoformat()
        return None

    def _count(self, token: str) -> int | None:
        return int(token) if token.isdigit() else self.numbers.get(token)


@dataclass(frozen=True)
class MarkerHit:
    rule: MarkerRule
    value: str | None
    date: str | None = None  # the ISO date a dated byline gives besides its name


@dataclass(frozen=True)
class Markers:
    """Everything strip reads from config: boilerplate.yaml, and dates.yaml beside it."""

    rules: tuple[MarkerRule, ...]
    author_roles: frozenset[str]
    dates: DateWords

    @cached_property
    def max_words(self) -> int:
        """No rule may remove a line longer than this: such lines need not be folded at all."""
        return max((rule.max_words for rule in self.rules), default=0)

    def match(self, line: str, word_count: int) -> MarkerHit | None:
        """The first rule (in file order) that ``line`` meets; then, a line that is only a date."""
        if word_count > self.max_words:
            return None
        folded = fold(line)
        for rule in self.rules:
            if word_count <= rule.max_words and (hit := rule.find(line, folded)):
                return hit
        if self.dates.is_date_line(line, word_count):
            return MarkerHit(DATE_LINE_RULE, line)
        return self._dated_byline(line)

    def _dated_byline(self, line: str) -> MarkerHit | None:
        """An agency's byline block: a name and dates between separators, each part a name or a date
        ("Fatma Yılmaz / 20 Nisan 2026•Güncelleme: 21 Nisan 2026"); the name is the author, the first date
        the publication date."""
        parts = [part.strip() for part in _BYLINE_SEPARATORS.split(line) if part.strip()]
        if len(parts) < 2:
            return None
        names, dates = [], []
        for part in parts:
            value = re.split(r"[:：]", part, maxsplit=1)[-1].strip()
            if self.dates.is_date_line(value, _word_count(value)):
                dates.append(value)
            elif _is_name(part):
                names.append(part)
            else:
                return None
        if len(names) > 1 or not dates:
            return None
        return MarkerHit(DATED_BYLINE_RULE, names[0], self.dates.parse(dates[0], None))

    def with_rules(self, rules: tuple[MarkerRule, ...]) -> Markers:
        """These markers with ``rules`` tried first (a site's own rules)."""
        return dataclasses.replace(self, rules=(*rules, *self.rules))


# A line that is only a date is a dateline without a label; no phrase list describes it.
DATE_LINE_RULE = MarkerRule(
    id="date-line", match="only", pattern=re.compile(r"(?!)"), max_words=DATE_LINE_MAX_WORDS, fills="published_at"
)


# A byline block of a name and dates: no phrase names it, its shape does.
DATED_BYLINE_RULE = MarkerRule(
    id="dated-byline",
    match="only",
    pattern=re.compile(r"(?!)"),
    max_words=BYLINE_MAX_WORDS + 2 * DATE_LINE_MAX_WORDS,
    fills="author",
)


def load_markers(path: Path, dates_path: Path | None = None) -> Markers:
    """Read and compile a boilerplate.yaml (and the dates.yaml beside it, unless another is named);
    a malformed rule fails here, naming the rule."""
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    rules = tuple(_compile_rule(raw, path) for raw in data.get("rules") or [])
    roles = frozenset(fold_words(str(role)) for role in data.get("author_roles") or [])
    return Markers(rules=rules, author_roles=roles, dates=load_dates(dates_path or path.with_name("dates.yaml")))


def load_dates(path: Path) -> DateWords:
    """Read a dates.yaml; without one, only numeric dates (2024-03-01, 01.03.2024) are understood."""
    path = Path(path)
    data = (yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None) or {}
    relative = data.get("relative") or {}
    months = {
        fold_words(str(name)): int(number) for number, names in (data.get("months") or {}).items() for name in names
    }
    units = {
        fold_words(str(word)): (int(unit["seconds"]), unit.get("count"))
        for unit in relative.get("units") or []
        for word in unit["words"]
    }
    return DateWords(
        months=months,
        ago=frozenset(fold_words(str(word)) for word in relative.get("ago") or []),
        units=units,
        numbers={fold_words(str(word)): int(count) for word, count in (relative.get("numbers") or {}).items()},
        days={fold_words(str(word)): int(back) for word, back in (relative.get("days") or {}).items()},
        line_words=frozenset(fold_words(str(word)) for word in data.get("date_line_words") or []),
    )


def default_markers() -> Markers:
    """The markers of the configured config folder, rebuilt when boilerplate.yaml or dates.yaml changes."""
    return _markers_at(get_settings().config_dir / "boilerplate.yaml")


def markers_for(url: str | None) -> Markers:
    """The default markers, with the site's extra rules from overrides.yaml first when it has some."""
    override = override_for(url)
    if url is None or override is None or not override.markers:
        return default_markers()
    boilerplate, overrides = get_settings().config_dir / "boilerplate.yaml", sources_path()
    return config_files.current(
        ("site markers", site_of(url), boilerplate),
        [boilerplate, boilerplate.with_name("dates.yaml"), overrides],
        lambda: _markers_at(boilerplate).with_rules(tuple(_compile_rule(raw, overrides) for raw in override.markers)),
    )


def _markers_at(path: Path) -> Markers:
    return config_files.current(("markers", path), [path, path.with_name("dates.yaml")], lambda: load_markers(path))


def _compile_rule(raw: dict, path: Path) -> MarkerRule:
    rule_id = raw.get("id")
    where = f"{path}: rule {rule_id!r}"
    match = raw.get("match")
    if not rule_id or match not in MATCH_MODES:
        raise ValueError(f"{where}: needs an id and a match among {', '.join(MATCH_MODES)}")
    if raw.get("fills") not in (None, *FILLABLE_FIELDS):
        raise ValueError(f"{where}: fills must be one of {', '.join(FILLABLE_FIELDS)}")
    if match == "contains" and "max_words" not in raw:
        raise ValueError(f"{where}: a contains rule needs max_words, or it could remove body paragraphs")
    phrases = [str(p) for p in raw.get("phrases") or []]
    if not phrases:
        raise ValueError(f"{where}: has no phrases")
    return MarkerRule(
        id=str(rule_id),
        match=match,
        pattern=_rule_pattern(match, phrases),
        max_words=int(raw.get("max_words", DEFAULT_MAX_WORDS)),
        starts_block=bool(raw.get("starts_block")),
        footer=bool(raw.get("footer")),
        fills=raw.get("fills"),
    )


def _rule_pattern(match: str, phrases: list[str]) -> re.Pattern[str]:
    """One regex for all phrases of a rule, on ``fold``ed lines (punctuation kept, so "Label:" is seen)."""
    # Longest first, so "related news" wins over "related" and the value starts after the whole phrase.
    alternatives = "|".join(sorted({_phrase_pattern(p) for p in phrases}, key=len, reverse=True))
    phrase = f"(?P<phrase>{alternatives})"
    return re.compile(
        {
            "heading": rf"^[\W_]*{phrase}(?:[\W_]*$|\s*[:：]\s*(?P<value>.*)$)",
            "label": rf"^[\W_]*{phrase}\s*[:：]\s*(?P<value>.+)$",
            "prefix": rf"^[\W_]*{phrase}[\W_]*(?P<value>.*)$",
            "contains": phrase,
            "only": rf"^(?:[\W_]*(?:{alternatives}))+[\W_]*$",
        }[match]
    )


def _phrase_pattern(phrase: str) -> str:
    """Folded words joined by any punctuation, not followed by more letters; a bare symbol (©) as is.

    The start of the word is checked by ``_starts_word`` after the search: a look-behind inside
    the alternation would stop the regex engine from skipping ahead on the phrases' first letters,
    which makes matching many times slower.
    """
    words = fold_words(phrase).split()
    if not words:
        return re.escape(fold(phrase))
    return r"[\W_]+".join(map(re.escape, words)) + rf"(?!{_LETTER})"


def _starts_word(folded: str, start: int) -> bool:
    return start == 0 or not folded[start - 1].isalnum() or not folded[start].isalnum()


def _words_after(line: str, count: int) -> str:
    """``line`` without its first ``count`` words and the punctuation after them."""
    tokens = line.split()
    seen = 0
    while tokens and seen < count:
        seen += _word_count(tokens.pop(0))
    return " ".join(tokens).lstrip(":：,-–—| ").strip()


def _is_name(text: str) -> bool:
    """A person's name by its shape: a few capitalised words and no digits."""
    words = text.split()
    return (
        2 <= len(words) <= BYLINE_MAX_WORDS
        and not _DIGIT.search(text)
        and all(word[0].isupper() for word in words if word[0].isalpha())
    )


def _word_count(text: str) -> int:
    """Words with a letter or digit in them; a lone dash or bullet is not a word."""
    return len(_WORD.findall(text))


@dataclass(frozen=True)
class _Line:
    """A non-blank line of the text with what strip needs to know about it."""

    number: int
    text: str
    words: int
    hit: MarkerHit | None

    @property
    def prose(self) -> bool:
        """Body text by its shape: long, or a sentence ending in a full stop."""
        if self.hit is not None:
            return False
        return self.words >= PROSE_MIN_WORDS or (
            self.words >= SENTENCE_MIN_WORDS and bool(_SENTENCE_END.search(self.text))
        )


def strip(doc: Document, markers: Markers | None = None, site_lines: frozenset[str] = frozenset()) -> Document:
    """``doc`` with its text cut down to the article body; the removed lines are in ``removed``.

    ``markers`` default to those of the document's site (``markers_for``); ``site_lines`` are the
    fingerprints of the lines its site repeats (``sites.observe``).
    """
    markers = markers_for(doc.url) if markers is None else markers
    texts = [line.strip() for line in doc.text.split("\n")]
    lines = []
    for number, text in enumerate(texts):
        if text:
            words = _word_count(text)
            lines.append(_Line(number, text, words, markers.match(text, words)))

    removed: dict[int, str] = {}
    _drop_known_names(lines, doc, removed)
    _drop_learned_lines(lines, site_lines, removed)
    _drop_markers_and_blocks(lines, removed)
    title = _drop_leading_residue(lines, doc.title, removed)
    _drop_trailing_residue(lines, markers, removed)

    kept_lines = [line for line in lines if line.number not in removed]
    return doc.replace(
        text=_join_kept(texts, removed),
        title=title,
        removed=[*doc.removed, *(RemovedLine(texts[n], rule) for n, rule in sorted(removed.items()))],
        **_metadata(doc, lines, kept_lines, removed, markers),
    )


def _drop_known_names(lines: list[_Line], doc: Document, removed: dict[int, str]) -> None:
    """The headline repeated as the first line, and lines that are just the site's name."""
    if doc.title and lines and fold_words(lines[0].text) == fold_words(doc.title):
        removed[lines[0].number] = "headline"
    if doc.site_name:
        site = fold_words(doc.site_name)
        for line in lines:
            if line.number not in removed and fold_words(line.text) == site:
                removed[line.number] = "site-name"


def _drop_learned_lines(lines: list[_Line], site_lines: frozenset[str], removed: dict[int, str]) -> None:
    """Lines the site repeats in its other articles; marker lines keep their marker's name.

    When such lines would take most of the article's prose, the article is a copy of an earlier
    one (a wire story republished at a new address), not a page of boilerplate: its prose stays.
    """
    if not site_lines:
        return
    learned = {}
    for line in lines:
        if line.number not in removed and line.hit is None:
            fingerprint = line_fingerprint(line.text)
            if fingerprint in site_lines:
                learned[line.number] = (line, fingerprint)
    prose_chars = sum(len(line.text) for line in lines if line.prose)
    learned_prose_chars = sum(len(line.text) for line, _ in learned.values() if line.prose)
    is_copy = learned_prose_chars * 2 > prose_chars
    for number, (line, fingerprint) in learned.items():
        if not (is_copy and line.prose):
            removed[number] = f"site:{fingerprint}"


def _drop_markers_and_blocks(lines: list[_Line], removed: dict[int, str]) -> None:
    """Drop marker lines; after a block starter, drop the rest of the text when that is safe.

    A starter cuts to the end when it follows footer lines (source, tags, copyright… with no body
    text between), or when it stands alone as a heading and enough of the body comes before it:
    two thirds, or half when the starter is itself a footer line (a copyright notice ends an
    article by nature). An inline "Related: <headline>" is a link inside the article and goes
    alone. A "read also" heading in the middle of an article takes only the short lines right
    after it (its list of links), so the article around it survives.
    """
    prose_after = _prose_chars_after(lines, removed)
    prose_before = 0
    in_footer = False
    cut_by: str | None = None
    listing_after: str | None = None
    for position, line in enumerate(lines):
        if line.number in removed:
            continue
        if line.hit is not None:
            rule = line.hit.rule
            removed[line.number] = f"marker:{rule.id}"
            if rule.starts_block and prose_before:
                rest = prose_after[position + 1]
                share_needed = FOOTER_CUT_SHARE if rule.footer else BLOCK_CUT_SHARE
                if (
                    cut_by
                    or in_footer
                    or (line.hit.value is None and prose_before >= share_needed * (prose_before + rest))
                ):
                    cut_by = rule.id
                elif line.hit.value is None:
                    listing_after = rule.id
            in_footer = in_footer or (rule.footer and prose_before > 0)
        elif cut_by:
            removed[line.number] = f"block:{cut_by}"
        elif listing_after and not line.prose:
            removed[line.number] = f"block:{listing_after}"
        else:
            listing_after = None
            if line.prose:
                prose_before += len(line.text)
                in_footer = False


def _prose_chars_after(lines: list[_Line], removed: dict[int, str]) -> list[int]:
    """For each position, the characters of body-looking lines from there to the end."""
    totals = [0] * (len(lines) + 1)
    for position in range(len(lines) - 1, -1, -1):
        line = lines[position]
        counts = line.prose and line.number not in removed
        totals[position] = totals[position + 1] + (len(line.text) if counts else 0)
    return totals


def _drop_leading_residue(lines: list[_Line], title: str | None, removed: dict[int, str]) -> str | None:
    """Sort out the short lines before the body starts; returns the document's title.

    Site names, sections and stray words (a few words at most) go. Without a title, the headline
    is the first headline-like line after the last of those — what comes before a section name is
    navigation residue — and moves into the title; headline-like lines after it (a standfirst) stay.
    With a title, the extractor already found the headline: only the stray short lines go.
    """
    kept = [line for line in lines if line.number not in removed]
    body_start = next((k for k, line in enumerate(kept) if _opens_body(line)), None)
    if body_start is None:
        return title
    leading = kept[:body_start]
    fragments = [k for k, line in enumerate(leading) if _is_fragment(line)]
    headline = None
    if title is None:
        last_fragment = fragments[-1] if fragments else -1
        candidates = [k for k, line in enumerate(leading) if k not in fragments]
        after_fragments = [k for k in candidates if k > last_fragment]
        headline = after_fragments[0] if after_fragments else (candidates[-1] if candidates else None)
    for k, line in enumerate(leading):
        if k == headline:
            removed[line.number] = "headline"
            title = line.text
        elif k in fragments:
            removed[line.number] = _fragment_rule(line, first=k == 0)
        elif headline is not None and k < headline:
            removed[line.number] = "leading-teaser"
    return title


def _opens_body(line: _Line) -> bool:
    return line.prose or _is_list_part(line)


def _is_list_part(line: _Line) -> bool:
    """A bullet, or a line ending with a colon that introduces what follows: the article's own list."""
    return bool(_BULLET.match(line.text)) or line.text.endswith((":", "："))


def _is_fragment(line: _Line) -> bool:
    """A few words that are not the tail of a sentence: a site name, a section, a stray word."""
    return line.words <= FRAGMENT_MAX_WORDS and not _SENTENCE_END.search(line.text)


def _fragment_rule(line: _Line, first: bool) -> str:
    if line.words == 0 or (line.words == 1 and len(line.text) <= 3):
        return "short-fragment"
    return "site-name" if first else "section-name"


def _drop_trailing_residue(lines: list[_Line], markers: Markers, removed: dict[int, str]) -> None:
    """Drop the few short lines after the last body paragraph: teasers, or an author's name and bio.

    An article ends on a paragraph, not on a headline, so such lines are not the article — unless
    they are a list (bullets, a line ending with ":", or more lines than a teaser strip has), which
    an article may well end with.
    """
    kept = [line for line in lines if line.number not in removed]
    last_prose = next((k for k in range(len(kept) - 1, -1, -1) if kept[k].prose), None)
    if last_prose is None:
        return
    tail = kept[last_prose + 1 :]
    introduces_list = any(line.text.endswith((":", "：")) for line in kept[last_prose:-1])
    if len(tail) > TRAILING_MAX_LINES or introduces_list or any(_BULLET.match(line.text) for line in tail):
        return
    bios = [_is_author_bio(line, markers) for line in tail]
    for k, line in enumerate(tail):
        if bios[k]:
            removed[line.number] = "author-bio"
        elif line.words <= BYLINE_MAX_WORDS and k + 1 < len(tail) and bios[k + 1]:
            removed[line.number] = "byline"
        elif line.words <= FRAGMENT_MAX_WORDS:
            removed[line.number] = "short-fragment"
        else:
            removed[line.number] = "trailing-teaser"


def _is_author_bio(line: _Line, markers: Markers) -> bool:
    """A short line naming a trade ("blogger interested in defence", "gazeteci"): an author box."""
    if line.words > BIO_MAX_WORDS:
        return False
    words = fold_words(line.text).split()
    # Also without the Arabic article, so "الكاتب" meets the role "كاتب".
    forms = (" ".join(words), " ".join(word.removeprefix("ال") for word in words))
    return any(f" {role} " in f" {form} " for role in markers.author_roles for form in forms)


def _join_kept(texts: list[str], removed: dict[int, str]) -> str:
    """The kept lines in their places; one blank line at most where paragraphs were separated."""
    kept = "\n".join(text for n, text in enumerate(texts) if n not in removed)
    return re.sub(r"\n{3,}", "\n\n", kept).strip()


def _metadata(doc: Document, lines: list[_Line], kept: list[_Line], removed: dict[int, str], markers: Markers) -> dict:
    """Empty fields of ``doc`` filled from the removed metadata lines (a byline, a site-name line above the
    headline) and the body's agency credit."""
    found: dict[str, object] = {}
    value: str | list[str] | None
    for position, line in enumerate(lines):
        if line.hit is None or line.hit.rule.fills is None:
            continue
        field_name, value = line.hit.rule.fills, line.hit.value
        if field_name == "keywords":
            value = _keywords(value) if value else _keywords_below(lines[position + 1 :], removed)
        elif field_name == "published_at" and value:
            value = markers.dates.parse(value, doc.fetched_at) or value
        if value:
            found.setdefault(field_name, value)
        if line.hit.date:
            found.setdefault("published_at", line.hit.date)
    for rule, field_name in (("byline", "author"), ("site-name", "site_name")):
        named = [line.text for line in lines if removed.get(line.number) == rule]
        if named:
            found.setdefault(field_name, named[0])
    prose = [line for line in kept if line.prose]
    if prose:
        agency = _LEADING_AGENCY.search(prose[0].text) or _TRAILING_AGENCY.search(prose[-1].text)
        if agency and _word_count(agency["agency"]) <= FRAGMENT_MAX_WORDS:
            found.setdefault("credit", agency["agency"].strip())
    return {
        name: value
        for name, value in found.items()
        if not getattr(doc, name) or (name == "published_at" and _beats_year_guess(value, doc.published_at))
    }


def _beats_year_guess(dateline: object, current: str | None) -> bool:
    """A full date read from a dateline replaces a year-only guess: an extractor that finds only a year
    (a copyright line, "© 2014") reports its 1 January, and a wrong date misplaces the item in its story."""
    return bool(
        current
        and _YEAR_GUESS.fullmatch(current)
        and isinstance(dateline, str)
        and _FULL_DATE.match(dateline)
        and dateline[:10] != current
    )


def _keywords(value: str) -> list[str]:
    return [part.strip() for part in _KEYWORD_SEPARATORS.split(value) if part.strip()]


def _keywords_below(lines: list[_Line], removed: dict[int, str]) -> list[str]:
    """Tags listed one per line under a bare "Etiketler :" heading."""
    keywords = []
    for line in lines:
        if not removed.get(line.number, "").startswith("block:") or line.words > KEYWORD_MAX_WORDS:
            break
        keywords.append(line.text)
    return keywords


def _iso_date(value: str, months: dict[str, int]) -> str | None:
    """The ISO date in a dateline's value for the simple forms (2024-03-01, 01.03.2024, 1 March 2024)."""
    folded = fold(value)
    year: int | None
    month: int | None
    if found := re.search(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)", folded):
        year, month, day = map(int, found.groups())
        return _valid_date(year, month, day)
    if found := re.search(r"(?<!\d)(\d{1,2})[./-](\d{1,2})[./-](\d{4})(?!\d)", folded):
        day, month, year = map(int, found.groups())
        return _valid_date(year, month, day) or _valid_date(year, day, month)
    words = fold_words(value).split()
    year = next((int(w) for w in words if re.fullmatch(r"(19|20)\d\d", w)), None)
    for k, word in enumerate(words):
        two_words = " ".join(words[k : k + 2])
        month = months.get(two_words) or months.get(word)
        if month and year:
            neighbours = words[max(k - 1, 0) : k] + words[k + (2 if two_words in months else 1) :][:1]
            for neighbour in neighbours:
                if found := re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)?", neighbour):
                    return _valid_date(year, month, int(found[1]))
    return None


def _valid_date(year: int, month: int, day: int) -> str | None:
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return None

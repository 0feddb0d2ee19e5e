"""Per-site health: a site whose recent figures turn bad is flagged, with the reason.

An outlet that changes its layout, starts refusing us or mislabels its charset does not fail
loudly: its items get short, empty or garbled, or stop. For each site, over its last
``RECENT`` URLs (computed by queries, no table of its own):

- the share of fetch failures, by reason (the error's class: HTTPStatusError, ConnectionFailed…);
- the share of empty or very short extractions (EmptyExtraction, or a text under ``SHORT_TEXT``);
- the share of items with suspected mojibake (replacement characters, UTF-8 read as Latin-1 such as
  ``Ø§Ù„`` or ``Ä±``, or Arabic windows-1256 bytes read as Latin-1: words made only of ``À``–``ÿ``);
- the median text length against the site's own earlier items;
- days since its last new item.

``mirsad sites`` and ``mirsad status`` show the flags, and so do ``GET /sites`` and ``GET /status``.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workers.core.topology import FINAL_STATES, UrlState
from workers.core.urls import site_of
from workers.storage.models import Item, UrlRecord, utcnow
from workers.storage.sites import list_sites

RECENT = 50  # URLs per site the figures are taken over
SCAN = 5000  # latest URLs looked at in all (the figures are about now, not the archive)
MIN_SAMPLE = 4  # fewer recent URLs than this say nothing yet
SHORT_TEXT = 200  # characters: less is a very short extraction (a teaser, a cookie notice)
SAMPLE_CHARS = 3000  # of each recent item's text, for the mojibake check
FAILING_SHARE = 0.5
EMPTY_SHARE = 0.5
MOJIBAKE_SHARE = 0.2
SHRUNK_RATIO = 0.5  # recent median text length under half of the site's earlier median
QUIET_DAYS = 7.0

_UTF8_AS_LATIN1 = re.compile(
    "[ØÙÚÛ][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013-\u203a\u20ac\u2122]|Ä±|Ä°|ÄŸ|Ä\u009f|ÅŸ|Å\u009f|Åž|Ã§|Ã¼|Ã¶|Ã‡|Ãœ|Ã–"
)
_WORD = re.compile(r"[^\W\d_]{3,}")
_LATIN1_LETTERS = re.compile("[\u00c0-\u00ff]+")


def looks_mojibake(text: str) -> bool:
    """True for text decoded with the wrong charset (see the module docstring for the three signs)."""
    if text.count("\ufffd") >= 3 or len(_UTF8_AS_LATIN1.findall(text)) >= 3:
        return True
    words = _WORD.findall(text)
    garbled = sum(1 for word in words if _LATIN1_LETTERS.fullmatch(word))
    return len(words) >= 10 and garbled / len(words) >= 0.3


@dataclass
class SiteHealth:
    site: str
    urls: int = 0  # recent URLs that ended (stored, failed or dead)
    stored: int = 0
    failures: Counter = field(default_factory=Counter)  # fetch failure reason → count
    empty: int = 0
    mojibake: int = 0
    median_chars: float | None = None
    earlier_median_chars: float | None = None
    last_item_at: datetime | None = None
    days_since_last_item: float | None = None
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "site": self.site,
            "urls": self.urls,
            "stored": self.stored,
            "fetch_failures": dict(self.failures),
            "empty_or_short": self.empty,
            "mojibake": self.mojibake,
            "median_chars": self.median_chars,
            "earlier_median_chars": self.earlier_median_chars,
            "last_item_at": self.last_item_at.isoformat() if self.last_item_at else None,
            "days_since_last_item": self.days_since_last_item,
            "flags": self.flags,
        }


def site_health(session: Session, now: datetime | None = None) -> list[SiteHealth]:
    """Every site among the latest URLs, with its figures and flags; flagged sites first."""
    now = now or utcnow()
    rows = session.execute(
        select(
            UrlRecord.canonical_url,
            UrlRecord.state,
            UrlRecord.last_error,
            UrlRecord.item_id,
            func.length(Item.text),
            Item.stored_at,
        )
        .outerjoin(Item, Item.id == UrlRecord.item_id)
        .where(UrlRecord.state.in_(FINAL_STATES))
        .order_by(UrlRecord.id.desc())
        .limit(SCAN)
    ).all()
    by_site: dict[str, list] = defaultdict(list)
    for row in rows:
        by_site[site_of(row.canonical_url)].append(row)
    recent_items = {row.item_id for site_rows in by_site.values() for row in site_rows[:RECENT] if row.item_id}
    garbled = _mojibake_items(session, recent_items)
    report = [_figures(site, site_rows, garbled, now) for site, site_rows in by_site.items()]
    return sorted(report, key=lambda health: (not health.flags, health.site))


def sites_overview(session: Session, min_articles: int) -> list[dict]:
    """Every site (flagged first): its articles, lines learned and health (``mirsad sites --json``, ``GET /sites``)."""
    summaries = {s.site: s for s in list_sites(session, min_articles)}
    health = {h.site: h for h in site_health(session)}
    return [
        {
            "site": site,
            "articles": summaries[site].articles if site in summaries else 0,
            "learned": summaries[site].learned if site in summaries else 0,
            "health": health[site].to_dict() if site in health else None,
        }
        for site in [*health, *(site for site in summaries if site not in health)]
    ]


def flagged(session: Session) -> list[SiteHealth]:
    return [health for health in site_health(session) if health.flags]


def _mojibake_items(session: Session, item_ids: set[int]) -> set[int]:
    if not item_ids:
        return set()
    texts = session.execute(select(Item.id, func.substr(Item.text, 1, SAMPLE_CHARS)).where(Item.id.in_(item_ids)))
    return {item_id for item_id, text in texts if text and looks_mojibake(text)}


def _figures(site: str, rows: list, garbled: set[int], now: datetime) -> SiteHealth:
    recent, earlier = rows[:RECENT], rows[RECENT:]
    health = SiteHealth(site, urls=len(recent))
    lengths = []
    for row in recent:
        if row.state == UrlState.STORED and row.item_id:
            health.stored += 1
            lengths.append(row[4] or 0)
            health.empty += (row[4] or 0) < SHORT_TEXT
            health.mojibake += row.item_id in garbled
        elif "EmptyExtraction" in (row.last_error or ""):
            health.empty += 1
        else:
            health.failures[_reason(row.last_error)] += 1
    earlier_lengths = [row[4] for row in earlier if row.state == UrlState.STORED and row[4]]
    health.median_chars = statistics.median(lengths) if lengths else None
    health.earlier_median_chars = statistics.median(earlier_lengths) if earlier_lengths else None
    stored_times = [row.stored_at for row in rows if row.stored_at is not None]
    if stored_times:
        health.last_item_at = max(stored_times)
        health.days_since_last_item = round((now - health.last_item_at).total_seconds() / 86400, 1)
    health.flags = _flags(health, len(earlier_lengths))
    return health


def _flags(health: SiteHealth, earlier_items: int) -> list[str]:
    flags: list[str] = []
    if health.urls < MIN_SAMPLE:
        return flags
    failed = sum(health.failures.values())
    if failed / health.urls >= FAILING_SHARE:
        reasons = ", ".join(f"{reason} {count}" for reason, count in health.failures.most_common(3))
        flags.append(f"fetch failures in {failed} of the last {health.urls} URLs ({reasons})")
    if health.empty / health.urls >= EMPTY_SHARE:
        flags.append(
            f"empty or very short extractions in {health.empty} of the last {health.urls} URLs "
            "(layout changed? add an override)"
        )
    if health.stored and health.mojibake / health.stored >= MOJIBAKE_SHARE:
        flags.append(
            f"suspected mojibake in {health.mojibake} of the last {health.stored} items "
            "(wrong charset? set charset in overrides.yaml)"
        )
    if (
        health.median_chars
        and health.earlier_median_chars
        and earlier_items >= MIN_SAMPLE
        and health.median_chars < SHRUNK_RATIO * health.earlier_median_chars
    ):
        flags.append(f"median text {health.median_chars:.0f} chars against {health.earlier_median_chars:.0f} before")
    if health.days_since_last_item is not None and health.days_since_last_item >= QUIET_DAYS:
        flags.append(f"no new item for {health.days_since_last_item:.0f} days")
    return flags


def _reason(last_error: str | None) -> str:
    """The kind of a failure: the error's class name (``HTTPStatusError: HTTP 404 …`` → HTTPStatusError)."""
    text = (last_error or "unknown").removeprefix("gave up after ")
    match = re.search(r"last error: (\w+)", text) or re.match(r"(\w+)", text)
    return match.group(1) if match else "unknown"

"""What each site repeats: lines seen in several distinct articles of one site are its boilerplate.

A copyright notice, a rotating sidebar of teasers or a subscription notice comes back on every
page of a site, in words no marker list can know in advance. So the strip stage records each
article's candidate lines in ``site_lines`` — one row per (site, line fingerprint, article), so a
stage that runs twice counts an article once — and a line found in at least
``MIRSAD_SITE_LINE_MIN_ARTICLES`` *other* articles of the site is removed from the article at hand.
The database is the shared state, so every worker learns from every other worker's articles.

Candidates are lines of at most ``CANDIDATE_MAX_WORDS`` words, folded (``textnorm.fold_words``) so
spacing, case and diacritic variants meet. The limit covers what sites repeat — teasers and
section labels (a few words), notices (15–40 words) — while most body paragraphs of news prose are
longer, so a site's articles rarely feed it their own text. Article sentences that do recur (a
wire story republished at a new address, a stock background sentence) are guarded in strip: when
learned lines would take most of an article's prose, the article is a copy, and its prose stays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from workers.storage.models import SiteLineRecord, utcnow
from workers.text.textnorm import candidates


@dataclass(frozen=True)
class SiteSummary:
    """A site seen by strip: how many articles it sent and how many lines it has taught."""

    site: str
    articles: int
    learned: int


@dataclass(frozen=True)
class SiteLine:
    """A line of a site with the number of distinct articles it was seen in."""

    fingerprint: str
    line: str
    articles: int


def _record(session: Session, site: str, url_hash: str, found: dict[str, str]) -> None:
    rows = [
        {"site": site, "fingerprint": fingerprint, "url_hash": url_hash, "line": line, "seen_at": utcnow()}
        for fingerprint, line in found.items()
    ]
    if not rows:
        return
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(SiteLineRecord).on_conflict_do_nothing(index_elements=["site", "fingerprint", "url_hash"]), rows
    )


def learned_lines(
    session: Session, site: str, min_articles: int, among: Iterable[str] | None = None, besides: str | None = None
) -> frozenset[str]:
    """Fingerprints of the site's lines seen in at least ``min_articles`` distinct articles.

    ``among`` limits the answer to those fingerprints (an article's own lines: the index then
    reads only their rows); ``besides`` leaves one article out of the count, so that an article
    is judged on the others alone, the same on a retry as the first time.
    """
    query = (
        select(SiteLineRecord.fingerprint)
        .where(SiteLineRecord.site == site)
        .group_by(SiteLineRecord.fingerprint)
        .having(func.count() >= min_articles)
    )
    if among is not None:
        among = list(among)
        if not among:
            return frozenset()
        query = query.where(SiteLineRecord.fingerprint.in_(among))
    if besides is not None:
        query = query.where(SiteLineRecord.url_hash != besides)
    return frozenset(session.scalars(query))


def observe(session: Session, site: str, url_hash: str, lines: list[str], min_articles: int) -> frozenset[str]:
    """What the strip stage asks: which of this article's lines the site has taught (judged on the
    other articles), after recording the article's own lines for the articles to come."""
    own = candidates(lines)
    learned = learned_lines(session, site, min_articles, among=own, besides=url_hash)
    _record(session, site, url_hash, own)
    return learned


def list_sites(session: Session, min_articles: int) -> list[SiteSummary]:
    """Every site seen, with its article count and the number of lines it has taught, busiest first."""
    per_line = (
        select(SiteLineRecord.site, func.count().label("articles"))
        .group_by(SiteLineRecord.site, SiteLineRecord.fingerprint)
        .subquery()
    )
    learned: dict[str, int] = dict(
        session.execute(
            select(per_line.c.site, func.count()).where(per_line.c.articles >= min_articles).group_by(per_line.c.site)
        ).all()
    )
    articles = session.execute(
        select(SiteLineRecord.site, func.count(SiteLineRecord.url_hash.distinct())).group_by(SiteLineRecord.site)
    ).all()
    summaries = [SiteSummary(site, count, learned.get(site, 0)) for site, count in articles]
    return sorted(summaries, key=lambda summary: (-summary.articles, summary.site))


def site_lines(session: Session, site: str, min_articles: int = 1) -> list[SiteLine]:
    """The site's lines seen in at least ``min_articles`` articles, most frequent first."""
    rows = session.execute(
        select(SiteLineRecord.fingerprint, func.min(SiteLineRecord.line), func.count().label("articles"))
        .where(SiteLineRecord.site == site)
        .group_by(SiteLineRecord.fingerprint)
        .having(func.count() >= min_articles)
        .order_by(func.count().desc(), SiteLineRecord.fingerprint)
    ).all()
    return [SiteLine(fingerprint, line, articles) for fingerprint, line, articles in rows]

"""Site learning: lines a site repeats across its articles are counted in the database and stripped.

The counting runs on both databases; the stream test pushes six pages of one local site through
the real workers and checks that the footer notice they share is gone after the third.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from tests.fixture_server import FixtureServer
from tests.stack_helpers import item_for, push_all, wait_final
from workers.core.document import Document
from workers.core.settings import get_settings
from workers.runtime.pipeline import strip_stage
from workers.stages.strip import strip
from workers.storage.db import session_scope
from workers.storage.ledger import Claim
from workers.storage.models import SiteLineRecord
from workers.storage.sites import learned_lines, list_sites, observe, site_lines
from workers.text.textnorm import CANDIDATE_MAX_WORDS, line_fingerprint

NOTICE = "The Harbour Ledger is printed by Quayside Press; letters reach the desk through Pier Street."
CITIES = ["Misrata", "Izmir", "Benghazi", "Mersin", "Tobruk", "Antalya"]
TEASERS = [
    "Port authority opens a new quay at the eastern breakwater",
    "Fishing fleet returns early as storms close in",
    "Harbour school names its first class of pilots",
]


def article_lines(number: int) -> list[str]:
    """Body paragraphs of article ``number``: each line its own, so only the notice recurs."""
    city = CITIES[number % len(CITIES)]
    return [
        f"A delegation from {city} met naval officials on day {number} of the visit to review the training "
        f"programme, the logistics plan and the schedule of the next joint exercise at sea.",
        f"Officials said the {city} talks, the {number + 1}th round this year, covered maintenance of patrol "
        f"boats, exchanges of cadets and a common standard for search and rescue operations.",
        f"The next round is planned in {city} once the committee has reported on article {number}.",
    ]


def unique_site() -> str:
    """PostgreSQL's test database is shared between tests: each test counts on a site of its own."""
    return f"site-{uuid.uuid4().hex[:8]}.example"


# --- fingerprints (pure) --------------------------------------------------------------------------


def test_spelling_variants_share_a_fingerprint_and_different_lines_do_not():
    assert line_fingerprint("  اقرأ أيضاً: الأخبار ") == line_fingerprint("إقرأ ايضا - الاخبار")
    assert line_fingerprint("Follow The LEDGER") == line_fingerprint("follow the ledger!")
    assert line_fingerprint("Follow the Ledger") != line_fingerprint("Follow the Herald")


@pytest.mark.parametrize("line", ["", "   ", "— · —", "2024 10 15", " ".join(["word"] * (CANDIDATE_MAX_WORDS + 1))])
def test_blank_numeric_and_long_lines_are_not_candidates(line):
    assert line_fingerprint(line) is None


# --- counting (both databases) --------------------------------------------------------------------


def test_a_line_is_learned_once_seen_in_enough_distinct_articles(database_url):
    site = unique_site()
    with session_scope(database_url) as session:
        for number in range(3):
            observe(session, site, f"url-{number}", [*article_lines(number), NOTICE], 1)
        observe(session, site, "url-0", [*article_lines(0), NOTICE], 1)  # a stage that ran twice

    with session_scope(database_url) as session:
        assert learned_lines(session, site, 3) == {line_fingerprint(NOTICE)}
        assert learned_lines(session, site, 4) == frozenset()
        assert learned_lines(session, site, 3, besides="url-2") == frozenset()
        assert learned_lines(session, unique_site(), 1) == frozenset()
        rows = session.scalar(select(func.count()).select_from(SiteLineRecord).where(SiteLineRecord.site == site))
    assert rows == 3 * 4  # three articles of four lines: the repeated run added nothing


def test_observe_judges_an_article_on_the_other_articles_alone(database_url):
    site = unique_site()
    notice = line_fingerprint(NOTICE)
    seen = []
    with session_scope(database_url) as session:
        for number in range(5):
            seen.append(observe(session, site, f"url-{number}", [*article_lines(number), NOTICE], 3))
        retried = observe(session, site, "url-3", [*article_lines(3), NOTICE], 3)
        single = observe(session, site, "url-9", article_lines(9), 1)
    assert seen == [frozenset(), frozenset(), frozenset(), {notice}, {notice}]
    assert retried == {notice}
    assert single == frozenset()  # its lines were seen in no other article, whatever the threshold


def test_sites_are_listed_with_their_articles_and_learned_lines(database_url):
    site, other = unique_site(), unique_site()
    with session_scope(database_url) as session:
        for number in range(4):
            observe(session, site, f"url-{number}", [*article_lines(number), NOTICE, "Most read"], 1)
        observe(session, other, "url-x", article_lines(0), 1)

    with session_scope(database_url) as session:
        summaries = {summary.site: summary for summary in list_sites(session, 3)}
        learned = site_lines(session, site, 3)
        everything = site_lines(session, site)
    assert (summaries[site].articles, summaries[site].learned) == (4, 2)
    assert (summaries[other].articles, summaries[other].learned) == (1, 0)
    assert {(line.line, line.articles) for line in learned} == {(NOTICE, 4), ("Most read", 4)}
    assert len(everything) == 2 + 4 * 3 and everything[-1].articles == 1


# --- strip with learned lines (pure) ----------------------------------------------------------------


def test_strip_removes_learned_lines_with_their_fingerprint_as_rule():
    teaser = "Port authority opens a new quay"
    doc = strip(
        Document(text="\n".join([*article_lines(7), NOTICE, teaser])),
        site_lines=frozenset({line_fingerprint(NOTICE), line_fingerprint(teaser)}),
    )
    assert doc.text.split("\n") == article_lines(7)
    assert {(r.line, r.rule) for r in doc.removed} >= {
        (NOTICE, f"site:{line_fingerprint(NOTICE)}"),
        (teaser, f"site:{line_fingerprint(teaser)}"),
    }


def test_a_copy_of_an_earlier_article_keeps_its_prose():
    """A wire story republished at a new address repeats an article, not boilerplate."""
    lines = article_lines(4)
    doc = strip(
        Document(text="\n".join([*lines, NOTICE])),
        site_lines=frozenset(map(line_fingerprint, [lines[0], lines[2], NOTICE])),
    )
    assert doc.text.split("\n") == [*lines, NOTICE]


# --- the strip stage on the database ----------------------------------------------------------------


def test_strip_stage_learns_the_site_and_strips_from_the_fourth_article(database_url, monkeypatch):
    monkeypatch.setenv("MIRSAD_DATABASE_URL", database_url)
    get_settings.cache_clear()
    site = unique_site()
    try:
        outputs = []
        for number in range(4):
            url = f"https://{site}/news/{number}"
            claim = Claim(
                url_id=number,
                url=url,
                url_hash=f"hash-{site}-{number}",
                attempt=1,
                payload=Document(text="\n".join([*article_lines(number), NOTICE]), url=url).to_dict(),
            )
            outputs.append(Document.from_dict(strip_stage(claim)))
        again = Document.from_dict(strip_stage(claim))
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert all(NOTICE in doc.text for doc in outputs[:3])
    assert NOTICE not in outputs[3].text and again.text == outputs[3].text
    assert outputs[3].text.split("\n") == article_lines(3)


# --- the stream: real workers ---------------------------------------------------------------------


def site_page(number: int) -> str:
    """An article of the site, its footer notice and teasers of other stories (in the article: clean keeps them)."""
    paragraphs = "".join(f"<p>{line}</p>" for line in [*article_lines(number), NOTICE])
    teasers = "".join(f"<p>{teaser}</p>" for teaser in TEASERS)
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Talks in {CITIES[number]}</title>"
        f"</head><body><nav><a href='/'>Home</a> <a href='/news'>News</a></nav><main><article>"
        f"<h1>Talks in {CITIES[number]}</h1>{paragraphs}<div class='more'>{teasers}</div>"
        f"</article></main></body></html>"
    )


@pytest.mark.integration
def test_a_notice_and_teasers_shared_by_a_sites_pages_are_gone_after_the_third(stack, tmp_path):
    database_url, *_ = stack
    for number in range(6):
        (tmp_path / f"talks-{number}.html").write_text(site_page(number), encoding="utf-8")
    with FixtureServer(pages_dir=tmp_path) as server:
        items = []
        for batch in (range(3), range(3, 6)):  # the first three are stored before the others are pushed
            results = push_all(database_url, [server.url(f"/pages/talks-{number}.html") for number in batch])
            records = wait_final(database_url, [result.url_id for result in results.values()])
            assert {record.state for record in records.values()} == {"stored"}
            items += [item_for(database_url, records[result.url_id]) for result in results.values()]
    assert [NOTICE in item.text for item in items] == [True, True, True, False, False, False]
    assert all(line in item.text for number, item in enumerate(items) for line in article_lines(number))
    # The teasers go from every item (they look like residue after the body), but only the site's
    # own history says so from the fourth on: there the rule that removed them is the learned line.
    learned = [{removal["line"]: removal["rule"] for removal in item.removed} for item in items[3:]]
    assert all(not any(teaser in item.text for teaser in TEASERS) for item in items)
    assert all(rules[line] == f"site:{line_fingerprint(line)}" for rules in learned for line in [NOTICE, *TEASERS])

"""One article, one item; one event, one story: through real Celery workers, real Redis and both databases.

The pages are rendered from our own labelled articles (tests/fixtures/stories/articles.yaml) into a
folder the fixture server serves, each with the ``<link rel="canonical">`` an outlet would put there.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from tests.fixture_server import FixtureServer
from tests.labelled_stories import load_fixture
from tests.stack_helpers import json_lines, mirsad, push_all, wait_final
from workers.core.urls import canonicalize, url_hash
from workers.storage.db import session_scope
from workers.storage.models import Item, UrlEvent, UrlRecord

pytestmark = pytest.mark.integration

ARTICLE = "naval-ar-anadolu"  # the canonical page, also reached by a print path, a redirect and utm_ links
OTHER_OUTLET = "naval-ar-wasat"  # the same event in another outlet's words
WIRE_COPY = "naval-ar-copy"  # another outlet republishing ARTICLE word for word
UNRELATED = "dbeibah-guler-istanbul"  # the same two men four days later, another subject
PRINT_PATH = f"print/{ARTICLE}.html"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Serves the labelled articles as pages; the print page declares the article's own URL canonical."""
    pages = tmp_path_factory.mktemp("story-pages")
    with FixtureServer(pages_dir=pages) as fixture_server:
        for item in load_fixture():
            write_page(pages / f"{item.id}.html", item.document, fixture_server.url(f"/pages/{item.id}.html"))
        article = next(item for item in load_fixture() if item.id == ARTICLE)
        write_page(pages / PRINT_PATH, article.document, fixture_server.url(f"/pages/{ARTICLE}.html"))
        yield fixture_server


def write_page(path: Path, document, canonical: str) -> None:
    paragraphs = "\n".join(f"<p>{html.escape(line)}</p>" for line in document.text.splitlines() if line.strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(document.title)}</title>
<link rel="canonical" href="{canonical}">
<meta property="og:site_name" content="{html.escape(document.site_name)}">
<meta property="article:published_time" content="{document.published_at}">
</head><body>
<article><h1>{html.escape(document.title)}</h1>
{paragraphs}
</article>
</body></html>
""",
        encoding="utf-8",
    )


def page(server: FixtureServer, item_id: str) -> str:
    return server.url(f"/pages/{item_id}.html")


def store_all(database_url: str, urls: list[str]) -> dict[str, UrlRecord]:
    """Push ``urls`` together and wait until each is final; the records by pushed URL, all stored."""
    results = push_all(database_url, urls)
    records = wait_final(database_url, list({r.url_id for r in results.values()}))
    by_url = {url: records[result.url_id] for url, result in results.items()}
    assert all(r.state == "stored" for r in by_url.values()), {u: r.last_error for u, r in by_url.items()}
    return by_url


def last_event(database_url: str, url_id: int) -> str | None:
    with session_scope(database_url) as session:
        return session.scalar(select(UrlEvent.detail).where(UrlEvent.url_id == url_id).order_by(UrlEvent.id.desc()))


def item(database_url: str, item_id: int) -> Item:
    with session_scope(database_url) as session:
        return session.get(Item, item_id)


def test_one_article_reached_by_four_urls_is_one_item(stack, server):
    database_url, *_ = stack
    canonical = page(server, ARTICLE)
    tracked = canonical + "?utm_source=twitter&utm_medium=social&fbclid=x1"
    printed = server.url(f"/pages/{PRINT_PATH}")
    redirected = server.url(f"/redirect-to?url={quote(canonical, safe='')}")
    records = store_all(database_url, [canonical, tracked, printed, redirected])  # two workers race for them

    assert records[canonical].id == records[tracked].id  # one URL row: folded before the seen-check
    item_ids = {r.item_id for r in records.values()}
    assert len(item_ids) == 1
    (item_id,) = item_ids
    with session_scope(database_url) as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Item).where(Item.url_hash == url_hash(canonicalize(canonical)))
            )
            == 1
        )
        rows = session.scalars(select(UrlRecord).where(UrlRecord.item_id == item_id)).all()
        aliases = [row for row in rows if row.alias_of is not None]
        assert len(rows) == 3 and len(aliases) == 2  # whichever came first is the item; the others its aliases
        assert {row.alias_of for row in aliases} == {item_id}
        assert all(last_event(database_url, row.id) == f"alias of item {item_id}" for row in aliases)
    stored = item(database_url, item_id)
    assert stored.url in {canonical, printed, redirected}
    shown = json.loads(mirsad("show", str(item_id), "--json", env={"MIRSAD_DATABASE_URL": database_url}).stdout)
    assert shown["url"] == stored.url and shown["state"] == "stored" and shown["history"]  # the URL that stored it


def test_two_outlets_share_a_story_a_wire_copy_is_marked_and_an_unrelated_article_is_apart(stack, server):
    database_url, *_ = stack
    first = store_all(database_url, [page(server, ARTICLE)])[page(server, ARTICLE)]
    later = store_all(database_url, [page(server, name) for name in (OTHER_OUTLET, WIRE_COPY, UNRELATED)])
    original, other, copy, unrelated = (
        item(database_url, record.item_id)
        for record in (first, *(later[page(server, name)] for name in (OTHER_OUTLET, WIRE_COPY, UNRELATED)))
    )

    assert other.story_id == original.story_id and other.copy_of is None
    assert copy.story_id == original.story_id and copy.copy_of == original.id
    assert unrelated.story_id != original.story_id and unrelated.copy_of is None
    assert original.copy_of is None
    assert (
        last_event(database_url, later[page(server, WIRE_COPY)].id)
        == f"item {copy.id}, story {original.story_id}, copy of item {original.id}"
    )

    env = {"MIRSAD_DATABASE_URL": database_url}
    shown = json.loads(mirsad("show", str(copy.id), "--json", env=env).stdout)
    assert (shown["story"], shown["copy_of"]) == (original.story_id, original.id)
    listed = mirsad("stories", "--json", "--since", "1h", env=env)
    story = next(s for s in json_lines(listed.stdout) if s["story"] == original.story_id)
    assert story["first_item"] == original.id and story["first_source"] == original.site_name
    assert story["first_published_at"].startswith("2025-02-10")  # the pages' dates are days: ties go by id
    assert [i["id"] for i in story["items"]][0] == original.id
    assert {i["id"]: i["copy_of"] for i in story["items"]} == {original.id: None, other.id: None, copy.id: original.id}
    assert unrelated.id not in {i["id"] for i in story["items"]}
    table = mirsad("stories", env=env)
    assert table.returncode == 0 and original.site_name in table.stdout

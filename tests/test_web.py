"""The web page in a real browser (Debian's headless Chromium) against a real stack: workers, Redis, database, API.

Items pushed while the feed is open appear without a reload; search in Arabic and Turkish with
facets; the item, story, entity, sources and status pages; the write forms; a hostile page whose
title, author, text and URL carry script, onerror, javascript: links and bidi overrides runs
nothing and still reads; the watches page's live preview, adding a watch (its secret shown once), a
watch's matches and deliveries with resend and remove; screenshots of every page at 1280×800 and
390×844, none wider than 390 px.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.api_server import ApiServer, healthy, make_token
from tests.browser import DESKTOP, PHONE, chromium, screenshot_dir, sign_in, watched
from tests.fixture_server import FixtureServer
from tests.labelled_search import bench
from tests.labelled_stories import load_fixture
from tests.stack_helpers import wait_final, wait_until
from tests.test_watches import Receiver, about, write_page
from workers.core.document import Document, Tag
from workers.core.urls import canonicalize, url_hash
from workers.runtime.pipeline import tag_document
from workers.storage.db import session_scope
from workers.storage.models import Delivery, Item, Watch
from workers.storage.store import store_item

pytestmark = pytest.mark.integration

HOSTILE_NAME = 'hostile"><img src=x onerror=alert(1)>.html'
HOSTILE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>&lt;script&gt;alert("title")&lt;/script&gt; Tripoli &#x202E;deal&#x202C;
&lt;img src=x onerror=alert("t")&gt;</title>
<meta name="author" content="&lt;img src=x onerror=alert('author')&gt; &#x202E;rohtua">
</head><body><article>
<h1>&lt;script&gt;alert("title")&lt;/script&gt; Tripoli &#x202E;deal&#x202C; &lt;img src=x onerror=alert("t")&gt;</h1>
<p>The delegation in Tripoli wrote &lt;script&gt;alert("text")&lt;/script&gt; into its statement, and
&lt;img src=x onerror=alert("img")&gt; beside it, with a link
<a href="javascript:alert('link')">javascript:alert('link')</a>
that must stay a word. Turkey and Libya signed a defence cooperation agreement in Ankara on Monday.</p>
<p>وقّعت تركيا وليبيا &#x202E;اتفاقية&#x202C; للتعاون الدفاعي
&lt;script&gt;alert("ar")&lt;/script&gt; في أنقرة يوم الاثنين.</p>
<p>Ankara'da imzalanan anlaşma &lt;svg onload=alert("tr")&gt; eğitim ve savunma işbirliğini kapsıyor.</p>
</article></body></html>
"""


# The same, handed straight to the store step: an extractor keeps no tag in an author, a feed hint or a
# future extractor might, and a page's URL could be anything the store step was given.
HOSTILE_DOCUMENT = Document(
    text='Officials in Tripoli said <script>alert("direct")</script> and <img src=x onerror=alert("direct")>.\n'
    "\u202eوقّعت تركيا وليبيا اتفاقية للتعاون الدفاعي في أنقرة <a href=javascript:alert(1)>link</a>",
    title='<script>alert("direct title")</script> Misrata \u202eport\u202c visit',
    author="<img src=x onerror=alert('author')> \u202erohtua",
    site_name="<b onmouseover=alert('site')>site</b>",
    url="javascript:alert('url')",
    language="ar",
    published_at="2026-12-01T08:00:00+00:00",
    tags=[Tag("person", "<script>alert('tag')</script>", 1.0, ["<img src=x onerror=alert('evidence')>"])],
)


class Site:
    """The stack's API and web page, its tokens, and the items stored before the tests."""

    def __init__(self, base_url: str, env: dict[str, str], database_url: str):
        self.base_url = base_url
        self.env = env
        self.database_url = database_url
        self.read = make_token(env, "web-reader", "read")
        self.write = make_token(env, "web-writer", "write")
        items, _ = bench.load_labelled()
        self.labelled = bench.store_labelled(database_url, items)
        self.stories = store_story_articles(database_url)

    def url(self, path: str) -> str:
        return self.base_url + path

    def push(self, urls: list[str]) -> list[int]:
        response = httpx.post(
            self.url("/urls"), json={"urls": urls}, headers={"Authorization": f"Bearer {self.write}"}, timeout=30
        )
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["results"]]

    def stored(self, url_ids: list[int]) -> list[int]:
        records = wait_final(self.database_url, url_ids)
        assert all(r.state == "stored" for r in records.values()), [
            (r.url, r.state, r.last_error) for r in records.values()
        ]
        return [records[i].item_id for i in url_ids]


def store_story_articles(database_url: str) -> dict[str, int]:
    """The story fixture (tests/fixtures/stories), tagged and stored by the store step: id → item id."""
    ids = {}
    for article in load_fixture():
        url = f"https://stories.example/{article.id}"
        document = tag_document(article.document.replace(url=url))
        with session_scope(database_url) as session:
            ids[article.id] = store_item(session, url_hash(canonicalize(url)), url, document).item_id
    return ids


@pytest.fixture(scope="module")
def site(stack):
    database_url, env, _running, _log = stack
    base_url = f"http://127.0.0.1:{env['MIRSAD_API_PORT']}"
    wait_until(lambda: healthy(base_url), 60, "the stack's API")
    return Site(base_url, env, database_url)


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pages")
    for page in (Path(__file__).resolve().parents[1] / "seeds" / "pages").glob("*.html"):
        (folder / page.name).write_bytes(page.read_bytes())
    (folder / HOSTILE_NAME).write_text(HOSTILE_PAGE, encoding="utf-8")
    with FixtureServer(pages_dir=folder) as server:
        yield server


@pytest.fixture(scope="module")
def browsers():
    with chromium(DESKTOP) as fresh_context:
        yield fresh_context


@pytest.fixture(scope="module")
def browser(site, browsers):
    """A browser signed in with a write token through the sign-in form."""
    context = browsers()
    page = context.new_page()
    sign_in(page, site.base_url, site.write)
    page.close()
    return context


def row_titles(page) -> list[str]:
    return page.locator("#feed .row h3").all_inner_texts()


def test_signing_in_is_needed_and_the_session_cookie_is_httponly_and_strict(site, browsers):
    fresh = browsers()
    page = fresh.new_page()
    page.goto(site.url("/status"))
    assert page.url.startswith(site.url("/signin")), page.url  # no token, reads not open: sign in first
    page.fill("input[name=token]", "mirsad_not-a-token")
    page.click("form.stack button[type=submit]")
    assert "unknown or revoked token" in page.inner_text("main")
    page.fill("input[name=token]", site.read)
    page.click("form.stack button[type=submit]")
    page.wait_for_url(site.url("/status"))
    [cookie] = [c for c in fresh.cookies() if c["name"] == "mirsad_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert site.read not in cookie["value"]
    assert page.locator("form[action='/ui/push']").count() == 0  # a read token sees no write form
    forged = httpx.post(site.url("/ui/push"), data={"urls": "http://127.0.0.1/x"}, cookies={"mirsad_session": "x"})
    assert forged.status_code in (303, 403), forged.text  # no session, no CSRF token: nothing pushed
    as_script = httpx.get(site.url("/status"), headers={"Accept": "text/html", "Authorization": f"Bearer {site.read}"})
    assert as_script.status_code == 200 and "URLs per state" in as_script.text
    assert httpx.get(site.url("/status"), headers={"Authorization": f"Bearer {site.read}"}).json()["states"] is not None


def test_items_pushed_while_the_feed_is_open_appear_without_a_reload(site, browser, pages):
    seen = watched(browser)
    page = seen.page
    page.goto(site.url("/"))
    page.wait_for_function("() => document.querySelector('#feed').getAttribute('sse-connect')")
    page.evaluate("() => { window.__same_page = true; }")
    before = len(row_titles(page))
    names = ["en-wire.html", "tr-news.html", "ar-blog.html"]
    item_ids = site.stored(site.push([pages.url(f"/pages/{name}") for name in names]))
    for item_id in item_ids:
        page.wait_for_selector(f"#feed #item-{item_id}", timeout=10_000)
    assert page.evaluate("() => window.__same_page === true"), "the page was reloaded"
    assert len(row_titles(page)) == before + 3
    with session_scope(site.database_url) as session:
        titles = {session.get(Item, i).title for i in item_ids}
    shown = " ".join(row_titles(page)[:3])
    assert all(title.split()[0] in shown for title in titles), (titles, shown)

    page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")  # a reader further down is told
    page.wait_for_function("() => window.scrollY > 150")
    [later] = site.stored(site.push([pages.url("/pages/en-analysis.html")]))
    page.wait_for_selector(f"#item-{later}", state="attached", timeout=10_000)
    page.wait_for_selector("#new-badge:not([hidden])", timeout=5_000)
    assert page.inner_text("#new-badge") == "1 new"
    page.click("#new-badge")
    page.wait_for_function("() => window.scrollY === 0")
    assert page.locator("#new-badge").is_hidden()
    assert not seen.troubles, seen.troubles
    page.close()


def search_titles(page) -> list[str]:
    return page.locator(".results .row h3").all_inner_texts()


def total(page) -> int:
    return int(page.inner_text(".facets .total strong"))


def test_search_finds_every_form_in_arabic_and_turkish_and_facets_narrow(site, browser):
    seen = watched(browser)
    page = seen.page
    page.goto(site.url("/search?q=" + quote("تعاون")))
    assert "وزير الدفاع التركي يزور طرابلس" in search_titles(page)  # its text has التعاون only
    assert page.locator(".results mark").count() > 0
    assert "التعاون" in page.locator(".results mark").all_inner_texts()
    everything = total(page)
    assert everything >= 4
    facet = page.locator(".facets section:has(h2:text-is('Topic')) li a").first
    wanted = int(page.locator(".facets section:has(h2:text-is('Topic')) li .n").first.inner_text())
    assert wanted < everything
    facet.click()
    page.wait_for_url(re.compile(r"tag=topic"))
    assert total(page) == wanted == len(search_titles(page))
    page.locator(".facets a.chosen").first.click()  # the facet taken off again
    page.wait_for_load_state()
    assert total(page) == everything

    page.goto(site.url("/search?q=anla%C5%9Fma"))
    assert "TBMM, Libya ile yapılan mutabakat anlaşmasını onayladı" in search_titles(page)
    export = page.locator(".facets a[download]").first.get_attribute("href")
    response = page.request.get(site.url(export))  # the export link works with the session cookie
    assert response.status == 200 and "anlaşmasını" in response.text()
    assert not seen.troubles, seen.troubles
    page.close()


def test_item_story_and_entity_pages(site, browser):
    seen = watched(browser)
    page = seen.page
    page.goto(site.url(f"/items/{site.labelled['ar1']}"))
    assert page.inner_text("h1") == "تركيا وليبيا توقعان اتفاقية للتعاون الدفاعي"
    assert page.get_attribute("article.item", "dir") == "rtl"
    assert page.locator("article.item .text p[dir=auto]").count() >= 1
    assert "country" in page.inner_text("section.tags")

    first = site.stories["naval-ar-anadolu"]
    page.goto(site.url(f"/items/{first}"))
    story_link = page.locator("dl.facts a[href^='/stories/']")
    story_path = story_link.get_attribute("href")
    page.goto(site.url(story_path))
    times = page.locator(".report .when").all_inner_texts()
    assert len(times) >= 3 and times == sorted(times)  # in order of publication
    assert page.locator(".report").first.locator(".lag").inner_text() == "first"
    assert page.locator(".report.is-copy").count() >= 1  # the wire copy is marked
    assert "Countries named" in page.inner_text("section.named")

    page.goto(site.url("/entities/country/LY"))
    assert "Country:" in page.inner_text("h1") and "LY" in page.inner_text("h1")
    assert page.locator("svg.daily rect.bar").count() == 30
    assert page.locator("section:has(h2:text-is('Latest items')) .row").count() >= 3
    assert page.locator("section:has(h2:text-is('Named with it most often')) li a").count() >= 1
    assert not seen.troubles, seen.troubles
    page.close()


def test_sources_and_status_pages_and_their_write_forms(site, browser, pages):
    seen = watched(browser)
    page = seen.page
    page.goto(site.url("/sources"))
    feed_url = pages.url("/pages/feed-for-the-web-test.xml")
    page.fill("form[action='/ui/sources/add'] input[name=url]", feed_url)
    page.click("form[action='/ui/sources/add'] button")
    assert "now following" in page.inner_text(".notice")
    row = page.locator("table.sources tr", has_text=feed_url)
    assert row.count() == 1
    row.locator("button", has_text="Remove").click()
    assert "no longer following" in page.inner_text(".notice")
    assert page.locator("table.sources tr", has_text=feed_url).count() == 0

    page.goto(site.url("/status"))
    assert "fetch" in page.inner_text("section:has(h2:text-is('Queues'))")
    missing = pages.url("/status/404")
    page.fill("form[action='/ui/push'] textarea", missing)
    page.click("form[action='/ui/push'] button")
    assert "1 of 1 URLs accepted" in page.inner_text(".notice")
    [url_id] = [int(m) for m in re.findall(r"url:(\d+)", page.inner_text("ul.results"))]
    records = wait_final(site.database_url, [url_id])
    assert records[url_id].state == "failed"
    page.goto(site.url("/status"))
    assert missing in page.inner_text("table.failures")
    page.fill("form[action='/ui/requeue'] input[name=reason]", "404")
    page.click("form[action='/ui/requeue'] button")
    assert re.search(r"[1-9]\d* failed or dead URLs requeued", page.inner_text(".notice"))
    assert not seen.troubles, seen.troubles
    page.close()


def test_a_hostile_page_runs_nothing_and_still_reads(site, browser, pages):
    [item_id] = site.stored(site.push([pages.url("/pages/" + quote(HOSTILE_NAME))]))
    with session_scope(site.database_url) as session:
        direct = store_item(session, url_hash("hostile-direct"), HOSTILE_DOCUMENT.url, HOSTILE_DOCUMENT).item_id
    seen = watched(browser)
    page = seen.page
    for path in (
        f"/items/{item_id}",
        f"/items/{direct}",
        "/",
        "/search?q=Tripoli",
        "/search?q=" + quote("تعاون"),
        "/entities/person/" + quote("<script>alert('tag')</script>", safe=""),
    ):
        response = page.goto(site.url(path))
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_timeout(300)  # an onerror would have fired by now
        scripts = page.eval_on_selector_all("script", "nodes => nodes.map(n => n.getAttribute('src'))")
        assert scripts == ["/static/htmx.min.js", "/static/sse.min.js", "/static/mirsad.js"], (path, scripts)
        assert page.locator("img, svg[onload], [onerror], [onload]").count() == 0, path
        assert page.locator("a[href^='javascript:' i]").count() == 0, path
    page.goto(site.url(f"/items/{item_id}"))
    heading = page.inner_text("h1")
    assert '<script>alert("title")</script>' in heading and "Tripoli" in heading  # shown as text, readable
    assert "\u202e" not in heading  # the override is gone: the rest of the line reads the right way
    body = page.inner_text("article.item .text")
    assert '<script>alert("text")</script>' in body and "javascript:alert('link')" in body
    assert "للتعاون الدفاعي" in body
    assert "http://127.0.0.1" in page.inner_text("dl.facts")  # its URL, escaped, is a link to the page
    direction = page.eval_on_selector("article.item .text p:last-child", "p => getComputedStyle(p).unicodeBidi")
    assert direction in ("isolate", "plaintext")  # dir=auto: each paragraph keeps its own direction

    page.goto(site.url(f"/items/{direct}"))
    assert page.inner_text("h1") == '<script>alert("direct title")</script> Misrata port visit'
    facts = page.inner_text("dl.facts")
    assert "<img src=x onerror=alert('author')> rohtua" in facts and "<b onmouseover=alert('site')>site</b>" in facts
    assert "javascript:alert('url')" in facts and page.locator("dl.facts a.url").count() == 0  # text, not a link
    assert "<script>alert('tag')</script>" in page.inner_text("section.tags")
    text = page.inner_text("article.item .text")
    assert 'alert("direct")' in text and "\u202e" not in text and "وقّعت تركيا" in text
    assert not seen.troubles, seen.troubles  # no dialog, no console error (a CSP refusal would be one)
    page.close()


PREVIEW_WORD = "Qasrbuzayan"
HOSTILE_PREVIEW_TITLE = f'<img src=x onerror=alert("preview")> <script>alert("p")</script> {PREVIEW_WORD} pier'


def store_preview_items(database_url: str) -> list[str]:
    """Twelve items naming PREVIEW_WORD, published a day apart, the newest with a hostile title: the titles,
    newest first (stored directly: no watch sees them)."""
    titles = []
    with session_scope(database_url) as session:
        for n in range(12):
            title = HOSTILE_PREVIEW_TITLE if n == 11 else f"Harbour {PREVIEW_WORD} briefing number {n}"
            url = f"https://preview.example/{PREVIEW_WORD}/{n}"
            document = Document(
                text=f"Officials described the {PREVIEW_WORD} harbour works, phase {n}, to the visiting delegation.",
                title=title,
                url=url,
                language="en",
                published_at=f"2026-11-{n + 1:02d}T08:00:00+00:00",
            )
            store_item(session, url_hash(url), url, document)
            titles.append(title)
    return titles[::-1]


def test_watches_page_live_preview_adding_a_watch_and_its_deliveries(site, browser, pages, tmp_path_factory):
    shots = screenshot_dir(tmp_path_factory.mktemp("screenshots"))
    newest_first = store_preview_items(site.database_url)
    seen = watched(browser)
    page = seen.page
    page.goto(site.url("/watches"))
    assert page.locator("nav a[href='/watches']").count() == 1
    query_box = page.locator("form.watch-form input[name=query]")
    query_box.press_sequentially(f"harbour {PREVIEW_WORD}", delay=30)  # typed: the preview follows
    page.wait_for_function("() => document.querySelector('#preview-count')?.textContent === '12'", timeout=10_000)
    assert page.locator("#preview .row h3").all_inner_texts() == newest_first[:10]  # the latest ten, newest first
    assert page.locator("#preview .row h3 a").first.get_attribute("href").startswith("/items/")
    page.wait_for_timeout(300)  # an onerror would have fired by now
    assert page.locator("img, [onerror]").count() == 0  # the hostile title is text
    assert page.inner_text("#preview .row h3 >> nth=0") == HOSTILE_PREVIEW_TITLE
    page.screenshot(path=str(shots / "watches-preview-desktop-1280x800.png"), full_page=True)
    bearer = {"Authorization": f"Bearer {site.read}"}
    api = httpx.get(site.url("/watches/preview"), params={"q": f"harbour {PREVIEW_WORD}"}, headers=bearer).json()
    assert api["count"] == 12 and [i["title"] for i in api["items"]] == newest_first[:10]  # the API's preview

    query_box.fill("")
    query_box.press_sequentially('"unclosed', delay=30)
    page.wait_for_selector("#preview-error", timeout=10_000)
    assert "unclosed quote" in page.inner_text("#preview-error")

    receiver = Receiver().start()
    try:
        query_box.fill(PREVIEW_WORD)
        page.fill("form.watch-form input[name=name]", "Harbour works")
        page.fill("form.watch-form input[name=webhook]", "http://169.254.169.254/latest/hook")  # the metadata address
        page.click("form.watch-form button[type=submit]")
        refusal = page.inner_text("#watch-error")
        assert "169.254.169.254" in refusal and "\n" not in refusal  # the address guard's reason, one line
        assert page.input_value("form.watch-form input[name=query]") == PREVIEW_WORD  # nothing typed is lost
        page.wait_for_function("() => document.querySelector('#preview-count')?.textContent === '12'")

        page.fill("form.watch-form input[name=webhook]", receiver.url)
        page.click("form.watch-form button[type=submit]")
        secret = page.inner_text("#new-secret code.secret")
        assert re.fullmatch(r"whsec_[A-Za-z0-9+/=]+", secret), secret
        row = page.locator("table.watches tr", has_text="Harbour works")
        assert row.count() == 1 and PREVIEW_WORD in row.inner_text() and receiver.url in row.inner_text()
        assert row.locator("a[href$='/feed.atom']").count() == 1
        page.goto(site.url("/watches"))
        assert page.locator("#new-secret").count() == 0 and secret not in page.content()  # shown once only
        with session_scope(site.database_url) as session:
            watch_id = session.query(Watch.id).filter(Watch.name == "Harbour works").scalar()

        name = write_page(pages.pages_dir, "watched-harbour", "watched-harbour", about(PREVIEW_WORD))
        [item_id] = site.stored(site.push([pages.url(name)]))
        wait_until(lambda: item_id in receiver.items(), 30, "the watch's webhook")
        feed = page.request.get(site.url(f"/watches/{watch_id}/feed.atom"))  # the page's link, with its cookie
        assert feed.status == 200 and f"/items/{item_id}" in feed.text()

        page.goto(site.url(f"/watches/{watch_id}"))
        assert page.locator(f"section.matches a[href='/items/{item_id}']").count() == 1
        [delivery] = page.locator("table.deliveries tbody tr").all()
        assert "sent" in delivery.inner_text()
        with session_scope(site.database_url) as session:  # as MIRSAD_WEBHOOK_MAX_ATTEMPTS failures leave it
            dead = session.query(Delivery).filter(Delivery.watch_id == watch_id).one()
            dead.state, dead.last_error = "dead", "HTTP 500 from the receiver"
            delivery_id = dead.id
        page.reload()
        dead_row = page.locator(f"#delivery-{delivery_id}")
        assert "dead" in dead_row.inner_text() and "HTTP 500 from the receiver" in dead_row.inner_text()
        dead_row.locator("button", has_text="Resend").click()
        assert f"delivery {delivery_id} sent again" in page.inner_text(".notice")
        wait_until(lambda: receiver.items().count(item_id) == 2, 30, "the resent delivery")
        page.goto(site.url(f"/watches/{watch_id}"))
        assert "sent" in page.inner_text(f"#delivery-{delivery_id}")
        assert page.locator(f"#delivery-{delivery_id} button").count() == 0  # a sent one has no resend button

        page.set_viewport_size(PHONE)
        for path in ("/watches", f"/watches/{watch_id}"):
            page.goto(site.url(path))
            assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"], path
        page.goto(site.url("/watches"))
        page.locator("form.watch-form input[name=query]").press_sequentially(PREVIEW_WORD, delay=20)
        # the twelve and the page pushed since
        page.wait_for_function("() => document.querySelector('#preview-count')?.textContent === '13'")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]  # with the preview
        page.screenshot(path=str(shots / "watches-preview-phone-390x844.png"), full_page=True)
        page.set_viewport_size(DESKTOP)

        page.goto(site.url(f"/watches/{watch_id}"))
        page.click("form.remove button")
        assert "watch Harbour works removed" in page.inner_text(".notice")
        assert page.locator("table.watches tr", has_text="Harbour works").count() == 0
    finally:
        receiver.stop()
    refused = "console: Failed to load resource: the server responded with a status of 400 (Bad Request)"
    assert seen.troubles == [refused], seen.troubles  # only the refused form's answer (400, as the API's)
    page.close()


def test_screenshots_of_every_page_and_none_overflows_at_390_px(site, browser, tmp_path_factory):
    folder = screenshot_dir(tmp_path_factory.mktemp("screenshots"))
    story = site.stories["naval-ar-anadolu"]
    with session_scope(site.database_url) as session:
        story_id = session.get(Item, story).story_id
    watch = httpx.post(
        site.url("/watches"),
        json={"name": "Defence cooperation تعاون", "query": "تعاون country:LY"},
        headers={"Authorization": f"Bearer {site.write}"},
        timeout=30,
    )
    assert watch.status_code == 201, watch.text
    paths = {
        "feed": "/",
        "search": "/search?q=" + quote("تعاون"),
        "item-ar": f"/items/{site.labelled['ar1']}",
        "item-tr": f"/items/{site.labelled['tr3']}",
        "story": f"/stories/{story_id}",
        "entity": "/entities/country/LY",
        "sources": "/sources",
        "status": "/status",
        "watches": "/watches",
        "watch": f"/watches/{watch.json()['id']}",
        "signin": "/signin",
    }
    seen = watched(browser)
    page = seen.page
    too_wide = {}
    for name, path in paths.items():
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            page.goto(site.url(path))
            shot = folder / f"{name}-{label}-{size['width']}x{size['height']}.png"
            page.screenshot(path=str(shot))  # the viewport: what a reader sees first
            assert shot.stat().st_size > 5_000, shot
            if label == "phone":
                width = page.evaluate("() => document.documentElement.scrollWidth")
                if width > PHONE["width"]:
                    too_wide[name] = width
    assert not too_wide, f"wider than 390 px: {too_wide} (screenshots in {folder})"
    assert len(list(folder.glob("*.png"))) >= 2 * len(paths)
    assert not seen.troubles, seen.troubles
    page.close()


def test_with_open_reads_the_pages_need_no_sign_in_but_writing_does(site, tmp_path):
    env = {**site.env, "MIRSAD_API_OPEN_READ": "1"}
    with ApiServer(env, log_path=tmp_path / "api.log") as server:
        html = {"Accept": "text/html"}
        feed = httpx.get(server.base_url + "/", headers=html, timeout=30)
        assert feed.status_code == 200 and 'class="row' in feed.text and "Sign in" in feed.text
        item = httpx.get(server.base_url + f"/items/{site.labelled['ar1']}", headers=html, timeout=30)
        assert item.status_code == 200 and "للتعاون الدفاعي" in item.text
        assert "/ui/push" not in httpx.get(server.base_url + "/status", headers=html, timeout=30).text
        push = httpx.post(server.base_url + "/ui/push", data={"urls": "http://127.0.0.1/x"}, timeout=30)
        assert push.status_code == 303 and push.headers["location"].startswith("/signin")

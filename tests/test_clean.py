"""The clean stage on the sample pages in seeds/pages (written for Mirsad, modelled on real outlets)."""

from pathlib import Path

import pytest

from workers.core.errors import EmptyExtraction
from workers.runtime.pipeline import extract
from workers.stages.clean import clean

PAGES = Path(__file__).resolve().parent.parent / "seeds" / "pages"


def page(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "name, language",
    [
        ("ar-aggregator.html", "ar"),
        ("ar-ilkha-style.html", "ar"),
        ("ar-blog.html", "ar"),
        ("tr-agency.html", "tr"),
        ("tr-news.html", "tr"),
        ("en-wire.html", "en"),
    ],
)
def test_each_sample_page_gives_a_body_and_metadata(name, language):
    document = clean(page(name), url=f"https://example.com/{name}")
    assert len(document.text) > 1000
    assert document.title and document.title not in document.text.split("\n")[0]
    assert document.language == language
    assert document.canonical_url.startswith("https://")
    assert document.site_name


def test_metadata_comes_from_the_page_head():
    document = clean(page("en-wire.html"))
    assert document.title == "Turkey to train 300 Libyan officers a year under new military pact"
    assert document.published_at == "2025-03-11"
    assert "Selin Aydin" in document.author


def test_meta_keywords_are_split_into_a_list():
    document = clean(page("ar-aggregator.html"))
    assert "ليبيا" in document.keywords and "تركيا" in document.keywords


def test_paragraphs_stay_on_their_own_lines():
    document = clean(page("tr-news.html"))
    assert document.text.count("\n") >= 4


@pytest.mark.parametrize("html", ["", "<html><body></body></html>", "<html><body><nav>Home</nav></body></html>"])
def test_a_page_without_article_text_is_a_permanent_failure(html):
    with pytest.raises(EmptyExtraction, match="no article text"):
        clean(html)


# --- metadata as real pages give it (tests/fixtures/pages: pages written for Mirsad, built like real outlets) ---

FIXTURE_PAGES = Path(__file__).resolve().parent / "fixtures" / "pages"


def fixture_page(name: str) -> str:
    return (FIXTURE_PAGES / name).read_text(encoding="utf-8")


def test_a_url_is_never_a_site_name_the_host_stands_in():
    document = clean(fixture_page("tr-site-suffix.html"), url="https://www.ornekhaber.com.tr/turkiye/meclis")
    assert document.site_name == "ornekhaber.com.tr"


def test_og_site_name_stands_in_for_a_url_site_name():
    assert clean(fixture_page("tr-agency-byline.html"), url="https://example.org/a").site_name == "Ajans Örnek"


def test_a_site_name_with_a_slash_is_still_a_name():
    html = fixture_page("tr-site-suffix.html").replace(
        '<meta name="twitter:site" content="https://twitter.com/ornekhaber">',
        '<meta property="og:site_name" content="Haber 7/24">',
    )
    assert clean(html, url="https://www.ornekhaber.com.tr/x").site_name == "Haber 7/24"


@pytest.mark.parametrize(
    "name, url, title",
    [
        ("tr-site-suffix.html", "https://www.ornekhaber.com.tr/turkiye/meclis", "Meclis afet yasasını kabul etti"),
        ("tr-agency-byline.html", "https://example.org/a", "Karadeniz'de sağanak etkili oldu"),
    ],
)
def test_titles_lose_their_site_or_section_suffix_and_the_body_does_not_repeat_them(name, url, title):
    document = clean(fixture_page(name), url=url)
    assert document.title == title
    assert document.text.split("\n")[0] != title


@pytest.mark.parametrize(
    "title, url",
    [
        ("Erdoğan - Putin görüşmesi sona erdi", "https://www.ornekhaber.com.tr/x"),
        ("Libya | Türkiye hattında yeni dönem", "https://www.ornekhaber.com.tr/x"),
        ("Libya - Türkiye", "https://www.turkiyegazetesi.com.tr/x"),
    ],
)
def test_a_separator_inside_the_headline_itself_stays(title, url):
    html = fixture_page("tr-site-suffix.html").replace("Meclis afet yasasını kabul etti", title)
    html = html.replace(
        'content="https://twitter.com/ornekhaber"',
        'content="https://twitter.com/ornekhaber"><meta property="og:site_name" content="Türkiye"',
    )
    assert clean(html, url=url).title == title


def test_a_widget_heading_ending_in_a_colon_is_not_the_title():
    document = extract(fixture_page("en-blog-share-this.html"), url="https://notes.example.net/2024/talks")
    assert document.title == "Why the border talks stalled"
    assert not document.text.startswith("Why the border talks stalled")


@pytest.mark.parametrize(
    "dateline, published_at",
    [
        ("الأربعاء، 28 آب/اغسطس 2013", "2013-08-28"),
        ("تاريخ النشر: 12 مارس 2014", "2014-03-12"),
    ],
)
def test_a_dateline_in_the_text_beats_the_extractors_year_only_guess(dateline, published_at):
    """The page's only other date is its copyright year, which the extractor reports as 1 January."""
    html = fixture_page("ar-dateline-year-guess.html").replace("الأربعاء، 28 آب/اغسطس 2013", dateline)
    html = html.replace("© 2013", f"© {published_at[:4]}")
    assert clean(html, url="https://example.org/news/item").published_at == f"{published_at[:4]}-01-01"
    assert extract(html, url="https://example.org/news/item").published_at == published_at


def test_an_agency_byline_block_leaves_the_body_for_the_metadata():
    document = extract(fixture_page("tr-agency-byline.html"), url="https://example.org/a")
    assert (document.author, document.published_at) == ("Zeynep Kaya Demir", "2026-04-20")
    assert "Güncelleme" not in document.text and "Zeynep Kaya Demir" not in document.text

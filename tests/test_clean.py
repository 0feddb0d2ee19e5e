"""The clean stage on the sample pages in seeds/pages (written for Mirsad, modelled on real outlets)."""

from pathlib import Path

import pytest

from workers.core.errors import EmptyExtraction
from workers.stages.clean import clean

PAGES = Path(__file__).resolve().parent.parent / "seeds" / "pages"


def page(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name, language", [
    ("ar-aggregator.html", "ar"), ("ar-ilkha-style.html", "ar"), ("ar-blog.html", "ar"),
    ("tr-agency.html", "tr"), ("tr-news.html", "tr"), ("en-wire.html", "en"),
])
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

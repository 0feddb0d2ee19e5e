"""Per-source overrides: config/overrides.yaml changes clean, strip and decoding for one site only."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workers.core.document import Document
from workers.core.settings import PROJECT_ROOT, get_settings
from workers.stages.clean import clean
from workers.stages.overrides import decode_forced, load_overrides, override_for
from workers.stages.strip import strip

SOURCES = """
- site: www.harbour-ledger.example
  body_css: "div.story p.body"
  language: ar
  charset: windows-1256
  markers:
    - id: ledger-desk
      match: contains
      max_words: 20
      phrases: [letters reach the desk]
- site: quay-times.example
  body_xpath: "//section[@id='copy']"
"""

BODY = [
    "The committee met in the port on Monday to review the training programme for the coming year.",
    "Officials said the review covered patrol boat maintenance, cadet exchanges and rescue drills.",
]
SIDEBAR = "Opinion: why the harbour needs a second breakwater before the winter storms arrive in force."
DESK = "Letters reach the desk through Pier Street."


def page() -> str:
    """A page where the generic extractor keeps a long opinion teaser that only a selector can tell apart."""
    paragraphs = "".join(f"<p class='body'>{line}</p>" for line in BODY)
    return (
        f"<html lang='en'><head><title>Port review</title></head><body><div class='story'>"
        f"<h1>Port review</h1>{paragraphs}<p class='teaser'>{SIDEBAR}</p></div>"
        f"<section id='copy'>{paragraphs}</section></body></html>"
    )


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    """A config folder with the project's markers and the sources above, made the configured one."""
    for name in ("boilerplate.yaml", "dates.yaml"):
        shutil.copy(PROJECT_ROOT / "config" / name, tmp_path / name)
    (tmp_path / "overrides.yaml").write_text(SOURCES, encoding="utf-8")
    monkeypatch.setenv("MIRSAD_CONFIG_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    monkeypatch.undo()
    get_settings.cache_clear()


def test_entries_are_keyed_by_site_and_hold_on_its_variant_hosts(config_dir):
    overrides = load_overrides(config_dir / "overrides.yaml")
    assert set(overrides) == {"harbour-ledger.example", "quay-times.example"}
    ledger = override_for("https://harbour-ledger.example/news/1")
    assert (ledger.body_css, ledger.language, ledger.charset) == ("div.story p.body", "ar", "windows-1256")
    # One notion of site (core.urls.site_of): the mobile and AMP hosts of a site are that site.
    assert override_for("https://m.harbour-ledger.example/news/1") == ledger
    assert override_for("https://amp.harbour-ledger.example/news/1") == ledger
    assert override_for("https://news.harbour-ledger.example/news/1") is None
    assert override_for(None) is None


def test_a_missing_file_means_no_overrides(tmp_path):
    assert load_overrides(tmp_path / "overrides.yaml") == {}


def test_the_project_file_loads():
    assert isinstance(load_overrides(PROJECT_ROOT / "config" / "overrides.yaml"), dict)


@pytest.mark.parametrize(
    "entry, complaint",
    [
        ("- site: a.example\n  body_css: p\n  body_xpath: //p\n", "not both"),
        ("- site: a.example\n  body_css: 'p[['\n", "bad selector"),
        ("- site: a.example\n  body_xpath: '//p[['\n", "bad selector"),
        ("- site: a.example\n  charset: klingon-8\n", "unknown charset"),
        ("- site: a.example\n  charset: zlib\n", "unknown charset"),
        ("- site: a.example\n  selector: p\n", "unknown field"),
        ("- site: a.example\n- site: www.a.example\n", "two entries"),
        ("- body_css: p\n", "needs a site"),
    ],
)
def test_a_malformed_entry_is_refused_naming_the_problem(tmp_path, entry, complaint):
    path = tmp_path / "overrides.yaml"
    path.write_text(entry, encoding="utf-8")
    with pytest.raises(ValueError, match=complaint):
        load_overrides(path)


def test_without_an_override_the_generic_path_keeps_the_teaser(config_dir):
    document = clean(page(), url="https://other.example/news/1")
    assert SIDEBAR in document.text


@pytest.mark.parametrize("url", ["https://www.harbour-ledger.example/news/1", "https://quay-times.example/a"])
def test_a_body_selector_takes_the_text_of_that_element_only(config_dir, url):
    document = clean(page(), url=url)
    assert document.text.split("\n") == BODY
    assert document.title == "Port review"


def test_a_selector_that_finds_nothing_falls_back_to_the_generic_path(config_dir):
    (config_dir / "overrides.yaml").write_text("- site: harbour-ledger.example\n  body_css: div.gone\n")
    document = clean(page(), url="https://harbour-ledger.example/news/1")
    assert BODY[0] in document.text and SIDEBAR in document.text


def test_a_forced_language_beats_the_page_declaration(config_dir):
    assert clean(page(), url="https://harbour-ledger.example/news/1").language == "ar"
    assert clean(page(), url="https://quay-times.example/a").language == "en"


def test_extra_markers_apply_to_their_site_only(config_dir):
    text = "\n".join([*BODY, DESK])
    ledger = strip(Document(text=text, url="https://harbour-ledger.example/news/1"))
    other = strip(Document(text=text, url="https://quay-times.example/a"))
    assert [(r.line, r.rule) for r in ledger.removed] == [(DESK, "marker:ledger-desk")]
    assert DESK in other.text and other.removed == []


def test_a_forced_charset_decodes_the_body_for_fetch(config_dir):
    body = "<p>وصل الوفد الليبي</p>".encode("windows-1256")
    assert decode_forced(body, "https://harbour-ledger.example/a") == ("<p>وصل الوفد الليبي</p>", "windows-1256")
    assert decode_forced(body, "https://quay-times.example/a") is None


def test_editing_the_file_changes_behaviour_for_a_new_process_config(config_dir, tmp_path_factory, monkeypatch):
    """What a restart does: a fresh read of the (edited) file; here, another config folder."""
    edited = tmp_path_factory.mktemp("edited")
    for name in ("boilerplate.yaml", "dates.yaml"):
        shutil.copy(config_dir / name, edited / name)
    (edited / "overrides.yaml").write_text("- site: other.example\n  body_css: section#copy\n", encoding="utf-8")
    monkeypatch.setenv("MIRSAD_CONFIG_DIR", str(edited))
    get_settings.cache_clear()
    assert clean(page(), url="https://other.example/news/1").text.split("\n") == BODY
    assert SIDEBAR in clean(page(), url="https://harbour-ledger.example/news/1").text
    assert Path(get_settings().config_dir) == edited

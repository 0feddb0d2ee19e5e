"""The watchlist: adding and listing entries keeps the analysts' file intact, and an added entry tags at once."""

from __future__ import annotations

import pytest
import yaml

from workers.core.document import Document
from workers.core.settings import get_settings
from workers.stages.classify import classify, load_vocabulary
from workers.stages.entities import Entity, add_entity, list_entities, read_watchlist

SMALL_WATCHLIST = """\
# The analysts' notes: keep me.
persons:
  Hulusi Akar:
    aliases: [Hulusi Akar, خلوصي أكار]
    short: [Akar, أكار]
  # Libya
  Khalifa Haftar: [Khalifa Haftar, حفتر]

# Bodies
orgs:
  Baykar: [Baykar, بايكار]  # drone maker
"""


@pytest.fixture
def config_dir(tmp_path):
    (tmp_path / "entities.yaml").write_text(SMALL_WATCHLIST, encoding="utf-8")
    return tmp_path


def persons_in(text: str, config_dir) -> set[str]:
    tags = classify(Document(text=text), load_vocabulary(config_dir))
    return {t.value for t in tags if t.kind == "person"}


def test_add_a_person_keeps_the_rest_of_the_file(config_dir):
    path = add_entity(config_dir, "person", "Osama Hammad", ["أسامة حماد", "Usame Hammad"])
    assert path == config_dir / "entities.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.startswith(SMALL_WATCHLIST.split("\n\n# Bodies")[0])
    assert "# The analysts' notes: keep me." in text and "# drone maker" in text and "# Bodies\norgs:" in text
    data = yaml.safe_load(text)
    assert data["persons"]["Osama Hammad"] == ["Osama Hammad", "أسامة حماد", "Usame Hammad"]
    assert list(data["persons"])[-1] == "Osama Hammad" and list(data["orgs"]) == ["Baykar"]


def test_add_an_organisation_with_short_spellings(config_dir):
    add_entity(config_dir, "org", "House of Representatives", ["مجلس النواب الليبي"], short=["مجلس النواب"])
    [added] = [e for e in read_watchlist(config_dir) if e.name == "House of Representatives"]
    assert added == Entity(
        "org", "House of Representatives", ("House of Representatives", "مجلس النواب الليبي"), ("مجلس النواب",)
    )


def test_list_entities_by_kind_and_name(config_dir):
    assert [(e.kind, e.name) for e in list_entities(config_dir)] == [
        ("org", "Baykar"),
        ("person", "Hulusi Akar"),
        ("person", "Khalifa Haftar"),
    ]
    assert [e.name for e in list_entities(config_dir, "org")] == ["Baykar"]
    assert list_entities(config_dir / "nowhere") == []


@pytest.mark.parametrize(
    "kind, name", [("person", "Hulusi Akar"), ("person", "HULUSİ AKAR"), ("org", "hulusi akar"), ("person", "Baykar")]
)
def test_a_name_already_on_the_watchlist_is_refused(config_dir, kind, name):
    before = (config_dir / "entities.yaml").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="already on the watchlist"):
        add_entity(config_dir, kind, name, ["x"])
    assert (config_dir / "entities.yaml").read_text(encoding="utf-8") == before


@pytest.mark.parametrize(
    "kind, name, message",
    [("place", "Sirte", "kind"), ("person", "  ", "needs a name"), ("person", "—", "needs a name")],
)
def test_invalid_entries_are_refused(config_dir, kind, name, message):
    with pytest.raises(ValueError, match=message):
        add_entity(config_dir, kind, name)


def test_names_that_yaml_would_misread_are_quoted(config_dir):
    aliases = ["Mr. X: the envoy", "#hashtag", "[bracketed]", "a, b", 'say "hi"', "yes", "444"]
    add_entity(config_dir, "person", "Envoy: X", aliases)
    [added] = [e for e in read_watchlist(config_dir) if e.name == "Envoy: X"]
    assert added.aliases == ("Envoy: X", *aliases)


def test_a_missing_file_or_section_is_created(tmp_path):
    add_entity(tmp_path, "org", "Roketsan", ["روكيتسان"])
    assert [(e.kind, e.name) for e in read_watchlist(tmp_path)] == [("org", "Roketsan")]
    add_entity(tmp_path, "person", "Haluk Görgün")
    assert yaml.safe_load((tmp_path / "entities.yaml").read_text(encoding="utf-8")) == {
        "orgs": {"Roketsan": ["Roketsan", "روكيتسان"]},
        "persons": {"Haluk Görgün": ["Haluk Görgün"]},
    }


def test_an_empty_section_becomes_a_block(tmp_path):
    (tmp_path / "entities.yaml").write_text("persons: {}\norgs: []\n", encoding="utf-8")
    add_entity(tmp_path, "person", "Najla Mangoush", ["نجلاء المنقوش"])
    add_entity(tmp_path, "org", "Otokar")
    assert [(e.kind, e.name) for e in read_watchlist(tmp_path)] == [("person", "Najla Mangoush"), ("org", "Otokar")]


def test_short_spellings_of_an_added_person_wait_for_the_full_name(config_copy):
    add_entity(config_copy, "person", "Kemal Örnekoğlu", ["كمال أورنك أوغلو"], short=["Örnekoğlu", "أورنك أوغلو"])
    assert persons_in("وقال أورنك أوغلو إن. Örnekoğlu dedi ki", config_copy) == set()
    assert persons_in("استقبل كمال أورنك أوغلو الوفد. وقال أورنك أوغلو إن", config_copy) == {"Kemal Örnekoğlu"}


def test_an_added_person_takes_effect_in_the_running_classifier(config_copy, monkeypatch):
    monkeypatch.setenv("MIRSAD_CONFIG_DIR", str(config_copy))
    get_settings.cache_clear()
    try:
        doc = Document(text="Tarık Yılmazer Trablus'ta Libyalı yetkililerle görüştü; طارق يلمازر التقى المسؤولين.")
        assert not [t for t in classify(doc) if t.kind == "person"]
        add_entity(config_copy, "person", "Tarık Yılmazer", ["طارق يلمازر"])
        [person] = [t for t in classify(doc) if t.kind == "person"]
        assert (person.value, person.evidence) == ("Tarık Yılmazer", ["Tarık Yılmazer", "طارق يلمازر"])
    finally:
        get_settings.cache_clear()

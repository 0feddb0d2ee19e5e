"""Search: the analyzer, the query language, and the index on SQLite and PostgreSQL returning the same items.

The labelled set (bench/search_queries.yaml) is stored through the store step on both databases;
every query must return every item labelled for it, both databases the same items.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, insert, select, text

from tests.labelled_search import bench
from workers.core.document import Document
from workers.core.urls import canonicalize, url_hash
from workers.storage import search
from workers.storage.db import alembic_config, get_engine, session_scope
from workers.storage.items import InvalidFilter, ItemFilter, iter_items, list_items, parse_tag
from workers.storage.models import Item, ItemSearch
from workers.storage.store import store_item
from workers.text.analyzer import analyze, query_forms, strip_clitics
from workers.text.query import Phrase, QueryError, Word, parse


def stems(text: str, language: str) -> set[str]:
    return {token.stem for token in analyze(text, language)}


# -- the analyzer -------------------------------------------------------------------------------------------


def test_arabic_clitic_forms_share_one_stem():
    assert stems("تعاون التعاون وبالتعاون للتعاون فالتعاون بتعاون", "ar") == {"تعاون"}
    assert strip_clitics("وبالتعاون") == "تعاون"
    assert strip_clitics("بحث") == "بحث", "a short word keeps its first letter"


def test_a_shadda_or_tatweel_does_not_split_a_word():
    assert [t.surface for t in analyze("القوّات الـتعاون", "ar")] == ["القوات", "التعاون"]


def test_arabic_letter_forms_fold():
    assert analyze("أنقرة", "ar")[0].surface == analyze("انقره", "ar")[0].surface
    assert analyze("مصطفى", "ar")[0].surface == analyze("مصطفي", "ar")[0].surface


def test_turkish_suffixes_share_one_stem():
    assert stems("anlaşma anlaşması anlaşmasını anlaşmalar", "tr") == {"anlasma"}
    assert stems("işbirliği işbirliğini", "tr") == {"isbirlik"}


def test_turkish_dotted_and_dotless_i_meet():
    forms = {analyze(word, "tr")[0].surface for word in ("İstanbul", "istanbul", "ISTANBUL", "İstanbul'da")}
    assert forms == {"istanbul"}
    assert analyze("Işık", "tr")[0].surface == "isik"  # not isık (SQLite's unicode61)


def test_english_stems():
    assert stems("cooperation cooperating", "en") == {"cooper"}


def test_a_latin_query_word_takes_turkish_and_english_stems_without_a_language():
    [(surface, word_stems)] = query_forms("anlaşmasını")
    assert surface == "anlasmasini" and "anlasma" in word_stems
    assert query_forms("anlaşmasını", "en")[0][1] == ("anlasmasini",)


# -- the query language -------------------------------------------------------------------------------------


def test_parse_words_phrases_or_exclusions_prefixes_and_filters():
    query = parse(
        'turkey "defence cooperation" drone OR İHA -football anlaş* lang:ar country:LY person:"Yaşar Güler" story:42'
    )
    assert [c.alternatives for c in query.clauses] == [
        (Word("turkey"),),
        (Phrase(("defence", "cooperation")),),
        (Word("drone"), Word("İHA")),
        (Word("football"),),
        (Word("anlaş", prefix=True),),
    ]
    assert [c.negated for c in query.clauses] == [False, False, False, True, False]
    assert query.filters == {"lang": ("ar",), "country": ("LY",), "person": ("Yaşar Güler",), "story": ("42",)}


def test_a_hyphenated_word_is_a_phrase_of_its_parts():
    assert parse("al-Dbeiba").clauses[0].alternatives == (Phrase(("al", "Dbeiba")),)


@pytest.mark.parametrize(
    "query, message",
    [
        ('"unclosed', "unclosed quote"),
        ("OR turkey", "OR needs"),
        ("turkey OR", "OR needs"),
        ("-turkey", "only exclusions"),
        ("colour:red", "unknown field 'colour'"),
        ("story:abc", "story: wants an item number"),
        ("*", "prefix needs"),
        ("-lang:ar turkey", "cannot be negated"),
    ],
)
def test_malformed_queries_say_why(query, message):
    with pytest.raises(QueryError, match=message):
        parse(query)


def test_tag_filters_are_checked():
    assert parse_tag("country:ly") == ("country", "LY")
    with pytest.raises(InvalidFilter, match="unknown tag kind 'colour'"):
        parse_tag("colour:red")
    with pytest.raises(InvalidFilter, match="KIND:VALUE"):
        parse_tag("country")


# -- both databases -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def labelled(postgres_url, tmp_path_factory):
    """The labelled items stored through the store step on both databases: {backend: (url, key → id)}."""
    from workers.storage.db import migrate
    from workers.storage.models import Base

    items, queries = bench.load_labelled()
    sqlite_url = f"sqlite:///{tmp_path_factory.mktemp('search')}/search.db"
    migrate(sqlite_url)
    with get_engine(postgres_url).begin() as connection:
        connection.execute(
            text(f"TRUNCATE {', '.join(t.name for t in Base.metadata.sorted_tables)} RESTART IDENTITY CASCADE")
        )
    stored = {
        backend: (url, bench.store_labelled(url, items))
        for backend, url in (("sqlite", sqlite_url), ("postgresql", postgres_url))
    }
    return stored, queries


def test_every_labelled_query_finds_its_items_on_both_databases(labelled):
    stored, queries = labelled
    for backend, (url, ids) in stored.items():
        for result in bench.evaluate(url, queries, ids):
            assert not result["missed"], (backend, result)
            assert not result["extra"], (backend, result)


def test_both_databases_return_the_same_items_in_full(labelled):
    stored, queries = labelled
    answers = {}
    for backend, (url, ids) in stored.items():
        by_id = {item_id: key for key, item_id in ids.items()}
        with session_scope(url) as session:
            answers[backend] = {
                spec["q"]: sorted(
                    by_id[i.id] for i in list_items(session, ItemFilter(query=parse(spec["q"])), limit=500).items
                )
                for spec in queries
            }
    assert answers["sqlite"] == answers["postgresql"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_exact_forms_rank_above_stems(labelled, backend):
    url, ids = labelled[0][backend]
    with session_scope(url) as session:
        found = [i.id for i in list_items(session, ItemFilter(query=parse("anlaşmasını")), limit=10).items]
    assert found[0] == ids["tr3"], "the item with the word as written comes first"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_snippets_mark_the_matched_words_and_escape_the_text(labelled, backend):
    url, ids = labelled[0][backend]
    with session_scope(url) as session:
        page = list_items(session, ItemFilter(query=parse("وبالتعاون")), limit=10, with_snippets=True)
    assert "<mark>للتعاون</mark>" in page.snippets[ids["ar1"]]
    query = parse("cooperation")
    html = search.snippet("<script>alert(1)</script> cooperation & more", query, "en")
    assert html == "&lt;script&gt;alert(1)&lt;/script&gt; <mark>cooperation</mark> &amp; more"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_filters_and_sort_by_date(labelled, backend):
    url, ids = labelled[0][backend]
    key_of = {item_id: key for key, item_id in ids.items()}

    def keys(**filters) -> list[str]:
        with session_scope(url) as session:
            return [key_of[i.id] for i in list_items(session, ItemFilter(**filters), limit=100).items]

    assert set(keys(language="tr", site="aa.com.tr")) == {"tr1", "tr2", "tr3", "tr7"}
    assert set(keys(tags=(("person", "Yaşar Güler"),))) == {"ar2", "tr2", "en2"}
    assert set(keys(tags=(("country", "LY"), ("topic", "defence-cooperation")), language="en")) == {"en1", "en9"}
    newest = keys(since=datetime(2026, 11, 11, tzinfo=UTC))
    assert newest == ["en10", "tr10", "ar10"], "published 05:00Z, 04:00Z, 04:00Z (ids break ties, newest first)"
    assert "en10" not in keys(until=datetime(2026, 11, 11, 5, tzinfo=UTC))
    story = ids["en1"]
    with session_scope(url) as session:
        story_id = session.get(Item, story).story_id
    assert ids["en1"] in [ids[k] for k in keys(story=story_id)]
    assert keys(query=parse(f"story:{story_id} lang:en"))[0] in {"en1", "tr1", "ar1", "en9"}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_cursor_pages_cover_every_item_once(labelled, backend):
    url, ids = labelled[0][backend]
    for query in ("", "Libya OR ليبيا"):
        seen, cursor = [], None
        with session_scope(url) as session:
            while True:
                page = list_items(session, ItemFilter(query=parse(query)), limit=4, cursor=cursor)
                seen += [item.id for item in page.items]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            everything = [i.id for i in list_items(session, ItemFilter(query=parse(query)), limit=500).items]
        assert seen == everything and len(set(seen)) == len(seen)
    with session_scope(url) as session, pytest.raises(InvalidFilter, match="cursor"):
        list_items(session, ItemFilter(), cursor="garbage!")


def test_reindex_and_the_migration_index_items_stored_before(database_url):
    """Items the store step never indexed (stored before migration 0005) are found after it, and after reindex."""
    from alembic import command

    config = alembic_config(database_url)
    command.downgrade(config, "0004")
    with session_scope(database_url) as session:
        session.execute(
            insert(Item),
            [
                {
                    "url_hash": "h1",
                    "url": "https://aa.com.tr/x",
                    "title": "Eski haber",
                    "text": "Libya ile savunma anlaşması",
                    "language": "tr",
                    "keywords": [],
                    "removed": [],
                }
            ],
        )
    command.upgrade(config, "head")
    with session_scope(database_url) as session:
        assert [i.url for i in list_items(session, ItemFilter(query=parse("anlaşmasını"))).items] == [
            "https://aa.com.tr/x"
        ]
        session.execute(delete(ItemSearch))
        if session.bind.dialect.name == "sqlite":
            session.execute(text(f"DELETE FROM {search.FTS_TABLE}"))
    with session_scope(database_url) as session:
        assert list_items(session, ItemFilter(query=parse("anlaşma"))).items == []
        assert search.reindex(session) == 1
    with session_scope(database_url) as session:
        assert len(list_items(session, ItemFilter(query=parse("anlaşma"))).items) == 1


def test_the_store_step_indexes_in_its_transaction(database_url):
    url = "https://aa.com.tr/haber/1"
    document = Document(
        text="Türkiye ile Libya arasında yeni bir anlaşma imzalandı.", title="Anlaşma", language="tr", url=url
    )
    with pytest.raises(RuntimeError), session_scope(database_url) as session:
        store_item(session, url_hash(canonicalize(url)), url, document)
        raise RuntimeError("the store transaction fails after the insert")
    with session_scope(database_url) as session:
        assert session.scalar(select(ItemSearch.item_id)) is None, "nothing indexed for an item not stored"
        store_item(session, url_hash(canonicalize(url)), url, document)
    with session_scope(database_url) as session:
        assert len(list_items(session, ItemFilter(query=parse("anlaşması"))).items) == 1
        assert [i.url for i in iter_items(ItemFilter(query=parse("Libya")), database_url)] == [url]

"""Story grouping on our own labelled articles (tests/fixtures/stories/articles.yaml, see its header)."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import delete

from tests.labelled_stories import load_fixture
from workers.core.document import Document
from workers.core.urls import url_hash
from workers.stages.classify import classify
from workers.stages.stories import Candidate, Signature, StoryRules, assign_stories, match
from workers.storage.db import session_scope
from workers.storage.models import Item
from workers.storage.store import StoredItem, item_key, store_item


@pytest.fixture(scope="module")
def signatures() -> dict[str, Signature]:
    return {item.id: item.sign() for item in load_fixture()}


@pytest.fixture(scope="module")
def stories(signatures):
    return assign_stories(signatures.items())


def story_of(stories, item_id):
    return stories[item_id].story_id


@pytest.mark.parametrize(
    "first, second",
    [
        ("naval-ar-anadolu", "naval-ar-wasat"),  # two Arabic outlets, own wording
        ("saddam-ar-a", "saddam-ar-b"),
        ("hangar-tr-aa", "hangar-tr-savunma"),  # two Turkish outlets
        ("offshore-en-a", "offshore-en-b"),  # two English outlets
        ("naval-ar-anadolu", "naval-en-herald"),  # across languages, on the entities alone
    ],
)
def test_reports_of_one_event_share_a_story(stories, first, second):
    assert story_of(stories, first) == story_of(stories, second)


@pytest.mark.parametrize(
    "item_id, other_event",
    [
        ("dbeibah-guler-istanbul", "naval-ar-anadolu"),  # the same two men, four days later, another subject
        ("coast-guard-protocol", "naval-en-herald"),  # the same kind of training deal, other people
        ("coast-guard-protocol", "saddam-tr"),  # Gürak in Ankara again, another meeting
        ("offshore-en-a", "naval-en-herald"),  # Istanbul, Turkey and Libya, another event
    ],
)
def test_different_events_stay_apart(stories, item_id, other_event):
    assert story_of(stories, item_id) != story_of(stories, other_event)


def test_every_event_is_one_story_and_no_story_mixes_events(stories):
    events = {item.id: item.event for item in load_fixture()}
    story_events: dict[object, set[str]] = {}
    for item_id, found in stories.items():
        story_events.setdefault(found.story_id, set()).add(events[item_id])
    assert all(len(found) == 1 for found in story_events.values())
    assert len(story_events) == len(set(events.values()))


def test_a_wire_copy_is_a_copy_of_the_first_item(stories):
    copy = stories["naval-ar-copy"]
    assert copy.copy_of == "naval-ar-anadolu"
    assert copy.story_id == story_of(stories, "naval-ar-anadolu")
    assert any("copy of item naval-ar-anadolu" in reason for reason in copy.reasons)
    assert [item_id for item_id, found in stories.items() if found.copy_of] == ["naval-ar-copy"]


def test_the_original_is_not_a_copy_of_its_later_copy(signatures):
    """Met out of order, the original still joins the story but does not become a copy of its copy."""
    found = match(signatures["naval-ar-anadolu"], [Candidate("copy", "story-1", signatures["naval-ar-copy"])])
    assert found.story_id == "story-1"
    assert found.copy_of is None


def test_the_time_window_excludes_old_candidates(signatures):
    """The same kind of signing by the same men in 2023: close enough to match, but outside the window."""
    old = [Candidate("2023", "story-2023", signatures["training-deal-2023"])]
    assert match(signatures["naval-ar-anadolu"], old).story_id is None
    wide = StoryRules(window=timedelta(days=1000))
    assert match(signatures["naval-ar-anadolu"], old, wide).story_id == "story-2023"


def test_no_candidate_means_a_new_story(signatures):
    found = match(signatures["hangar-tr-aa"], [])
    assert (found.story_id, found.copy_of) == (None, None)


def test_signatures_round_trip_through_json(signatures):
    for sig in signatures.values():
        assert Signature.from_dict(json.loads(json.dumps(sig.to_dict()))) == sig
    stored = {
        item_id: Signature.from_dict(json.loads(json.dumps(sig.to_dict()))) for item_id, sig in signatures.items()
    }
    assert {k: (v.story_id, v.copy_of) for k, v in assign_stories(stored.items()).items()} == {
        k: (v.story_id, v.copy_of) for k, v in assign_stories(signatures.items()).items()
    }


def test_a_signature_of_another_version_is_refused(signatures):
    data = signatures["hangar-tr-aa"].to_dict() | {"v": 0}
    with pytest.raises(ValueError, match="version"):
        Signature.from_dict(data)


def test_two_reports_stored_at_the_same_moment_end_in_one_story(database_url):
    """Two workers store two outlets' reports of one event at once: assignment is serialised, one story."""
    reports = {item.id: item for item in load_fixture()}
    documents = [
        reports[name].document.replace(tags=classify(reports[name].document), fetched_at=None)
        for name in ("naval-ar-anadolu", "naval-ar-wasat")
    ]
    both_ready = threading.Barrier(len(documents))

    def store_report(index: int) -> StoredItem:
        both_ready.wait()
        with session_scope(database_url) as session:
            return store_item(session, str(index) * 64, f"https://outlet{index}.example/news/1", documents[index])

    for _ in range(3):  # a fresh pair each round: the race must be lost by neither
        with ThreadPoolExecutor(len(documents)) as pool:
            first, second = pool.map(store_report, range(len(documents)))
        assert first.story_id == second.story_id
        assert {first.story_id} <= {first.item_id, second.item_id}
        with session_scope(database_url) as session:
            session.execute(delete(Item))


def test_an_item_is_keyed_on_its_canonical_link_only_within_its_own_site():
    page = Document(
        text="x", url="https://m.example.com/news/1?utm_source=x", canonical_url="https://www.example.com/news/1/"
    )
    assert item_key("h" * 64, page.url, page) == url_hash("https://example.com/news/1")
    syndicated = page.replace(canonical_url="https://agency.example.org/story/9")
    assert item_key("h" * 64, page.url, syndicated) == "h" * 64
    assert item_key("h" * 64, page.url, page.replace(canonical_url=None)) == "h" * 64
    assert item_key("h" * 64, page.url, page.replace(canonical_url="javascript:void(0)")) == "h" * 64

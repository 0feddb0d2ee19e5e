"""Story grouping on our own labelled articles (tests/fixtures/stories/articles.yaml, see its header)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bench.stories import load_fixture
from workers.stories import Candidate, Signature, StoryRules, assign_stories, match


@pytest.fixture(scope="module")
def signatures() -> dict[str, Signature]:
    return {item.id: item.sign() for item in load_fixture()}


@pytest.fixture(scope="module")
def stories(signatures):
    return assign_stories(signatures.items())


def story_of(stories, item_id):
    return stories[item_id].story_id


@pytest.mark.parametrize("first, second", [
    ("naval-ar-anadolu", "naval-ar-wasat"),      # two Arabic outlets, own wording
    ("saddam-ar-a", "saddam-ar-b"),
    ("hangar-tr-aa", "hangar-tr-savunma"),       # two Turkish outlets
    ("offshore-en-a", "offshore-en-b"),          # two English outlets
    ("naval-ar-anadolu", "naval-en-herald"),     # across languages, on the entities alone
])
def test_reports_of_one_event_share_a_story(stories, first, second):
    assert story_of(stories, first) == story_of(stories, second)


@pytest.mark.parametrize("item_id, other_event", [
    ("dbeibah-guler-istanbul", "naval-ar-anadolu"),   # the same two men, four days later, another subject
    ("coast-guard-protocol", "naval-en-herald"),      # the same kind of training deal, other people
    ("coast-guard-protocol", "saddam-tr"),            # Gürak in Ankara again, another meeting
    ("offshore-en-a", "naval-en-herald"),             # Istanbul, Turkey and Libya, another event
])
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
    stored = {item_id: Signature.from_dict(json.loads(json.dumps(sig.to_dict())))
              for item_id, sig in signatures.items()}
    assert ({k: (v.story_id, v.copy_of) for k, v in assign_stories(stored.items()).items()}
            == {k: (v.story_id, v.copy_of) for k, v in assign_stories(signatures.items()).items()})


def test_a_signature_of_another_version_is_refused(signatures):
    data = signatures["hangar-tr-aa"].to_dict() | {"v": 0}
    with pytest.raises(ValueError, match="version"):
        Signature.from_dict(data)

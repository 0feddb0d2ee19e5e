#!/usr/bin/env python3
"""Story grouping on labelled sets: pairwise precision and recall, the seed check, and speed.

    python bench/stories.py [--seeds ../shared/seeds] [--fixture tests/fixtures/stories/articles.yaml]

1. The seeds (read where they are, never copied): each seed's body is rebuilt from gold.json's ``body``
   lines (and ``title`` line), classified, signed, and taken in order as the pipeline would. 001 and 004
   (the March 2024 Dbeibah–Güler memorandum, two outlets) must share a story and every other pair must
   not (gold.json ``same_story``); the exit status is 1 when that fails.
2. Our own labelled set (tests/fixtures/stories): pairwise precision/recall of "same story", overall and
   for pairs in the same language (cross-language grouping is a bonus), and the wire copies found.
3. Speed: signing an item; building a StoryIndex of 1,000 candidates, and matching one item against it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.labelled_stories import FIXTURE, LabelledItem, load_fixture  # noqa: E402
from workers.core.document import Document  # noqa: E402
from workers.stages.stories import (  # noqa: E402
    Candidate,
    Rarity,
    Signature,
    StoryIndex,
    assign_stories,
    compare,
    signature,  # noqa: E402
)

SEEDS = ROOT.parent / "shared" / "seeds"


def load_seeds(folder: Path) -> list[LabelledItem]:
    """The seeds as items: body and title from gold.json's line numbers; events from ``same_story``."""
    gold = json.loads((folder / "gold.json").read_text(encoding="utf-8"))
    event_of = {name: name for name in gold["docs"]}
    for group in gold["same_story"]:
        for name in group:
            event_of[name] = group[0]
    items = []
    for name, labels in gold["docs"].items():
        lines = (folder / name).read_text(encoding="utf-8").splitlines()
        title = lines[labels["title"] - 1] if labels.get("title") else None
        body = "\n".join(lines[number - 1] for number in labels["body"])
        items.append(
            LabelledItem(name, Document(text=body, title=title, site_name=labels.get("outlet")), event_of[name])
        )
    return items


@dataclass(frozen=True)
class Evaluation:
    true_positives: int
    predicted: int
    gold: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.gold if self.gold else 1.0

    def __str__(self) -> str:
        return (
            f"precision {self.precision:.2f} ({self.true_positives}/{self.predicted})  "
            f"recall {self.recall:.2f} ({self.true_positives}/{self.gold})"
        )


def pairwise(items: list[LabelledItem], story_of: dict[str, object], keep=lambda a, b: True) -> Evaluation:
    """Pairwise precision/recall of "same story" against "same event", over the pairs ``keep`` accepts."""
    pairs = [(a, b) for a, b in itertools.combinations(items, 2) if keep(a, b)]
    predicted = {(a.id, b.id) for a, b in pairs if story_of[a.id] == story_of[b.id]}
    gold = {(a.id, b.id) for a, b in pairs if a.event == b.event}
    return Evaluation(len(predicted & gold), len(predicted), len(gold))


def run_set(name: str, items: list[LabelledItem]) -> tuple[dict[str, Signature], dict]:
    signatures = {item.id: item.sign() for item in items}
    matches = assign_stories(signatures.items())
    story_of = {item_id: found.story_id for item_id, found in matches.items()}
    print(f"\n== {name}: {len(items)} items, {len(set(story_of.values()))} stories")
    print(f"pairwise, all pairs:            {pairwise(items, story_of)}")
    return signatures, matches


def print_pairs(items: list[LabelledItem], signatures: dict[str, Signature], story_of: dict[str, object]) -> None:
    rarity = Rarity.of(signatures.values())
    print(f"{'pair':<12} gold predicted  event entities terms title text")
    for a, b in itertools.combinations(items, 2):
        pair = compare(signatures[a.id], signatures[b.id], rarity)
        print(
            f"{a.id[:3]}–{b.id[:3]}      {_yes(a.event == b.event):<4} {_yes(story_of[a.id] == story_of[b.id]):<9} "
            f"{pair.event:5.2f} {pair.entities:8.2f} {pair.terms:5.2f} {pair.title:5.2f} {pair.containment:4.2f}"
        )


def check_seeds(folder: Path) -> bool:
    items = load_seeds(folder)
    signatures, matches = run_set(f"seeds ({folder})", items)
    story_of = {item_id: found.story_id for item_id, found in matches.items()}
    print_pairs(items, signatures, story_of)
    wrong = [
        (a.id, b.id)
        for a, b in itertools.combinations(items, 2)
        if (a.event == b.event) != (story_of[a.id] == story_of[b.id])
    ]
    verdict = "PASS" if not wrong else f"FAIL: {wrong}"
    print(f"seed check (001+004 one story, every other pair apart): {verdict}")
    return not wrong


def check_fixture(path: Path) -> list[Signature]:
    items = load_fixture(path)
    signatures, matches = run_set(f"own labelled set ({path.relative_to(ROOT)})", items)
    story_of = {item_id: found.story_id for item_id, found in matches.items()}
    same_language = pairwise(items, story_of, keep=lambda a, b: signatures[a.id].language == signatures[b.id].language)
    cross_language = pairwise(items, story_of, keep=lambda a, b: signatures[a.id].language != signatures[b.id].language)
    print(f"pairwise, same-language pairs:  {same_language}")
    print(f"pairwise, cross-language pairs: {cross_language}")
    gold_copies = {(item.id, item.copy_of) for item in items if item.copy_of}
    found_copies = {(item_id, found.copy_of) for item_id, found in matches.items() if found.copy_of}
    print(
        f"wire copies: {len(found_copies & gold_copies)}/{len(gold_copies)} found, "
        f"{len(found_copies - gold_copies)} wrong"
    )
    for item in items:
        found = matches[item.id]
        print(f"  {item.id:<24} story {found.story_id!s:<24} copy_of {found.copy_of!s:<18} score {found.score:.2f}")
    return list(signatures.values())


def time_matching(signatures: list[Signature], candidates: int = 1000, rounds: int = 50) -> None:
    """Median time of one match against ``candidates`` signatures, all inside the window.

    Worst case: the candidates cycle through the labelled items, so most name one of the new item's
    people or places and get fully compared. Typical case: only one in ten does (the others' entities
    are renamed), as in a week of regional news where most items are about someone else.
    """
    start = datetime.fromisoformat("2025-02-10T00:00:00+00:00")
    new = Signature.from_dict({**signatures[0].to_dict(), "published_at": (start + timedelta(days=1)).isoformat()})
    for case, related_every in (("worst case", 1), ("1 in 10 related", 10)):
        pool = [
            Candidate(
                index,
                index,
                _moved(sig, start + timedelta(minutes=index), rename=f"#{index}" if index % related_every else ""),
            )
            for index, sig in zip(range(candidates), itertools.cycle(signatures))
        ]
        began = time.perf_counter()
        index = StoryIndex(pool)
        index.match(new)
        built = time.perf_counter() - began
        durations = []
        for _ in range(rounds):
            began = time.perf_counter()
            index.match(new)
            durations.append(time.perf_counter() - began)
        print(
            f"{case}: StoryIndex of {candidates} candidates built in {built * 1e3:.0f} ms; then one match: "
            f"median {statistics.median(durations) * 1e3:.1f} ms, max {max(durations) * 1e3:.1f} ms"
        )
    document = Document(text="\n".join(["وقع وزير الدفاع مذكرة تفاهم للتعاون العسكري في طرابلس"] * 40), title="عنوان")
    began = time.perf_counter()
    for _ in range(rounds):
        signature(document, [])
    print(f"signature of a 400-word item: {(time.perf_counter() - began) / rounds * 1e3:.2f} ms")


def _moved(sig: Signature, published_at: datetime, rename: str) -> Signature:
    data = sig.to_dict()
    data["published_at"] = published_at.isoformat()
    data["entities"] = {key + rename: weight for key, weight in sig.entities.items()}
    return Signature.from_dict(data)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=Path, default=SEEDS, help="folder of the seeds and gold.json")
    parser.add_argument("--fixture", type=Path, default=FIXTURE, help="labelled articles (YAML)")
    parser.add_argument("--candidates", type=int, default=1000, help="candidates in the speed test")
    args = parser.parse_args()
    seeds_ok = check_seeds(args.seeds.resolve())
    signatures = check_fixture(args.fixture.resolve())
    print("\n== speed")
    time_matching(signatures, args.candidates)
    return 0 if seeds_ok else 1


if __name__ == "__main__":
    sys.exit(main())

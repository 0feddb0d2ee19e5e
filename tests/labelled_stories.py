"""Our own labelled articles for story grouping (tests/fixtures/stories/articles.yaml, see its header).

Shared by tests/test_stories.py, tests/test_aliases.py and bench/stories.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from workers.core.document import Document
from workers.stages.classify import classify
from workers.stages.stories import Signature, signature

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "stories" / "articles.yaml"


@dataclass(frozen=True)
class LabelledItem:
    """An article with its gold labels: the event it reports and the item it copies (if any)."""

    id: str
    document: Document
    event: str
    copy_of: str | None = None

    def sign(self) -> Signature:
        return signature(self.document, classify(self.document))


def load_fixture(path: Path = FIXTURE) -> list[LabelledItem]:
    """The labelled articles of tests/fixtures/stories (see the file's header)."""
    articles = yaml.safe_load(path.read_text(encoding="utf-8"))["articles"]
    return [
        LabelledItem(
            a["id"],
            Document(text=a["text"], title=a["title"], published_at=a["published_at"], site_name=a["outlet"]),
            a["event"],
            a.get("copy_of"),
        )
        for a in articles
    ]

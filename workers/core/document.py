"""The plain data that flows between stages: a Document, its tags and the lines strip removed.

Stages take and return these; ``to_dict``/``from_dict`` give the JSON form that is
stored between stages and printed by the CLI, with the field names of the README.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Tag:
    """One tag: ``kind`` (language, country, topic…), ``value``, a score in [0, 1] and the words that fired it."""

    kind: str
    value: str
    score: float
    evidence: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "value": self.value, "score": round(self.score, 4), "evidence": list(self.evidence)}


@dataclass(frozen=True)
class RemovedLine:
    """A line strip removed, with the rule that removed it, so a user can see why it went."""

    line: str
    rule: str

    def to_dict(self) -> dict:
        return {"line": self.line, "rule": self.rule}


@dataclass(frozen=True)
class Document:
    """An article as the stages see it. ``text`` is the body only: the headline lives in ``title``."""

    text: str
    title: str | None = None
    author: str | None = None
    published_at: str | None = None
    site_name: str | None = None
    canonical_url: str | None = None
    language: str | None = None
    url: str | None = None
    fetched_at: str | None = None
    credit: str | None = None
    keywords: list[str] = field(default_factory=list)
    removed: list[RemovedLine] = field(default_factory=list)
    tags: list[Tag] = field(default_factory=list)

    def replace(self, **changes) -> Document:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["removed"] = [r.to_dict() for r in self.removed]
        data["tags"] = [t.to_dict() for t in self.tags]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Document:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["removed"] = [RemovedLine(**r) for r in data.get("removed") or []]
        values["tags"] = [Tag(**t) for t in data.get("tags") or []]
        return cls(**values)

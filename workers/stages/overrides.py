"""Per-source overrides from ``config/overrides.yaml``: what a user knows about one site.

For a site whose layout defeats the generic path, an entry may name the element that holds the
article body (a CSS or an XPath selector, used by clean), extra markers (boilerplate.yaml rules,
used by strip on that site only), a charset that beats the page's labels (fetch) and a language
that beats detection. The file is read once per process, so an edit takes effect on the next
worker start; a site without an entry takes the generic path.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

import yaml
from lxml import etree
from lxml.cssselect import CSSSelector
from lxml.html import HtmlElement

from workers.core import config_files
from workers.core.settings import get_settings
from workers.core.urls import site_of

FIELDS = ("site", "body_css", "body_xpath", "markers", "charset", "language")


@dataclass(frozen=True)
class SourceOverride:
    """One site's entry; ``markers`` are raw boilerplate.yaml rules, compiled by strip."""

    site: str
    body_css: str | None = None
    body_xpath: str | None = None
    markers: tuple[dict, ...] = ()
    charset: str | None = None
    language: str | None = None

    def body_elements(self, tree: HtmlElement) -> list[HtmlElement]:
        """The elements the selector picks in ``tree`` (none when the entry has no selector)."""
        if self.body_css:
            return CSSSelector(self.body_css)(tree)
        if self.body_xpath:
            return [found for found in tree.xpath(self.body_xpath) if isinstance(found, etree._Element)]
        return []


def load_overrides(path: Path) -> dict[str, SourceOverride]:
    """site → override from a overrides.yaml; a missing file means no overrides. A malformed entry
    fails here, naming the site, rather than on the first page of that site."""
    path = Path(path)
    if not path.exists():
        return {}
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(entries, list):
        raise ValueError(f"{path}: must be a list of entries, one per site")
    overrides = {}
    for raw in entries:
        override = _parse_entry(raw, path)
        if override.site in overrides:
            raise ValueError(f"{path}: site {override.site!r} has two entries")
        overrides[override.site] = override
    return overrides


def _parse_entry(raw: dict, path: Path) -> SourceOverride:
    if not isinstance(raw, dict) or not raw.get("site"):
        raise ValueError(f"{path}: every entry needs a site (a host such as example.com)")
    site = site_of(f"//{str(raw['site']).strip()}")
    where = f"{path}: site {site!r}"
    unknown = set(raw) - set(FIELDS)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(FIELDS)}")
    if raw.get("body_css") and raw.get("body_xpath"):
        raise ValueError(f"{where}: give body_css or body_xpath, not both")
    try:
        if raw.get("body_css"):
            CSSSelector(raw["body_css"])
        if raw.get("body_xpath"):
            etree.XPath(raw["body_xpath"])
    except Exception as exc:  # cssselect and lxml raise several kinds; all mean a bad selector
        raise ValueError(f"{where}: bad selector: {exc}") from exc
    if raw.get("charset") and not _is_text_codec(str(raw["charset"])):
        raise ValueError(f"{where}: unknown charset {raw['charset']!r}")
    markers = raw.get("markers") or []
    if not isinstance(markers, list):
        raise ValueError(f"{where}: markers must be a list of rules, as in boilerplate.yaml")
    return SourceOverride(
        site=site,
        body_css=raw.get("body_css"),
        body_xpath=raw.get("body_xpath"),
        markers=tuple(markers),
        charset=raw.get("charset"),
        language=str(raw["language"]).lower() if raw.get("language") else None,
    )


def _is_text_codec(name: str) -> bool:
    try:
        return codecs.lookup(name)._is_text_encoding
    except LookupError:
        return False


def sources_path() -> Path:
    return get_settings().config_dir / "overrides.yaml"


def _overrides_at(path: Path) -> dict[str, SourceOverride]:
    return config_files.current(("overrides", path), [path], lambda: load_overrides(path))


def override_for(url: str | None) -> SourceOverride | None:
    """The override of the site ``url`` belongs to, or None (the generic path)."""
    if not url:
        return None
    return _overrides_at(sources_path()).get(site_of(url))


def decode_forced(body: bytes, url: str) -> tuple[str, str] | None:
    """(text, charset) when the site's entry forces a charset; None lets fetch reconcile the labels."""
    override = override_for(url)
    if override is None or not override.charset:
        return None
    return body.decode(override.charset, "replace").removeprefix("\ufeff"), override.charset

"""The clean stage: an HTML page becomes a Document (main text plus metadata) with trafilatura.

``text`` keeps one paragraph per line and never starts with the headline: the
headline is ``title``. Comments are left out (they are not the article). The
page's declared language (``<html lang>``) is kept as a hint; classify decides.
"""

from __future__ import annotations

import re

import trafilatura

from .document import Document
from .errors import EmptyExtraction
from .settings import get_settings

_HTML_LANG = re.compile(rb"<html\b[^>]*?\blang\s*=\s*[\"']?([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]+)?", re.IGNORECASE)


def clean(html: str, url: str | None = None, fetched_at: str | None = None) -> Document:
    """Extract the article from ``html``; raises EmptyExtraction when there is no article text."""
    extracted = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False,
                                            include_tables=True, deduplicate=False)
    text = (extracted.text or "").strip() if extracted is not None else ""
    if len(text) < get_settings().min_text_chars:
        raise EmptyExtraction(f"no article text found in the page ({len(text)} characters extracted)")
    title = _clean_field(extracted.title)
    return Document(
        text=_without_headline(text, title),
        title=title,
        author=_clean_field(extracted.author),
        published_at=_clean_field(extracted.date),
        site_name=_clean_field(extracted.sitename),
        canonical_url=_clean_field(extracted.url),
        language=_clean_field(extracted.language) or _declared_language(html),
        url=url,
        fetched_at=fetched_at,
        keywords=_split_keywords(extracted.tags),
    )


def _without_headline(text: str, title: str | None) -> str:
    """trafilatura repeats the <h1> as the first line; the body should not start with the headline."""
    if not title:
        return text
    first, _, rest = text.partition("\n")
    if first.strip() == title.strip():
        rest = rest.strip()
        return rest or text
    return text


def _split_keywords(tags: list[str] | None) -> list[str]:
    """<meta name=keywords> arrives as one comma-joined string; Arabic pages use the Arabic comma."""
    return [k.strip() for tag in tags or [] for k in re.split(r"[,،;]", tag) if k.strip()]


def _clean_field(value) -> str | None:
    value = (value or "").strip() if isinstance(value, str) else value
    return value or None


def _declared_language(html: str) -> str | None:
    match = _HTML_LANG.search(html[:4096].encode("utf-8", "ignore"))
    return match.group(1).decode().lower() if match else None

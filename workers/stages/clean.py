"""The clean stage: an HTML page becomes a Document (main text plus metadata) with trafilatura.

``text`` keeps one paragraph per line and never starts with the headline: the
headline is ``title``. Comments are left out (they are not the article). The
page's declared language (``<html lang>``) is kept as a hint; classify decides.

Metadata is checked against the page, since extractors pass on what sites put in their heads:
a site name is never a URL (``twitter:site`` holds one on some sites: ``og:site_name`` or the
host instead); a title loses a trailing "| Site" or "- Section" part when that part is the site's
name or host, or when the page's own headline (``<h1>``, ``og:title``) is the title without it;
and a title that ends with a colon ("Share this:") is a widget's heading, not the headline.

A site with an entry in ``config/overrides.yaml`` may name the element holding the body: the text
then comes from that element alone (metadata still from the whole page), and from the generic
path when the selector finds nothing (the site changed its layout). Its forced language wins.
"""

from __future__ import annotations

import re

import lxml.html
import trafilatura
from lxml import etree
from trafilatura.metadata import extract_metadata
from trafilatura.settings import Document as Extracted

from workers.core.document import Document
from workers.core.errors import EmptyExtraction
from workers.core.settings import get_settings
from workers.core.urls import site_of
from workers.stages.overrides import SourceOverride, override_for
from workers.text.textnorm import fold_words

_HTML_ROOT = re.compile(r"<html[\s>]", re.IGNORECASE)
_HTML_LANG = re.compile(rb"<html\b[^>]*?\blang\s*=\s*[\"']?([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]+)?", re.IGNORECASE)
HEADLINE_MIN_WORDS = 3  # what is left of a title once a site part is cut must still read as a headline
# Between a headline and the site or section name a title carries: "… | NTV Haber", "… - Güncel haberler".
_TITLE_SEPARATOR = re.compile(r"\s+(?:\||-|–|—|·|•|::|»)\s+")
# "https://twitter.com/x", "www.x.com", "twitter.com/x"; not "Remember 80/90 - Memorabilia".
_URL_LIKE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|www\.|[^\s/]+\.[^\s/]+/\S*$)", re.IGNORECASE)


def clean(html: str, url: str | None = None, fetched_at: str | None = None) -> Document:
    """Extract the article from ``html``; raises EmptyExtraction when there is no article text."""
    override = override_for(url)
    html = _with_html_root(html)
    selected = _selected_body(html, override) if override else None
    if selected is None:
        # fast: no justext/readability fallback. On ../shared/bench/zyte_aeb (bench/extraction.py) clean+strip
        # scored F1 0.969 with it against 0.964 without, at 29 ms a page instead of 33.
        extracted = trafilatura.bare_extraction(
            html, url=url, with_metadata=True, include_comments=False, include_tables=True, deduplicate=False, fast=True
        )
        if not isinstance(extracted, Extracted):  # None: nothing found (a dict comes only with as_dict=True)
            extracted = Extracted()
        text = (extracted.text or "").strip()
    else:
        extracted, text = extract_metadata(html, default_url=url), selected
    if len(text) < get_settings().min_text_chars:
        raise EmptyExtraction(f"no article text found in the page ({len(text)} characters extracted)")
    page = _PageHead(html)
    site_name = _site_name(_clean_field(extracted.sitename), page, extracted.url or url)
    title = _title(_clean_field(extracted.title), page, site_name, extracted.url or url)
    return Document(
        text=_without_headline(text, title),
        title=title,
        author=_clean_field(extracted.author),
        published_at=_clean_field(extracted.date),
        site_name=site_name,
        canonical_url=_clean_field(extracted.url),
        language=(override and override.language) or _clean_field(extracted.language) or _declared_language(html),
        url=url,
        fetched_at=fetched_at,
        keywords=_split_keywords(extracted.tags),
    )


def _with_html_root(html: str) -> str:
    """A fragment (an SVG or a player served as text/html) gets an <html> root.

    Without one, lxml makes the fragment's own element the root, and htmldate's cleaner, which
    removes such elements, fails on a root that has no parent.
    """
    return html if _HTML_ROOT.search(html, 0, 4096) else f"<html><body>{html}</body></html>"


def _selected_body(html: str, override: SourceOverride) -> str | None:
    """The text of the elements the site's selector picks, or None when it picks none (or has none).

    Only those elements are handed to trafilatura, favouring recall: the user said this is the body.
    """
    try:
        elements = override.body_elements(lxml.html.fromstring(html))
    except (etree.ParserError, ValueError):
        return None
    if not elements:
        return None
    body = "".join(etree.tostring(element, encoding="unicode", method="html") for element in elements)
    text = trafilatura.extract(
        f"<html><body>{body}</body></html>",
        favor_recall=True,
        include_comments=False,
        include_tables=True,
        deduplicate=False,
    )
    return text.strip() if text else None


class _PageHead:
    """The page's own headlines and names, read on demand (most pages need none of them)."""

    def __init__(self, html: str):
        self._html = html
        self._tree = None

    @property
    def tree(self):
        if self._tree is None:
            try:
                self._tree = lxml.html.fromstring(self._html)
            except (etree.ParserError, ValueError):
                self._tree = lxml.html.fromstring("<html></html>")
        return self._tree

    def meta(self, *names: str) -> list[str]:
        """The contents of the ``<meta>`` elements with one of ``names`` as property or name."""
        found = []
        for element in self.tree.iter("meta"):
            key = (element.get("property") or element.get("name") or "").lower()
            if key in names and (content := (element.get("content") or "").strip()):
                found.append(content)
        return found

    def headlines(self) -> list[str]:
        """What the page itself shows as its headline: the ``<h1>`` texts, then og/twitter titles."""
        texts = [" ".join(h1.text_content().split()) for h1 in self.tree.iter("h1")]
        return [text for text in texts if text] + self.meta("og:title", "twitter:title")


def _site_name(name: str | None, page: _PageHead, url: str | None) -> str | None:
    """``name``, unless it is a URL or an @handle's address: then ``og:site_name``, then the host."""
    if name and not _URL_LIKE.search(name):
        return name
    for candidate in page.meta("og:site_name"):
        if not _URL_LIKE.search(candidate):
            return candidate
    return (site_of(url) if url else "") or None


def _title(title: str | None, page: _PageHead, site_name: str | None, url: str | None) -> str | None:
    """The headline: without a trailing site or section part, and never a widget's "Share this:" heading."""
    if title and title.endswith((":", "：")):
        title = next((h for h in page.headlines() if not h.endswith((":", "："))), None)
        if title is None:
            title = page.tree.findtext(".//title")
            title = " ".join(title.split()) if title else None
    while title and (separators := list(_TITLE_SEPARATOR.finditer(title))):
        head, part = title[: separators[-1].start()].strip(), title[separators[-1].end() :].strip()
        if not head or not _is_site_part(part, head, page, site_name, url):
            break
        title = head
    return title or None


def _is_site_part(part: str, head: str, page: _PageHead, site_name: str | None, url: str | None) -> bool:
    """Whether ``part``, after the last separator of a title, names the site or a section rather than the story."""
    if fold_words(head) in {fold_words(headline) for headline in page.headlines()}:
        return True
    if len(head.split()) < HEADLINE_MIN_WORDS:
        return False  # "Libya - Türkiye" is a headline of its own, whatever the site is called
    folded = fold_words(part).replace(" ", "")
    site = fold_words(site_name or "").replace(" ", "")
    if site and folded.startswith(site):
        return True  # "NTV Haber" on the site named NTV
    # "NTV Haber" on ntv.com.tr, "Son dakika haberler" on haberler.com
    label = fold_words((site_of(url) if url else "").split(".")[0]).replace(" ", "")
    return len(label) >= 2 and (folded.startswith(label) or (len(label) >= 4 and label in folded))


def _without_headline(text: str, title: str | None) -> str:
    """trafilatura repeats the <h1> as the first line; the body should not start with the headline."""
    if not title:
        return text
    first, _, rest = text.partition("\n")
    if fold_words(first) == fold_words(title):
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

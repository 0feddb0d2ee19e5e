"""URL validation, canonical form and identity.

A URL is identified by the SHA-256 of its canonical form, so the same article
pushed twice (or with tracking parameters, a fragment, upper-case host or a
default port) is one row and one item. courlan does the normalising: it knows
the tracking parameters and host rules better than a hand-written list would.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit, urlunsplit

import courlan

from .errors import InvalidURL

ALLOWED_SCHEMES = ("http", "https")
MAX_URL_LENGTH = 4096


def canonicalize(url: str) -> str:
    """The canonical form of ``url``; raises InvalidURL with the reason when it is not a usable web address."""
    candidate = (url or "").strip()
    if not candidate:
        raise InvalidURL("empty URL")
    if len(candidate) > MAX_URL_LENGTH:
        raise InvalidURL(f"URL longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in candidate):
        raise InvalidURL("URL contains spaces or control characters")
    try:
        parts = urlsplit(candidate)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"malformed URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = f"scheme {scheme!r}" if scheme else "no scheme"
        raise InvalidURL(f"{shown}: only http and https are fetched")
    if not parts.hostname:
        raise InvalidURL("URL has no host")
    if port == 0:
        raise InvalidURL("port 0 is not a valid port")
    try:
        normalized = courlan.normalize_url(candidate)
    except (ValueError, UnicodeError) as exc:
        raise InvalidURL(f"malformed URL: {exc}") from None
    parts = urlsplit(normalized)
    netloc = parts.netloc
    if (scheme, parts.port) in (("http", 80), ("https", 443)):
        netloc = netloc.rsplit(":", 1)[0]
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def url_hash(canonical_url: str) -> str:
    """Stable identity of a canonical URL (hex SHA-256), the key of idempotent storage."""
    return hashlib.sha256(canonical_url.encode("utf-8")).hexdigest()


def site_of(url: str) -> str:
    """The host a URL belongs to, without a leading www., for per-site grouping."""
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host

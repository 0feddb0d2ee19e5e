"""URL validation, canonical form and identity.

A URL is identified by the SHA-256 of its canonical form, so the same article
pushed twice (or with tracking parameters, a fragment, upper-case host or a
default port) is one row and one item. courlan does the normalising: it knows
the tracking parameters and host rules better than a hand-written list would.
On top of it we fold the variants one outlet serves of one article: a trailing
slash, the AMP page (``/amp`` at either end of the path, ``.amp``, ``?amp=1``,
``?outputType=amp``, an ``amp.`` host) and the mobile or ``www.`` host (``m.``,
``mobile.``, ``www.``). The canonical form is an identity, never fetched: the
pushed URL is what fetch requests.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit, urlunsplit

import courlan

from workers.core.errors import InvalidURL

ALLOWED_SCHEMES = ("http", "https")
MAX_URL_LENGTH = 4096
# Host labels that name a variant of the same site, and query parameters that ask for the AMP page.
VARIANT_HOST_LABELS = ("www", "m", "mobile", "amp")
AMP_QUERY = re.compile(r"^(?:amp(?:=.*)?|outputtype=amp)$", re.IGNORECASE)
AMP_PATH_SEGMENT = "amp"


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
        normalized = courlan.normalize_url(candidate, trailing_slash=False)
    except (ValueError, UnicodeError) as exc:
        raise InvalidURL(f"malformed URL: {exc}") from None
    parts = urlsplit(normalized)
    netloc = parts.netloc
    if (scheme, parts.port) in (("http", 80), ("https", 443)):
        netloc = netloc.rsplit(":", 1)[0]
    query = "&".join(pair for pair in parts.query.split("&") if pair and not AMP_QUERY.match(pair))
    return urlunsplit((parts.scheme, _without_variant_labels(netloc), _without_amp(parts.path), query, ""))


def _without_variant_labels(netloc: str) -> str:
    """``www.``, ``m.``, ``mobile.``, ``amp.`` dropped from the host while at least a domain and its suffix remain."""
    credentials, at, host = netloc.rpartition("@")
    labels = host.split(".")
    while len(labels) > 2 and labels[0] in VARIANT_HOST_LABELS:
        labels = labels[1:]
    return credentials + at + ".".join(labels)


def _without_amp(path: str) -> str:
    """The article's path without its AMP marker (``/amp/…``, ``…/amp``, ``….amp``) or trailing slash."""
    segments = [segment for segment in path.split("/") if segment]
    while segments and segments[0].lower() == AMP_PATH_SEGMENT:
        segments.pop(0)
    while segments and segments[-1].lower() == AMP_PATH_SEGMENT:
        segments.pop()
    if segments and segments[-1].lower().endswith(".amp") and len(segments[-1]) > 4:
        segments[-1] = segments[-1][:-4]
    return "/" + "/".join(segments)


def url_hash(canonical_url: str) -> str:
    """Stable identity of a canonical URL (hex SHA-256), the key of idempotent storage."""
    return hashlib.sha256(canonical_url.encode("utf-8")).hexdigest()


def site_of(url_or_host: str) -> str:
    """The site a URL or a bare host ("www.aa.com.tr", "aa.com.tr") belongs to: its host, lower-case,
    without the labels that name a variant of one site (``www.``, ``m.``, ``mobile.``, ``amp.``), as URL
    identity folds them. The one notion of site: overrides, learned lines, politeness and listings use it,
    so a rule for aa.com.tr holds on m.aa.com.tr too."""
    text = url_or_host.strip()
    host = (urlsplit(text if "//" in text else f"//{text}").hostname or "").lower()
    return _without_variant_labels(host)


def pacing_key(url: str) -> str:
    """``site[:port]``: the unit of per-host pacing and robots.txt, where two servers on one address with
    different ports are different hosts."""
    port = urlsplit(url).port
    return f"{site_of(url)}:{port}" if port else site_of(url)

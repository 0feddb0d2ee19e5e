"""Fetch stage: one URL in, one ``FetchResult`` (decoded HTML) out, or one of our errors.

Why it is written this way:

- Redirects are followed here rather than by httpx, so that every hop's scheme and
  addresses are checked: an open redirect on a public site must not lead into the intranet.
- The body is streamed. The size cap applies to *decoded* bytes (a gzip bomb stops at the
  cap) and the whole-request deadline is checked between chunks, with every read bounded by
  the time left, so a server dripping one byte a second cannot hold a worker.
- One ``httpx.Client`` per call: fetch workers run many threads against many hosts, so a
  shared pool would buy little connection reuse for its shared mutable state. The costly
  part of a client, the TLS context (~30 ms to load the CA bundle), is built once and shared.
- Every httpx exception is mapped to one of ``workers.errors``, so tasks only ever see ours.

Known limits: addresses are checked on our own resolution and httpx resolves again when it
connects, so a DNS answer that changes in between (rebinding) is not caught here; pinning
the connection to the checked address can reuse ``check_address``. httpx inflates each
network read (up to 64 KiB) in one piece, so a compression bomb briefly holds one inflated
read (measured: ~50 MB peak for a 200 MB gzip bomb) before the cap refuses it.
"""

from __future__ import annotations

import codecs
import dataclasses
import email.utils
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import charset_normalizer
import httpx

from workers.errors import (
    ConnectionFailed,
    FetchTimeout,
    ForbiddenAddress,
    HTTPStatusError,
    InvalidURL,
    PageTooLarge,
    ServerBusy,
    TooManyRedirects,
    UnsupportedContent,
)
from workers.settings import Settings, get_settings

Resolver = Callable[[str, int], list[str]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
BUSY_STATUSES = frozenset({408, 429})
SNIFF_BYTES = 1024
META_SCAN_BYTES = 16_384  # the spec says 1 KB; real pages put <meta charset> after long scripts
META_CHARSET = re.compile(rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([\w.:+-]+)""", re.IGNORECASE)
HOSTNAME = re.compile(r"(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_][a-z0-9_-]{0,62})*\.?", re.IGNORECASE)
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class FetchResult:
    """A fetched page. ``redirects`` lists the URLs redirected to, in order (the last is
    ``final_url``); ``encoding`` is the Python codec name the body was decoded with."""

    url: str
    final_url: str
    status: int
    content_type: str
    encoding: str
    html: str
    fetched_at: str
    redirects: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FetchResult:
        return cls(**{**data, "redirects": list(data.get("redirects", []))})


def fetch(url: str, settings: Settings | None = None, *, transport: httpx.BaseTransport | None = None,
          resolver: Resolver | None = None, clock: Callable[[], float] = time.monotonic) -> FetchResult:
    """GET ``url`` within the limits of ``settings``; raise a ``MirsadError`` on any failure."""
    settings = settings or get_settings()
    deadline = clock() + settings.total_timeout
    client = httpx.Client(transport=transport, verify=_tls_context(), trust_env=False, follow_redirects=False,
                          headers={"User-Agent": settings.user_agent, "Accept": ACCEPT})
    try:
        return _follow(client, url, settings, resolver or resolve_host, deadline, clock)
    except httpx.TimeoutException as exc:
        raise FetchTimeout(f"timed out ({type(exc).__name__}: {exc})") from exc
    except httpx.InvalidURL as exc:
        raise InvalidURL(f"{url!r} is not a valid URL ({exc})") from exc
    except httpx.HTTPError as exc:
        raise ConnectionFailed(f"{type(exc).__name__}: {exc}") from exc
    finally:
        if transport is None:  # a transport passed in belongs to the caller, who closes it
            client.close()


def check_address(address: str, allowed: bool | tuple[Network, ...] = ()) -> None:
    """Raise ``ForbiddenAddress`` unless ``address`` is publicly routable or inside ``allowed``
    (``True`` allows everything, as ``Settings.private_networks_allowed`` does)."""
    if allowed is True:
        return
    ip = ipaddress.ip_address(address)
    embedded = _embedded_ipv4(ip)
    if any(candidate in network for candidate in (ip, embedded) if candidate for network in allowed):
        return
    if embedded:  # the IPv4 address is where the packets go
        if kind := _non_public_kind(embedded):
            raise ForbiddenAddress(f"{ip} maps to {embedded}, {kind}")
    elif kind := _non_public_kind(ip):
        raise ForbiddenAddress(f"{ip} is {kind}")


def resolve_host(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host``."""
    return list(dict.fromkeys(info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))


def _follow(client: httpx.Client, raw_url: str, settings: Settings, resolver: Resolver,
            deadline: float, clock: Callable[[], float]) -> FetchResult:
    url = _parse_url(raw_url)
    redirects: list[str] = []
    while True:
        _check_destination(url, settings.private_networks_allowed, resolver)
        with client.stream("GET", url, timeout=_timeout_left(settings, deadline, clock)) as response:
            location = response.headers.get("location")
            if response.status_code in REDIRECT_STATUSES and location:
                if len(redirects) >= settings.max_redirects:
                    raise TooManyRedirects(f"more than {settings.max_redirects} redirects (last to {location})")
                url = _parse_url(location, base=url)
                redirects.append(str(url))
                continue
            _check_status(response)
            media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type and media_type not in HTML_TYPES:
                raise UnsupportedContent(f"{media_type} is not HTML")
            body = _read_body(response, settings, deadline, clock)
            _sniff(body, declared=bool(media_type))
            html, encoding = decode_html(body, response.charset_encoding)
            return FetchResult(url=raw_url, final_url=str(url), status=response.status_code,
                               content_type=media_type, encoding=encoding, html=html,
                               fetched_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               redirects=redirects)


def _parse_url(raw: str, base: httpx.URL | None = None) -> httpx.URL:
    try:
        url = base.join(raw) if base else httpx.URL(raw)
        url.host  # decodes punycode: a bad IDNA label raises ValueError here
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidURL(f"{raw!r} is not a valid URL ({exc})") from exc
    if url.scheme not in {"http", "https"}:
        raise InvalidURL(f"{raw!r}: only http and https are fetched, not {url.scheme or 'a URL without scheme'!r}")
    if url.port is not None and not 0 < url.port < 65536:
        raise InvalidURL(f"{raw!r}: port {url.port} is out of range")
    host = url.raw_host.decode("ascii")
    if not (_ip_literal(host) or HOSTNAME.fullmatch(host)):
        raise InvalidURL(f"{raw!r}: {host!r} is not a valid host name")
    return url


def _check_destination(url: httpx.URL, allowed: bool | tuple[Network, ...], resolver: Resolver) -> None:
    """Refuse ``url`` unless every address its host resolves to passes ``check_address``."""
    if allowed is True:
        return
    host = url.raw_host.decode("ascii")
    if _ip_literal(host):
        addresses = [host]
    else:
        try:
            addresses = resolver(host, url.port or (443 if url.scheme == "https" else 80))
        except OSError as exc:
            raise ConnectionFailed(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise ConnectionFailed(f"{host} resolves to no address")
    for address in addresses:
        check_address(address, allowed)


def _ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _embedded_ipv4(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), if any."""
    if ip.version == 4:
        return None
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.ipv4_mapped or ip.sixtofour


def _non_public_kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``ip`` is not a public address ("a private address"), or None when it is."""
    checks = [
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip in CARRIER_GRADE_NAT, "a carrier-grade NAT address"),
        (ip.version == 6 and ip.is_site_local, "a site-local address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a globally routable address"),
    ]
    return next((kind for matches, kind in checks if matches), None)


def _timeout_left(settings: Settings, deadline: float, clock: Callable[[], float]) -> httpx.Timeout:
    """Per-request timeouts, none longer than what is left of the whole-fetch deadline."""
    left = deadline - clock()
    if left <= 0:
        raise FetchTimeout(f"fetch took longer than {settings.total_timeout:g} s")
    return httpx.Timeout(min(settings.read_timeout, left), connect=min(settings.connect_timeout, left))


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    message = f"HTTP {status} {response.reason_phrase} from {response.url}"
    if status in BUSY_STATUSES or status >= 500:
        raise ServerBusy(message, status, _retry_after(response.headers.get("retry-after")))
    raise HTTPStatusError(message, status)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _read_body(response: httpx.Response, settings: Settings, deadline: float, clock: Callable[[], float]) -> bytes:
    """The decoded body, refused as soon as it passes ``max_bytes`` or the deadline passes."""
    cap = settings.max_bytes
    length = response.headers.get("content-length", "")
    uncompressed = response.headers.get("content-encoding", "identity").strip().lower() in {"", "identity"}
    if uncompressed and length.isdigit() and int(length) > cap:
        raise PageTooLarge(f"Content-Length {length} is over the cap of {cap} bytes")
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > cap:
            raise PageTooLarge(f"body is over the cap of {cap} bytes")
        if clock() > deadline:
            raise FetchTimeout(f"fetch took longer than {settings.total_timeout:g} s")
    return bytes(body)


def _sniff(body: bytes, declared: bool) -> None:
    """Refuse bodies that are not HTML whatever the header says; without a header, require markup."""
    head = body[:SNIFF_BYTES]
    if head.lstrip().startswith(b"%PDF"):
        raise UnsupportedContent("the body is a PDF (starts with %PDF), not HTML")
    if b"\0" in head:
        raise UnsupportedContent("the body is binary data (NUL bytes), not HTML")
    if not declared and not head.lstrip(codecs.BOM_UTF8 + b" \t\r\n\f").startswith(b"<"):
        raise UnsupportedContent("no Content-Type and the body does not start like HTML")


def decode_html(body: bytes, header_charset: str | None = None) -> tuple[str, str]:
    """(text, codec): the first candidate codec that decodes the body cleanly, else UTF-8 with
    replacement characters, so a page with a lying or unknown charset never crashes the stage."""
    for codec in _candidate_codecs(body, header_charset):
        try:
            return body.decode(codec).removeprefix("\ufeff"), codec
        except UnicodeDecodeError:
            continue
    return body.decode("utf-8", "replace").removeprefix("\ufeff"), "utf-8"


def _candidate_codecs(body: bytes, header_charset: str | None) -> Iterator[str]:
    """Codecs to try, best first. Valid UTF-8 is UTF-8 whatever the labels say (legacy-encoded
    text is almost never valid UTF-8). Then the HTTP header and the <meta> tag; when they
    disagree, the one whose text matches detection goes first (a server-wide default header
    and a stale template <meta> are both common). Detection alone comes last."""
    yield "utf-8"
    declared = list(dict.fromkeys(filter(None, (_codec(header_charset), _codec(_meta_charset(body))))))
    if len(declared) == 2 and _same_text(body, declared[1], _detect(body)):
        declared.reverse()
    yield from declared
    if detected := _detect(body):
        yield detected


def _meta_charset(body: bytes) -> str | None:
    match = META_CHARSET.search(body, 0, META_SCAN_BYTES)
    return match.group(1).decode("ascii") if match else None


def _codec(label: str | None) -> str | None:
    """Python's name for a charset label, or None when the label is unknown or not a text codec."""
    if not label:
        return None
    try:
        name = codecs.lookup(label).name
        b"".decode(name)  # rejects codecs that exist but are not text encodings (base64, zlib…)
    except LookupError:
        return None
    return name


def _detect(body: bytes) -> str | None:
    match = charset_normalizer.from_bytes(body).best()
    return match.encoding if match else None


def _same_text(body: bytes, codec: str, other: str | None) -> bool:
    return other is not None and body.decode(codec, "replace") == body.decode(other, "replace")


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """httpx's default TLS settings, built once: building them per client costs ~30 ms."""
    return httpx.create_ssl_context()

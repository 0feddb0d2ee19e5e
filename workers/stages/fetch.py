"""Fetch stage: one URL in, one ``FetchResult`` (decoded HTML) out, or one of our errors.

Why it is written this way:

- Redirects are followed here rather than by httpx, so that every hop's scheme, port and
  addresses are checked: an open redirect on a public site must not lead into the intranet.
- Addresses are checked twice: when a URL is read (a clear reason before any connection,
  whatever the transport) and again where the socket is opened (``GuardedBackend``), which
  resolves the host once, checks every answer and connects to a checked address. A DNS answer
  that changes between the two (rebinding) therefore never reaches a private address. The URL
  is untouched, so the Host header, TLS SNI and certificate checks stay on the host name.
- Ports of internal services (``INTERNAL_SERVICE_PORTS``: SSH, SMTP, Redis, PostgreSQL…) are
  refused on any host: a news page is never served there, and speaking HTTP to them is an attack.
- The body is streamed and decoded here, from the raw bytes, by decompressors that never
  produce more than ``DECODE_PIECE`` bytes per step, so the size cap applies to *decoded*
  bytes and a gzip, deflate or brotli bomb costs a few pieces of memory before it is refused.
  The whole-request deadline is checked between pieces, with every read bounded by the time
  left, so a server dripping one byte a second cannot hold a worker.
- One ``httpx.Client`` per call: fetch workers run many threads against many hosts, so a
  shared pool would buy little connection reuse for its shared mutable state. The costly
  part of a client, the TLS context (~30 ms to load the CA bundle), is built once and shared.
- Every httpx exception is mapped to one of ``workers.core.errors``, so tasks only ever see ours.

Proxy variables (HTTP_PROXY…) are ignored: a proxy would open the connections itself,
past every check above.
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
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

import charset_normalizer
import httpcore
import httpx

from workers.core.errors import (
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
from workers.core.settings import Settings, get_settings
from workers.stages.overrides import decode_forced

try:  # brotli is what lets us accept "br"; without it the server is asked for gzip or deflate only
    import brotli
except ImportError:  # pragma: no cover - brotli is a dependency; this keeps fetch importable without it
    brotli = None
# What a corrupt body raises while it is decoded.
DECODE_ERRORS: tuple[type[Exception], ...] = (zlib.error, brotli.error) if brotli else (zlib.error,)

Resolver = Callable[[str, int], list[str]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
ACCEPT_ENCODING = "gzip, deflate, br" if brotli else "gzip, deflate"
DECODE_PIECE = 64 * 1024  # most decoded bytes one decompression step may produce
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
BUSY_STATUSES = frozenset({408, 429})
SNIFF_BYTES = 1024
META_SCAN_BYTES = 16_384  # the spec says 1 KB; real pages put <meta charset> after long scripts
META_CHARSET = re.compile(rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([\w.:+-]+)""", re.IGNORECASE)
HOSTNAME = re.compile(r"(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_][a-z0-9_-]{0,62})*\.?", re.IGNORECASE)
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Where clouds answer metadata requests (credentials!): AWS, ECS, GCP, Azure, Alibaba, Oracle.
# Most are link-local anyway; Azure's 168.63.129.16 is a public address that only leads home.
CLOUD_METADATA = frozenset(
    map(
        ipaddress.ip_address,
        [
            "169.254.169.254",
            "169.254.170.2",
            "169.254.170.23",
            "fd00:ec2::254",
            "fd00:ec2::23",
            "168.63.129.16",
            "100.100.100.200",
            "192.0.0.192",
        ],
    )
)
# A host whose last label is a number is an IPv4 address (the WHATWG URL rule), in any form
# the system's inet_aton reads: 2130706433, 0x7f.1, 127.1, 0177.0.0.1 are all 127.0.0.1.
CLOUD_METADATA_KIND = "a cloud metadata address"
NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")
# Refused on every host, allowed networks included: no news page is served on these ports, and
# an HTTP request to them is a cross-protocol attack on the service (the broker on 6379 first).
# Edit this table, not the code, to change the policy.
INTERNAL_SERVICE_PORTS = {
    21: "FTP",
    22: "SSH",
    23: "Telnet",
    25: "SMTP",
    53: "DNS",
    110: "POP3",
    111: "RPC portmapper",
    135: "MS RPC",
    139: "NetBIOS",
    143: "IMAP",
    389: "LDAP",
    445: "SMB",
    465: "SMTPS",
    587: "SMTP submission",
    636: "LDAPS",
    993: "IMAPS",
    995: "POP3S",
    1433: "SQL Server",
    1521: "Oracle",
    2049: "NFS",
    2375: "Docker API",
    2376: "Docker API (TLS)",
    2379: "etcd",
    2380: "etcd peers",
    3306: "MySQL",
    3389: "RDP",
    4369: "Erlang port mapper",
    5432: "PostgreSQL",
    5555: "Flower",
    5672: "AMQP",
    5984: "CouchDB",
    6379: "Redis",
    6443: "Kubernetes API",
    8500: "Consul",
    9042: "Cassandra",
    9200: "Elasticsearch",
    9300: "Elasticsearch transport",
    10250: "kubelet",
    11211: "memcached",
    15672: "RabbitMQ management",
    25672: "RabbitMQ distribution",
    27017: "MongoDB",
}


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


@dataclass(frozen=True)
class RawResponse:
    """An HTTP answer as bytes, before any HTML rule. ``headers`` has lower-case names; ``status``
    is 2xx or 304 (errors are raised); ``redirects`` lists the URLs redirected to, in order."""

    url: str
    final_url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    redirects: list[str] = field(default_factory=list)

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def charset(self) -> str | None:
        for parameter in self.headers.get("content-type", "").split(";")[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "charset":
                return value.strip().strip("\"'") or None
        return None


def fetch(
    url: str,
    settings: Settings | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
    resolver: Resolver | None = None,
    network: httpcore.NetworkBackend | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FetchResult:
    """GET ``url`` within the limits of ``settings`` and decode it as HTML; raise a ``MirsadError``
    on any failure, a body that is not HTML included."""
    raw = fetch_raw(
        url,
        {"Accept": ACCEPT},
        settings,
        transport=transport,
        resolver=resolver,
        network=network,
        clock=clock,
        expect=_require_html,
    )
    _sniff(raw.body, declared=bool(raw.media_type))
    html, encoding = decode_forced(raw.body, raw.final_url) or decode_html(raw.body, raw.charset)
    return FetchResult(
        url=url,
        final_url=raw.final_url,
        status=raw.status,
        content_type=raw.media_type,
        encoding=encoding,
        html=html,
        fetched_at=datetime.now(UTC).isoformat(timespec="seconds"),
        redirects=raw.redirects,
    )


def fetch_raw(
    url: str,
    headers: Mapping[str, str] | None = None,
    settings: Settings | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
    resolver: Resolver | None = None,
    network: httpcore.NetworkBackend | None = None,
    clock: Callable[[], float] = time.monotonic,
    expect: Callable[[httpx.Response], None] | None = None,
) -> RawResponse:
    """GET ``url`` within the limits of ``settings`` and return the bytes, whatever the content type
    (feeds and sitemaps come this way); a 304 is returned, not raised. ``expect`` sees the response
    head before the body is read, and raises to refuse it.

    By default connections go through ``GuardedTransport``; ``network`` is the backend that
    opens its sockets (tests record it). A ``transport`` passed in replaces all of that, and
    then only the check made when a URL is read applies."""
    settings = settings or get_settings()
    resolver = resolver or resolve_host
    deadline = clock() + settings.total_timeout
    client = httpx.Client(
        transport=transport or GuardedTransport(settings, resolver, network),
        trust_env=False,
        follow_redirects=False,
        headers={
            "User-Agent": settings.user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
            **(headers or {}),
        },
    )
    try:
        return _follow(client, url, settings, resolver, deadline, clock, expect)
    except httpx.TimeoutException as exc:
        raise FetchTimeout(f"timed out ({type(exc).__name__}: {exc})") from exc
    except httpx.InvalidURL as exc:
        raise InvalidURL(f"{url!r} is not a valid URL ({exc})") from exc
    except httpx.HTTPError as exc:
        raise ConnectionFailed(f"{type(exc).__name__}: {exc}") from exc
    finally:
        if transport is None:  # a transport passed in belongs to the caller, who closes it
            client.close()


class GuardedBackend(httpcore.NetworkBackend):
    """Opens TCP connections only to checked addresses: the host is resolved here, once, every
    answer must pass ``check_address`` and the port ``check_port``, and the socket is opened to
    one of those very addresses, so nothing can swap the answer between check and connect."""

    def __init__(
        self,
        allowed: Literal[True] | tuple[Network, ...],
        resolver: Resolver,
        network: httpcore.NetworkBackend | None = None,
    ):
        self.allowed = allowed
        self.resolver = resolver
        self.network = network or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        check_port(port)
        failure: Exception | None = None
        for address in _checked_addresses(host, port, self.allowed, self.resolver):
            try:
                return self.network.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # try the next address, as the system's connect does
        assert failure is not None  # _checked_addresses gives at least one address
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise ForbiddenAddress(f"refusing to connect to the Unix socket {path}")

    def sleep(self, seconds: float) -> None:
        self.network.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with its connections opened by a ``GuardedBackend``, and no proxy.

    httpx 0.28 has no parameter for the network backend (encode/httpx#3749 proposes one), so
    the connection pool it builds is replaced by one built with the public httpcore API."""

    def __init__(self, settings: Settings, resolver: Resolver, network: httpcore.NetworkBackend | None = None):
        super().__init__(verify=_tls_context(), trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=_tls_context(),
            network_backend=GuardedBackend(settings.private_networks_allowed, resolver, network),
        )


def check_address(address: str, allowed: Literal[True] | tuple[Network, ...] = ()) -> None:
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
        if ip in CLOUD_METADATA and kind != CLOUD_METADATA_KIND:
            kind += f" ({CLOUD_METADATA_KIND})"
        raise ForbiddenAddress(f"{ip} is {kind}")


def check_port(port: int) -> None:
    """Raise ``ForbiddenAddress`` for the port of an internal service (``INTERNAL_SERVICE_PORTS``)."""
    if service := INTERNAL_SERVICE_PORTS.get(port):
        raise ForbiddenAddress(f"port {port} is the port of an internal service ({service})")


def resolve_host(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host``."""
    return list(dict.fromkeys(str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))


def check_url(raw_url: str, settings: Settings, resolver: Resolver = resolve_host) -> None:
    """The check every hop of ``fetch`` passes, for a URL given ahead of fetching it (a source added):
    ``InvalidURL`` or ``ForbiddenAddress`` (private, loopback, metadata… unless allowed by
    ``MIRSAD_ALLOW_PRIVATE_HOSTS``), ``ConnectionFailed`` when the host does not resolve."""
    _check_destination(_parse_url(raw_url), settings.private_networks_allowed, resolver)


def _follow(
    client: httpx.Client,
    raw_url: str,
    settings: Settings,
    resolver: Resolver,
    deadline: float,
    clock: Callable[[], float],
    expect: Callable[[httpx.Response], None] | None,
) -> RawResponse:
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
            headers = {name.lower(): value for name, value in response.headers.items()}
            if response.status_code == 304:
                return RawResponse(raw_url, str(url), 304, headers, b"", redirects)
            _check_status(response)
            if expect:
                expect(response)
            body = _read_body(response, settings, deadline, clock)
            return RawResponse(raw_url, str(url), response.status_code, headers, body, redirects)


def _require_html(response: httpx.Response) -> None:
    """Refuse a declared type other than HTML before its body is read (a PDF is not downloaded)."""
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type and media_type not in HTML_TYPES:
        raise UnsupportedContent(f"{media_type} is not HTML")
    if response.status_code == 304:
        raise UnsupportedContent("the server answered 304 Not Modified to an unconditional request")


def _parse_url(raw: str, base: httpx.URL | None = None) -> httpx.URL:
    try:
        url = base.join(raw) if base else httpx.URL(raw)
        _ = url.host  # decodes punycode: a bad IDNA label raises ValueError here
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidURL(f"{raw!r} is not a valid URL ({exc})") from exc
    if url.scheme not in {"http", "https"}:
        raise InvalidURL(f"{raw!r}: only http and https are fetched, not {url.scheme or 'a URL without scheme'!r}")
    if url.port is not None and not 0 < url.port < 65536:
        raise InvalidURL(f"{raw!r}: port {url.port} is out of range")
    host = url.raw_host.decode("ascii")
    if NUMERIC_LABEL.fullmatch(host.removesuffix(".").rpartition(".")[2]) and not _ip_address(host):
        raise InvalidURL(f"{raw!r}: {host!r} ends in a number but is not an IPv4 address")
    if not (_ip_address(host) or HOSTNAME.fullmatch(host)):
        raise InvalidURL(f"{raw!r}: {host!r} is not a valid host name")
    return url


def _check_destination(url: httpx.URL, allowed: Literal[True] | tuple[Network, ...], resolver: Resolver) -> None:
    """Refuse ``url`` unless its port passes ``check_port`` and every address its host resolves
    to passes ``check_address``."""
    port = url.port or (443 if url.scheme == "https" else 80)
    check_port(port)
    if allowed is not True:
        _checked_addresses(url.raw_host.decode("ascii"), port, allowed, resolver)


def _checked_addresses(
    host: str, port: int, allowed: Literal[True] | tuple[Network, ...], resolver: Resolver
) -> list[str]:
    """The addresses of ``host`` (the one it spells when it is numeric), each passed through ``check_address``."""
    if address := _ip_address(host):
        addresses = [address]
    else:
        try:
            addresses = resolver(host, port)
        except OSError as exc:
            raise ConnectionFailed(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise ConnectionFailed(f"{host} resolves to no address")
    for address in addresses:
        check_address(address, allowed)
    return addresses


def _ip_address(host: str) -> str | None:
    """The address ``host`` spells, canonical (an IP literal, or a numeric IPv4 form such as
    2130706433 or 0x7f.1, which the system resolver would read the same way); else None."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    name = host.removesuffix(".")
    if not NUMERIC_LABEL.fullmatch(name.rpartition(".")[2]):
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(name))
    except OSError:
        return None


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
        (ip in CLOUD_METADATA, CLOUD_METADATA_KIND),
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
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _read_body(response: httpx.Response, settings: Settings, deadline: float, clock: Callable[[], float]) -> bytes:
    """The decoded body, refused as soon as it passes ``max_bytes`` or the deadline passes."""
    cap = settings.max_bytes
    length = response.headers.get("content-length", "")
    uncompressed = response.headers.get("content-encoding", "identity").strip().lower() in {"", "identity"}
    if uncompressed and length.isdigit() and int(length) > cap:
        raise PageTooLarge(f"Content-Length {length} is over the cap of {cap} bytes")
    body = bytearray()
    for piece in _decoded(response.iter_raw(), _decoders(response.headers.get("content-encoding", ""))):
        body += piece
        if len(body) > cap:
            raise PageTooLarge(f"body is over the cap of {cap} bytes")
        if clock() > deadline:
            raise FetchTimeout(f"fetch took longer than {settings.total_timeout:g} s")
    return bytes(body)


class _Inflater:
    """gzip, zlib or raw deflate, decoded ``DECODE_PIECE`` bytes at a time."""

    def __init__(self, wbits: int):
        self._inflate = zlib.decompressobj(wbits)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The output for ``data``, in bounded pieces; ``feed(b"")`` drains what is pending."""
        while not self._inflate.eof:
            piece = self._inflate.decompress(data, DECODE_PIECE)
            data = self._inflate.unconsumed_tail
            if piece:
                yield piece
            if not data and len(piece) < DECODE_PIECE:
                return


class _Deflater:
    """ "deflate" is zlib-wrapped by the standard and raw deflate on many servers: the first two
    bytes tell which."""

    def __init__(self) -> None:
        self._head = b""
        self._inflater: _Inflater | None = None

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._inflater is None:
            self._head += data
            if len(self._head) < 2 and data:
                return
            zlib_header = self._head[:1] and self._head[0] & 0x0F == 8 and int.from_bytes(self._head[:2]) % 31 == 0
            self._inflater = _Inflater(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)
            data = self._head
        yield from self._inflater.feed(data)


class _Unbrotli:
    """brotli, decoded about ``DECODE_PIECE`` bytes at a time (the library's own output limit)."""

    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        while not self._decompressor.is_finished():
            piece = self._decompressor.process(data, output_buffer_limit=DECODE_PIECE)
            data = b""
            if not piece:
                return
            yield piece


def _decoders(content_encoding: str) -> list:
    """One decoder per content coding, in decoding order (the last one applied comes first)."""
    decoders: list[_Inflater | _Deflater | _Unbrotli] = []
    for coding in reversed([c.strip().lower() for c in content_encoding.split(",")]):
        if coding in {"gzip", "x-gzip"}:
            decoders.append(_Inflater(zlib.MAX_WBITS | 32))  # | 32: a gzip or a zlib header
        elif coding == "deflate":
            decoders.append(_Deflater())
        elif coding == "br" and brotli:
            decoders.append(_Unbrotli())
        elif coding not in {"", "identity"}:
            raise UnsupportedContent(f"the body is in the content coding {coding!r}, which is not supported")
    return decoders


def _decoded(chunks: Iterator[bytes], decoders: list) -> Iterator[bytes]:
    """``chunks`` through every decoder in turn, lazily, so memory stays a few pieces deep."""
    if not decoders:
        yield from chunks
        return
    first, rest = decoders[0], decoders[1:]

    def pieces() -> Iterator[bytes]:
        try:
            for chunk in chunks:
                yield from first.feed(chunk)
            yield from first.feed(b"")
        except DECODE_ERRORS as exc:
            raise UnsupportedContent(f"the body's compression is corrupt ({exc})") from exc

    yield from _decoded(pieces(), rest)


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
        except UnicodeError:  # UnicodeDecodeError, or the plain UnicodeError of codecs such as idna
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
    except (LookupError, ValueError):  # unknown, or not even a well-formed name (a NUL, a lone surrogate)
        return None
    try:
        b"<".decode(name)
    except LookupError:  # a codec, but not a text encoding: base64, rot13, zlib…
        return None
    except UnicodeError:  # a text encoding that wants more bytes (utf-16)
        pass
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

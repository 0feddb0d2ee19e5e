"""The fetch stage against a real HTTP server on 127.0.0.1.

Nothing here leaves the machine: private and public addresses appear only in URLs that must
be refused before any connection, which ``RecordingTransport`` checks.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.fixture_server import FixtureServer, gzipped_big_page
from workers.core.errors import (
    ConnectionFailed,
    FetchTimeout,
    ForbiddenAddress,
    HTTPStatusError,
    InvalidURL,
    PageTooLarge,
    PermanentError,
    RetryableError,
    ServerBusy,
    TooManyRedirects,
    UnsupportedContent,
)
from workers.core.settings import Settings
from workers.stages.fetch import FetchResult, check_address, fetch

FIXTURES = Path(__file__).parent / "fixtures" / "fetch"
SETTINGS = Settings(allow_private_hosts="127.0.0.0/8", total_timeout=10, connect_timeout=2, read_timeout=5)
NO_PRIVATE = Settings(allow_private_hosts="0", total_timeout=5, connect_timeout=1, read_timeout=2)

ARABIC = "أعلنت وزارة الدفاع في طرابلس يوم الثلاثاء"
TURKISH = "Güvenlik analisti Ayşe Yılmaz, düzensiz göç ve kaçakçılıkla"


class RecordingTransport(httpx.HTTPTransport):
    """The real transport, noting every host it is asked to connect to."""

    def __init__(self) -> None:
        super().__init__()
        self.hosts: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        return super().handle_request(request)


def stub_resolver(table: dict[str, list[str]]):
    """A DNS double: answers from ``table``, fails like getaddrinfo for anything else."""

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Serves the fixture pages plus variants derived from them: the same pages without their
    charset <meta>, and bytes no charset explains."""
    pages = tmp_path_factory.mktemp("pages")
    for path in FIXTURES.iterdir():
        shutil.copy(path, pages)
    for name in ("arabic-windows-1256", "turkish-iso-8859-9"):
        lines = (FIXTURES / f"{name}.html").read_bytes().splitlines(keepends=True)
        (pages / f"{name}-nometa.html").write_bytes(b"".join(line for line in lines if b"<meta" not in line))
    arabic = (FIXTURES / "arabic-windows-1256.html").read_bytes().decode("cp1256")
    (pages / "arabic-utf-8-nometa.html").write_text(arabic.replace('<meta charset="windows-1256">\n', ""), "utf-8")
    rng = random.Random(1)
    noise = bytes(rng.randrange(0x80, 0x100) for _ in range(3000))
    (pages / "noise.html").write_bytes(b"<html><p>" + noise + b"</p></html>")
    with FixtureServer(pages) as running:
        yield running


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_fetches_a_page_with_every_field(server):
    url = server.url("/pages/plain.html")
    result = fetch(url, SETTINGS)
    assert (result.url, result.final_url, result.status, result.redirects) == (url, url, 200, [])
    assert (result.content_type, result.encoding) == ("text/html", "utf-8")
    assert "the “second phase” of the harbour works, a café owner" in result.html
    fetched_at = datetime.fromisoformat(result.fetched_at)
    assert fetched_at.utcoffset() == timedelta(0)
    assert abs((datetime.now(UTC) - fetched_at).total_seconds()) < 5


def test_result_round_trips_through_json(server):
    result = fetch(server.url("/redirect/1"), SETTINGS)
    assert FetchResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_sends_user_agent_and_accept(server):
    settings = Settings(allow_private_hosts="127.0.0.0/8", user_agent="MirsadTest/9")
    echoed = fetch(server.url("/headers"), settings).html
    assert "User-Agent: MirsadTest/9" in echoed
    assert "Accept: text/html,application/xhtml+xml" in echoed


def test_ignores_proxy_environment(server, monkeypatch):
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{closed_port()}")
    assert fetch(server.url("/pages/plain.html"), SETTINGS).status == 200


def test_accepts_xhtml(server):
    result = fetch(server.url("/pages/page.xhtml"), SETTINGS)
    assert result.content_type == "application/xhtml+xml"
    assert "Served as application/xhtml+xml." in result.html


@pytest.mark.parametrize(
    "page, true_codec, phrase",
    [
        ("arabic-windows-1256", "cp1256", ARABIC),
        ("turkish-iso-8859-9", "iso-8859-9", TURKISH),
    ],
)
@pytest.mark.parametrize(
    "variant, header_charset",
    [
        ("", None),  # only the <meta> says
        ("", "{true}"),  # header and <meta> agree
        ("", "utf-8"),  # header wrong, bytes invalid UTF-8: <meta> wins
        ("", "iso-8859-1"),  # header wrong but decodes: detection sides with <meta>
        ("", "x-no-such-charset"),  # unknown label falls through to <meta>
        ("-nometa", None),  # nothing declared: detection
        ("-nometa", "utf-8"),  # wrong header, no <meta>: detection
    ],
)
def test_decodes_legacy_charsets(server, page, true_codec, phrase, variant, header_charset):
    path = f"/pages/{page}{variant}.html"
    if header_charset:
        path += f"?charset={header_charset.format(true=true_codec)}"
    result = fetch(server.url(path), SETTINGS)
    expected = (server.pages_dir / f"{page}{variant}.html").read_bytes().decode(true_codec)
    assert phrase in result.html
    assert result.html == expected


def test_valid_utf8_wins_over_a_legacy_header(server):
    result = fetch(server.url("/pages/arabic-utf-8-nometa.html?charset=windows-1256"), SETTINGS)
    assert (result.encoding, ARABIC in result.html) == ("utf-8", True)


def test_undecodable_bytes_are_replaced_not_fatal(server):
    """Random high bytes: not UTF-8, and charset-normalizer finds no charset for them."""
    result = fetch(server.url("/pages/noise.html?charset=utf-8"), SETTINGS)
    assert result.encoding == "utf-8"
    assert result.html.startswith("<html><p>\ufffd")


@pytest.mark.parametrize(
    "path, status, retry_after",
    [
        ("/status/503?retry_after=7", 503, 7.0),
        ("/status/500", 500, None),
        ("/status/502?retry_after=soon", 502, None),
        ("/status/429?retry_after=0", 429, 0.0),
        ("/status/408", 408, None),
    ],
)
def test_busy_statuses_are_retryable(server, path, status, retry_after):
    with pytest.raises(ServerBusy) as caught:
        fetch(server.url(path), SETTINGS)
    assert isinstance(caught.value, RetryableError)
    assert (caught.value.status, caught.value.retry_after) == (status, retry_after)
    assert str(status) in caught.value.reason


def test_retry_after_as_http_date(server):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    with pytest.raises(ServerBusy) as caught:
        fetch(server.url(f"/status/503?retry_after={quote(when)}"), SETTINGS)
    assert 25 <= caught.value.retry_after <= 30


@pytest.mark.parametrize("status", [400, 403, 404, 410, 451])
def test_other_client_errors_are_permanent(server, status):
    with pytest.raises(HTTPStatusError) as caught:
        fetch(server.url(f"/status/{status}"), SETTINGS)
    assert isinstance(caught.value, PermanentError)
    assert caught.value.status == status
    assert f"HTTP {status}" in caught.value.reason


def test_follows_redirects_up_to_the_limit(server):
    settings = Settings(allow_private_hosts="127.0.0.0/8", max_redirects=3)
    result = fetch(server.url("/redirect/3"), settings)
    assert result.redirects == [server.url(f"/redirect/{hops}") for hops in (2, 1, 0)]
    assert result.final_url == server.url("/redirect/0")
    assert "End of the redirect chain" in result.html
    with pytest.raises(TooManyRedirects):
        fetch(server.url("/redirect/4"), settings)


def test_follows_relative_and_absolute_locations(server):
    relative = fetch(server.url("/redirect-to?url=../pages/plain.html&status=301"), SETTINGS)
    assert relative.final_url == server.url("/pages/plain.html")
    absolute = fetch(server.url(f"/redirect-to?url={quote(server.url('/pages/plain.html'))}&status=308"), SETTINGS)
    assert absolute.final_url == server.url("/pages/plain.html")


@pytest.mark.parametrize(
    "target, reason",
    [
        ("http://internal.example/admin", "10.0.0.1 is a private address"),
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ],
)
def test_redirect_into_private_space_is_refused_before_connecting(server, target, reason):
    transport = RecordingTransport()
    resolver = stub_resolver({"internal.example": ["10.0.0.1"]})
    with pytest.raises(ForbiddenAddress) as caught:
        fetch(server.url(f"/redirect-to?url={quote(target)}"), SETTINGS, transport=transport, resolver=resolver)
    assert reason in caught.value.reason
    assert transport.hosts == ["127.0.0.1"]


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://example.org/", "gopher://127.0.0.1/"])
def test_redirect_to_another_scheme_is_refused(server, target):
    with pytest.raises(InvalidURL):
        fetch(server.url(f"/redirect-to?url={quote(target)}"), SETTINGS)


@pytest.mark.parametrize(
    "path, reason",
    [
        ("/pdf", "application/pdf is not HTML"),
        ("/pages/pixel.png", "image/png is not HTML"),
        ("/pages/notes.txt", "text/plain is not HTML"),
        ("/pdf?ctype=text/html", "PDF"),
        ("/pdf?ctype=", "PDF"),
        ("/pages/pixel.png?ctype=text/html", "binary"),
        ("/pages/notes.txt?ctype=", "does not start like HTML"),
    ],
)
def test_refuses_what_is_not_html(server, path, reason):
    with pytest.raises(UnsupportedContent) as caught:
        fetch(server.url(path), SETTINGS)
    assert reason in caught.value.reason


def test_sniffs_html_without_content_type(server):
    result = fetch(server.url("/pages/plain.html?ctype="), SETTINGS)
    assert (result.content_type, result.encoding) == ("", "utf-8")
    assert "Harbour talks resume" in result.html


@pytest.mark.parametrize(
    "path, refused_on",
    [
        ("/big?mb=50", "Content-Length 50000000"),  # before reading a byte of the body
        ("/big?mb=50&length=0", "body is over the cap"),
        ("/gzip-big?mb=50", "body is over the cap"),
    ],
)
def test_oversized_bodies_fail_fast(server, path, refused_on):
    started = time.monotonic()
    with pytest.raises(PageTooLarge) as caught:
        fetch(server.url(path), SETTINGS)
    assert time.monotonic() - started < 3
    assert refused_on in caught.value.reason


def test_gzip_bomb_is_small_on_the_wire():
    assert len(gzipped_big_page(50_000_000)) < 1_000_000


def test_size_cap_is_enforced_on_the_streamed_body(server):
    url = server.url("/big?mb=0.5&length=0")
    assert len(fetch(url, Settings(allow_private_hosts="127.0.0.0/8", max_bytes=500_000)).html) == 500_000
    with pytest.raises(PageTooLarge):
        fetch(url, Settings(allow_private_hosts="127.0.0.0/8", max_bytes=499_999))


def test_dripping_server_hits_the_total_deadline(server):
    settings = Settings(allow_private_hosts="127.0.0.0/8", total_timeout=2, read_timeout=20)
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        fetch(server.url("/drip?seconds=30"), settings)
    assert 1.5 < time.monotonic() - started < 4


def test_read_timeout(server):
    settings = Settings(allow_private_hosts="127.0.0.0/8", read_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        fetch(server.url("/slow?seconds=5"), settings)
    assert time.monotonic() - started < 2


def test_total_deadline_covers_redirects(server):
    settings = Settings(allow_private_hosts="127.0.0.0/8", total_timeout=1, read_timeout=20)
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        fetch(server.url("/redirect-to?url=/slow%3Fseconds%3D5"), settings)
    assert time.monotonic() - started < 2


def test_closed_port_is_a_connection_failure():
    with pytest.raises(ConnectionFailed):
        fetch(f"http://127.0.0.1:{closed_port()}/", SETTINGS)


def test_broken_transfer_is_a_connection_failure(server):
    with pytest.raises(ConnectionFailed):
        fetch(server.url("/truncated"), SETTINGS)


def test_dns_failure_is_a_connection_failure():
    with pytest.raises(ConnectionFailed) as caught:
        fetch("http://no-such-host.example/", NO_PRIVATE, resolver=stub_resolver({}))
    assert "no-such-host.example" in caught.value.reason


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "http://",
        "http:///path",
        "http://exa mple.com/",
        "http://[::1",
        "http://xn--/",
        "http://127.0.0.1:99999/",
        "http://a..b/",
        "//example.org/no-scheme",
    ],
)
def test_malformed_urls_are_invalid(url):
    with pytest.raises(InvalidURL):
        fetch(url, SETTINGS)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/file",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "mailto:desk@example.org",
        "data:text/html,<p>hi</p>",
        "ws://example.org/",
    ],
)
def test_only_http_and_https(url):
    with pytest.raises(InvalidURL) as caught:
        fetch(url, SETTINGS)
    assert "only http and https" in caught.value.reason


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1:{port}/pages/plain.html", "127.0.0.1 is a loopback address"),
        ("http://localhost:{port}/pages/plain.html", "is a loopback address"),
        ("http://[::1]:{port}/", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]:{port}/", "maps to 127.0.0.1, a loopback address"),
        ("http://2130706433:{port}/", "127.0.0.1 is a loopback address"),
        ("http://0x7f000001:{port}/", "127.0.0.1 is a loopback address"),
        ("http://127.1:{port}/", "127.0.0.1 is a loopback address"),
        ("http://0.0.0.0:{port}/", "0.0.0.0 is an unspecified address"),
        ("http://10.0.0.1/", "10.0.0.1 is a private address"),
        ("http://172.16.5.4/", "172.16.5.4 is a private address"),
        ("http://192.168.1.1/", "192.168.1.1 is a private address"),
        ("http://169.254.169.254/", "169.254.169.254 is a link-local address"),
        ("http://100.64.0.1/", "100.64.0.1 is a carrier-grade NAT address"),
        ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
        ("http://240.0.0.1/", "240.0.0.1 is a private address"),
        ("http://[fe80::1]/", "fe80::1 is a link-local address"),
        ("http://[fc00::1]/", "fc00::1 is a private address"),
        ("http://[fec0::1]/", "fec0::1 is a site-local address"),
        ("http://[::ffff:10.0.0.1]/", "maps to 10.0.0.1, a private address"),
        ("http://[2002:a00:1::]/", "maps to 10.0.0.1, a private address"),
        ("http://[64:ff9b::a00:1]/", "maps to 10.0.0.1, a private address"),
    ],
)
def test_private_addresses_are_refused_without_connecting(server, url, reason):
    transport = RecordingTransport()
    port = server.base_url.rsplit(":", 1)[1]
    with pytest.raises(ForbiddenAddress) as caught:
        fetch(url.format(port=port), NO_PRIVATE, transport=transport)
    assert reason in caught.value.reason
    assert transport.hosts == []


def test_allowed_networks_are_the_only_exception(server):
    port = server.base_url.rsplit(":", 1)[1]
    assert fetch(f"http://127.0.0.1:{port}/pages/plain.html", SETTINGS).status == 200
    with pytest.raises(ForbiddenAddress):
        fetch(f"http://[::1]:{port}/", SETTINGS)
    allow_all = Settings(allow_private_hosts="1", connect_timeout=1)
    with pytest.raises(ConnectionFailed):  # allowed, so it connects: nothing listens on ::1
        fetch(f"http://[::1]:{closed_port()}/", allow_all)


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address):
    check_address(address)


def test_allowed_networks_include_mapped_forms():
    check_address("::ffff:127.0.0.1", Settings(allow_private_hosts="127.0.0.0/8").private_networks_allowed)
    check_address("10.1.2.3", Settings(allow_private_hosts="10.0.0.0/8, ::1").private_networks_allowed)
    with pytest.raises(ForbiddenAddress):
        check_address("10.1.2.3", Settings(allow_private_hosts="127.0.0.0/8").private_networks_allowed)


def test_flaky_route_fails_then_serves(server):
    url = server.url("/flaky?fail=2&key=fetch-test")
    for _ in range(2):
        with pytest.raises(ServerBusy):
            fetch(url, SETTINGS)
    assert "<article>" in fetch(url, SETTINGS).html


def test_articles_are_unique_per_path(server):
    first, again, other = (
        fetch(server.url(path), SETTINGS).html for path in ("/article/a", "/article/a", "/article/b")
    )
    assert first == again != other
    assert 2_500 < len(first.encode()) < 4_000


def get_ignoring_disconnect(url: str) -> None:
    try:
        httpx.get(url, timeout=60)
    except httpx.HTTPError:
        pass  # the server hung up on stopping: what the test wants


def test_server_stops_promptly_while_handlers_wait(tmp_path):
    fixture = FixtureServer(tmp_path).start()
    slow_requests = [
        threading.Thread(target=get_ignoring_disconnect, args=(fixture.url(path),), daemon=True)
        for path in ("/slow?seconds=30", "/drip?seconds=30")
    ]
    for request in slow_requests:
        request.start()
    while len(fixture.requests) < 2:
        time.sleep(0.01)
    started = time.monotonic()
    fixture.stop()
    for request in slow_requests:
        request.join(timeout=2)
    assert time.monotonic() - started < 1
    assert not any(request.is_alive() for request in slow_requests)
    assert [method for _, method, _ in fixture.requests] == ["GET", "GET"]

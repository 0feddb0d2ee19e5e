"""SSRF: the fetcher must never open a connection to an address or port it would refuse.

Every test runs with a resolver we control (``stub_resolver``: names not in its table fail like
getaddrinfo, so no real DNS), and records every TCP connection the fetcher opens with
``RecordingNetwork``, the real socket backend with a log. The only connections that may happen
go to the fixture server on 127.0.0.1; private and public addresses appear only in URLs and DNS
answers that must be refused before any packet is sent.
"""

from __future__ import annotations

import ssl
from urllib.parse import quote

import httpcore
import pytest

from tests.fixture_server import FixtureServer
from tests.test_fetch import stub_resolver
from workers.core.errors import ConnectionFailed, ForbiddenAddress, InvalidURL
from workers.core.settings import Settings
from workers.stages.fetch import INTERNAL_SERVICE_PORTS, GuardedBackend, fetch

NO_PRIVATE = Settings(allow_private_hosts="0", total_timeout=5, connect_timeout=1, read_timeout=2)
LOOPBACK_ONLY = Settings(allow_private_hosts="127.0.0.0/8", total_timeout=5, connect_timeout=1, read_timeout=2)
PUBLIC = "93.184.215.14"  # a public address: answered by stub resolvers, never connected to


class RecordingStream(httpcore.NetworkStream):
    """A real socket stream that notes the arguments of its TLS handshake."""

    def __init__(self, stream: httpcore.NetworkStream, network: RecordingNetwork):
        self.stream, self.network = stream, network

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, timeout)

    def close(self) -> None:
        self.stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        self.network.handshakes.append((server_hostname, ssl_context.verify_mode, ssl_context.check_hostname))
        return self.stream.start_tls(ssl_context, server_hostname, timeout)

    def get_extra_info(self, info: str):
        return self.stream.get_extra_info(info)


class RecordingNetwork(httpcore.SyncBackend):
    """httpcore's socket backend, noting every (address, port) it connects to and every TLS handshake."""

    def __init__(self) -> None:
        self.connections: list[tuple[str, int]] = []
        self.handshakes: list[tuple[str | None, ssl.VerifyMode, bool]] = []

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None, socket_options=None
    ) -> httpcore.NetworkStream:
        self.connections.append((host, port))
        return RecordingStream(super().connect_tcp(host, port, timeout, local_address, socket_options), self)


def rebinding_resolver(*answers: list[str]):
    """A DNS double whose answer changes on every query: the attacker's short-TTL record."""
    queries: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        queries.append(host)
        return answers[min(len(queries), len(answers)) - 1]

    resolve.queries = queries
    return resolve


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with FixtureServer(tmp_path_factory.mktemp("pages")) as running:
        yield running


@pytest.fixture
def network():
    return RecordingNetwork()


def port_of(server: FixtureServer) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


@pytest.mark.parametrize(
    "host, reason",
    [
        # loopback in every spelling the system resolver would accept
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("127.255.255.254", "127.255.255.254 is a loopback address"),
        ("2130706433", "127.0.0.1 is a loopback address"),  # decimal
        ("0x7f000001", "127.0.0.1 is a loopback address"),  # hexadecimal
        ("0x7f.1", "127.0.0.1 is a loopback address"),  # hexadecimal, short form
        ("0x7f.0x0.0x0.0x1", "127.0.0.1 is a loopback address"),  # hexadecimal per part
        ("017700000001", "127.0.0.1 is a loopback address"),  # octal
        ("127.1", "127.0.0.1 is a loopback address"),  # short form
        ("127.0.1", "127.0.0.1 is a loopback address"),
        ("[::1]", "::1 is a loopback address"),
        ("[0:0:0:0:0:0:0:1]", "::1 is a loopback address"),
        ("[::ffff:127.0.0.1]", "maps to 127.0.0.1, a loopback address"),  # IPv4-mapped IPv6
        ("[::ffff:7f00:1]", "maps to 127.0.0.1, a loopback address"),
        ("[0:0:0:0:0:ffff:7f00:1]", "maps to 127.0.0.1, a loopback address"),
        # the unspecified address, which Linux treats as this host
        ("0.0.0.0", "0.0.0.0 is an unspecified address"),
        ("0", "0.0.0.0 is an unspecified address"),
        ("[::]", ":: is an unspecified address"),
        # private
        ("10.0.0.1", "10.0.0.1 is a private address"),
        ("10.1", "10.0.0.1 is a private address"),
        ("167772161", "10.0.0.1 is a private address"),
        ("0x0a000001", "10.0.0.1 is a private address"),
        ("172.16.0.1", "172.16.0.1 is a private address"),
        ("172.31.255.254", "172.31.255.254 is a private address"),
        ("192.168.0.1", "192.168.0.1 is a private address"),
        ("[fd12:3456::1]", "fd12:3456::1 is a private address"),
        ("[::ffff:192.168.0.1]", "maps to 192.168.0.1, a private address"),
        # link-local and cloud metadata
        ("169.254.169.254", "169.254.169.254 is a link-local address (a cloud metadata address)"),
        ("2852039166", "169.254.169.254 is a link-local address"),
        ("0xa9fea9fe", "169.254.169.254 is a link-local address"),
        ("169.254.43518", "169.254.169.254 is a link-local address"),
        ("[::ffff:a9fe:a9fe]", "maps to 169.254.169.254, a link-local address"),
        ("[fd00:ec2::254]", "fd00:ec2::254 is a private address (a cloud metadata address)"),
        ("168.63.129.16", "168.63.129.16 is a cloud metadata address"),
        ("100.100.100.200", "100.100.100.200 is a carrier-grade NAT address (a cloud metadata address)"),
        ("[fe80::1]", "fe80::1 is a link-local address"),
        ("[fe80::1%25eth0]", "is a link-local address"),
        # carrier-grade NAT, multicast, broadcast, reserved, documentation
        ("100.64.0.1", "100.64.0.1 is a carrier-grade NAT address"),
        ("100.127.255.254", "100.127.255.254 is a carrier-grade NAT address"),
        ("224.0.0.1", "224.0.0.1 is a multicast address"),
        ("239.255.255.250", "239.255.255.250 is a multicast address"),
        ("[ff02::1]", "ff02::1 is a multicast address"),
        ("255.255.255.255", "255.255.255.255 is a private address"),
        ("198.18.0.1", "198.18.0.1 is a private address"),
        ("192.0.2.1", "192.0.2.1 is a private address"),
        # IPv6 forms that carry a private IPv4 address
        ("[2002:a00:1::]", "maps to 10.0.0.1, a private address"),
        ("[64:ff9b::a9fe:a9fe]", "maps to 169.254.169.254, a link-local address"),
    ],
)
def test_address_spellings_are_refused_before_connecting(host, reason, network):
    with pytest.raises(ForbiddenAddress) as caught:
        fetch(f"http://{host}/latest/meta-data/", NO_PRIVATE, resolver=stub_resolver({}), network=network)
    assert reason in caught.value.reason
    assert network.connections == []


@pytest.mark.parametrize("host", ["0177.0.0.1", "127.000.000.001", "4294967296", "1.2.3.4.5", "12.08", "1.2.3.256"])
def test_numeric_hosts_that_are_not_addresses_are_invalid(host, network):
    """A host ending in a number must be an IPv4 address; anything else would go to DNS as a name."""
    with pytest.raises(InvalidURL):
        fetch(f"http://{host}/", NO_PRIVATE, resolver=stub_resolver({}), network=network)
    assert network.connections == []


@pytest.mark.parametrize(
    "answers, reason",
    [
        (["10.20.30.40"], "10.20.30.40 is a private address"),
        (["127.0.0.1"], "127.0.0.1 is a loopback address"),
        (["169.254.169.254"], "169.254.169.254 is a link-local address"),
        (["::ffff:10.0.0.1"], "maps to 10.0.0.1, a private address"),
        ([PUBLIC, "192.168.1.10"], "192.168.1.10 is a private address"),  # one bad answer spoils the name
    ],
)
def test_public_looking_names_resolving_inside_are_refused(answers, reason, network):
    resolver = stub_resolver({"news.example.com": answers, "metadata.google.internal": answers})
    for url in ("http://news.example.com/article", "https://news.example.com/", "http://metadata.google.internal/"):
        with pytest.raises(ForbiddenAddress) as caught:
            fetch(url, NO_PRIVATE, resolver=resolver, network=network)
        assert reason in caught.value.reason
    assert network.connections == []


@pytest.mark.parametrize(
    "target, reason",
    [
        ("http://intranet.example.com/admin", "10.0.0.7 is a private address"),
        ("http://metadata.google.internal/computeMetadata/v1/", "169.254.169.254 is a link-local address"),
        ("http://0xa9fea9fe/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://[::ffff:a9fe:a9fe]/", "maps to 169.254.169.254"),
        ("http://100.64.1.1/", "carrier-grade NAT"),
        ("http://{host}:22/", "port 22 is the port of an internal service (SSH)"),
    ],
)
def test_redirects_to_forbidden_destinations_are_refused(server, network, target, reason):
    """The fixture server (allowed: 127.0.0.0/8) redirects; only it is ever connected to."""
    resolver = stub_resolver({"intranet.example.com": ["10.0.0.7"], "metadata.google.internal": ["169.254.169.254"]})
    location = quote(target.format(host="127.0.0.1"))
    with pytest.raises(ForbiddenAddress) as caught:
        fetch(server.url(f"/redirect-to?url={location}"), LOOPBACK_ONLY, resolver=resolver, network=network)
    assert reason in caught.value.reason
    assert network.connections == [("127.0.0.1", port_of(server))]


def test_dns_rebinding_is_caught_where_the_connection_is_made(network):
    """The name is public when the URL is checked and private when the socket would be opened."""
    resolver = rebinding_resolver([PUBLIC], ["10.0.0.1"])
    with pytest.raises(ForbiddenAddress) as caught:
        fetch("http://rebind.example.com/", NO_PRIVATE, resolver=resolver, network=network)
    assert "10.0.0.1 is a private address" in caught.value.reason
    assert resolver.queries == ["rebind.example.com", "rebind.example.com"]  # checked twice: URL, then socket
    assert network.connections == []


def test_dns_rebinding_from_an_allowed_address(server, network):
    """Allowed on the first answer (loopback, as the tests allow), the cloud metadata on the second."""
    resolver = rebinding_resolver(["127.0.0.1"], ["169.254.169.254"])
    with pytest.raises(ForbiddenAddress) as caught:
        fetch(f"http://rebind.example.com:{port_of(server)}/", LOOPBACK_ONLY, resolver=resolver, network=network)
    assert "169.254.169.254 is a link-local address" in caught.value.reason
    assert network.connections == []


def test_connects_to_the_checked_address_keeping_the_host_name(server, network):
    """Allowed public path (a name mapped to 127.0.0.1): the socket goes to the checked address,
    the Host header still names the host, and DNS is not asked a third time."""
    resolver = rebinding_resolver(["127.0.0.1"], ["127.0.0.1"], ["10.0.0.1"])
    result = fetch(
        f"http://news.example.com:{port_of(server)}/headers", LOOPBACK_ONLY, resolver=resolver, network=network
    )
    assert f"Host: news.example.com:{port_of(server)}" in result.html
    assert network.connections == [("127.0.0.1", port_of(server))]
    assert len(resolver.queries) == 2


def test_tls_keeps_sni_and_certificate_checks_on_the_host_name(server, network):
    """https to the checked address: the handshake names the host and verifies its certificate
    (the fixture server speaks plain HTTP, so the handshake then fails: a connection failure)."""
    resolver = stub_resolver({"secure.example.com": ["127.0.0.1"]})
    with pytest.raises(ConnectionFailed):
        fetch(f"https://secure.example.com:{port_of(server)}/", LOOPBACK_ONLY, resolver=resolver, network=network)
    assert network.connections == [("127.0.0.1", port_of(server))]
    assert network.handshakes == [("secure.example.com", ssl.CERT_REQUIRED, True)]


def test_tries_the_next_checked_address_when_one_refuses(server, network):
    closed = ("127.0.0.2", port_of(server))  # nothing listens on 127.0.0.2
    resolver = stub_resolver({"twice.example.com": ["127.0.0.2", "127.0.0.1"]})
    result = fetch(
        f"http://twice.example.com:{port_of(server)}/headers", LOOPBACK_ONLY, resolver=resolver, network=network
    )
    assert result.status == 200
    assert network.connections == [closed, ("127.0.0.1", port_of(server))]


@pytest.mark.parametrize(
    "port, service",
    [
        (22, "SSH"),
        (25, "SMTP"),
        (6379, "Redis"),
        (5432, "PostgreSQL"),
        (11211, "memcached"),
        (2375, "Docker API"),
        (5555, "Flower"),
    ],
)
def test_internal_service_ports_are_refused_even_on_allowed_hosts(port, service, network):
    resolver = stub_resolver({"news.example.com": ["127.0.0.1"]})
    for url in (f"http://127.0.0.1:{port}/", f"http://news.example.com:{port}/", f"https://news.example.com:{port}/"):
        with pytest.raises(ForbiddenAddress) as caught:
            fetch(url, LOOPBACK_ONLY, resolver=resolver, network=network)
        assert f"port {port} is the port of an internal service ({service})" in caught.value.reason
    assert network.connections == []


def test_the_connection_itself_refuses_internal_ports_and_unix_sockets(network):
    """The last line of defence, whatever URL checks came before."""
    backend = GuardedBackend(True, stub_resolver({}), network)
    with pytest.raises(ForbiddenAddress, match="Redis"):
        backend.connect_tcp("127.0.0.1", 6379)
    with pytest.raises(ForbiddenAddress, match="Unix socket"):
        backend.connect_unix_socket("/var/run/docker.sock")
    assert network.connections == []


def test_internal_port_policy_leaves_web_ports_alone():
    assert not {80, 443, 8000, 8080, 8443} & INTERNAL_SERVICE_PORTS.keys()


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "file://localhost/etc/passwd",
        "ftp://news.example.com/",
        "gopher://127.0.0.1:6379/_INFO",
        "dict://127.0.0.1:11211/stat",
        "ldap://127.0.0.1/",
        "sftp://news.example.com/",
        "tftp://news.example.com/x",
        "jar:http://news.example.com/x.jar!/",
        "netdoc:///etc/passwd",
        "ws://news.example.com/",
        "wss://news.example.com/",
        "javascript:alert(1)",
        "data:text/html,<p>x</p>",
        "view-source:http://news.example.com/",
    ],
)
def test_schemes_other_than_http_are_refused(url, network):
    with pytest.raises(InvalidURL) as caught:
        fetch(url, LOOPBACK_ONLY, resolver=stub_resolver({"news.example.com": ["127.0.0.1"]}), network=network)
    assert "only http and https" in caught.value.reason
    assert network.connections == []


def test_proxy_variables_are_ignored(server, network, monkeypatch, tmp_path):
    """A proxy would open the connection itself, past every check: the variables must not be used."""
    with FixtureServer(tmp_path) as proxy:
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy.base_url)
        assert fetch(server.url("/headers"), LOOPBACK_ONLY, network=network).status == 200
        with pytest.raises(ForbiddenAddress):
            fetch("http://10.0.0.1/", LOOPBACK_ONLY, network=network)
        with pytest.raises(ForbiddenAddress):  # the proxy listens on an allowed address; the target is not
            fetch(f"http://[::1]:{port_of(server)}/", LOOPBACK_ONLY, network=network)
    assert proxy.requests == []
    assert network.connections == [("127.0.0.1", port_of(server))]

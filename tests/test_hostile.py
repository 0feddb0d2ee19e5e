"""Hostile responses from a real server on 127.0.0.1: each ends in one of our errors with a
reason, or in a decoded page that clean → strip → classify handles, never a crash or a hang.

(The one-byte-a-second drip is ``test_fetch.test_dripping_server_hits_the_total_deadline``.)
"""

from __future__ import annotations

import resource
import time

import pytest

from tests.fixture_server import (
    ARABIC_TEXT,
    MEGABYTE,
    TURKISH_TEXT,
    FixtureServer,
    brotli_big_page,
    deflated_big_page,
    gzipped_big_page,
)
from workers.core.errors import ConnectionFailed, EmptyExtraction, FetchTimeout, PageTooLarge, UnsupportedContent
from workers.core.settings import Settings
from workers.runtime.pipeline import extract
from workers.stages.fetch import DECODE_PIECE, decode_html, fetch

CAP = 1_000_000
SETTINGS = Settings(allow_private_hosts="127.0.0.0/8", max_bytes=CAP, total_timeout=3, read_timeout=2)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Bombs take seconds to build, longer than a timed fetch may wait: build them before any asks.
    gzipped_big_page(200 * MEGABYTE), deflated_big_page(200 * MEGABYTE), deflated_big_page(200 * MEGABYTE, raw=True)
    brotli_big_page(1000 * MEGABYTE)
    with FixtureServer(tmp_path_factory.mktemp("pages")) as running:
        yield running


def timed_fetch(url: str, settings: Settings = SETTINGS, limit: float = 2.5):
    """fetch, asserting it ends (result or error) within ``limit`` seconds."""
    started = time.monotonic()
    try:
        return fetch(url, settings)
    finally:
        assert time.monotonic() - started < limit


@pytest.mark.parametrize(
    "path", ["/gzip-big?mb=200", "/deflate-big?mb=200", "/deflate-big?mb=200&raw=1", "/brotli-big?mb=1000"]
)
def test_compression_bombs_stop_at_the_decoded_cap(server, path):
    with pytest.raises(PageTooLarge) as caught:
        timed_fetch(server.url(path))
    assert f"body is over the cap of {CAP} bytes" in caught.value.reason


def test_bombs_are_tiny_on_the_wire():
    assert len(deflated_big_page(200_000_000)) < 1_000_000
    assert len(brotli_big_page(1_000_000_000)) < 10_000  # ratio over 100,000: one network read holds it all


def test_brotli_bomb_is_decoded_in_bounded_pieces(server):
    """A whole 1 GB bomb fits in one network read; decoding it at once would take 1 GB of memory."""
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(PageTooLarge):
        timed_fetch(server.url("/brotli-big?mb=1000"), Settings(allow_private_hosts="127.0.0.0/8", max_bytes=100))
    growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert growth_kib < 64 * 1024, f"peak memory grew by {growth_kib} KiB"


@pytest.mark.parametrize(
    "path", ["/deflate-big?mb=0.3", "/deflate-big?mb=0.3&raw=1", "/brotli-big?mb=0.3", "/gzip-big?mb=0.3"]
)
def test_compressed_pages_under_the_cap_decode_whole(server, path):
    html = timed_fetch(server.url(path)).html
    assert len(html) == 300_000
    assert html.startswith("<!DOCTYPE html>") and html.endswith("</body></html>\n")
    assert len(html) > DECODE_PIECE  # it really went through several pieces


def test_unknown_content_coding_is_refused(server):
    with pytest.raises(UnsupportedContent, match="content coding 'zstd'"):
        timed_fetch(server.url("/gzip-big?mb=0.1&encoding=zstd"))


def test_corrupt_compression_is_refused(server):
    with pytest.raises(UnsupportedContent, match="compression is corrupt"):
        timed_fetch(server.url("/article/corrupt?encoding=gzip"))


def test_content_length_longer_than_the_body_is_a_broken_transfer(server):
    with pytest.raises(ConnectionFailed) as caught:
        timed_fetch(server.url("/wrong-length?claim=100000"))
    assert "incomplete" in caught.value.reason or "complete message body" in caught.value.reason


def test_content_length_shorter_than_the_body_cuts_the_page(server):
    result = timed_fetch(server.url("/wrong-length?claim=120"))
    assert len(result.html.encode()) == 120
    with pytest.raises(EmptyExtraction):  # what is left is no article: a clear permanent failure
        extract(result.html, url=result.final_url)


def test_endless_chunked_stream_stops_at_the_cap(server):
    with pytest.raises(PageTooLarge):
        timed_fetch(server.url("/endless"))


def test_slow_endless_chunked_stream_stops_at_the_deadline(server):
    settings = Settings(allow_private_hosts="127.0.0.0/8", max_bytes=CAP, total_timeout=1.5, read_timeout=1)
    with pytest.raises(FetchTimeout, match="longer than 1.5 s"):
        timed_fetch(server.url("/endless?delay=0.1"), settings)


def test_broken_chunked_encoding_is_a_connection_failure(server):
    with pytest.raises(ConnectionFailed, match="chunk"):
        timed_fetch(server.url("/bad-chunked"))


def test_binary_labelled_html_is_refused(server):
    with pytest.raises(UnsupportedContent, match="binary data"):
        timed_fetch(server.url("/binary"))


def test_nul_bytes_at_the_start_mean_binary(server):
    with pytest.raises(UnsupportedContent, match="NUL bytes"):
        timed_fetch(server.url("/nul-bytes?at=head"))


def test_nul_bytes_inside_a_page_do_not_break_the_pipeline(server):
    result = timed_fetch(server.url("/nul-bytes?at=body"))
    assert "\0" in result.html
    document = extract(result.html, url=result.final_url)
    assert "\0" not in document.text
    assert any(tag.kind == "language" and tag.value == "en" for tag in document.tags)


def test_html_nested_ten_thousand_levels_deep(server):
    result = timed_fetch(server.url("/deep?levels=10000"))
    assert result.html.count("<div>") == 10_000
    started = time.monotonic()
    try:
        extract(result.html, url=result.final_url)
    except EmptyExtraction:
        pass  # the parser's depth limit may hide the article: a clear permanent failure
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    "path, text, codec",
    [
        ("/encoded?codec=windows-1256&label=x-no-such-charset", ARABIC_TEXT, "cp1256"),
        ("/encoded?codec=windows-1256&label=x-no-such-charset&charset=x-nor-this", ARABIC_TEXT, "cp1256"),
        ("/encoded?codec=utf-8&label=klingon&charset=base64", ARABIC_TEXT, "utf-8"),
    ],
)
def test_unknown_charset_labels_fall_back_to_detection(server, path, text, codec):
    result = timed_fetch(server.url(path))
    assert result.encoding == codec
    assert all(line in result.html for line in text.split("\n"))
    assert extract(result.html).tags[0].value == "ar"


def test_short_legacy_turkish_page_with_unknown_label_still_decodes(server):
    """Detection on 160 characters of ISO-8859-9 may pick a neighbouring Latin codec (cp1250 reads
    ğ as đ): the page is still decoded, mostly right, and classified as Turkish."""
    result = timed_fetch(server.url("/encoded?codec=iso-8859-9&lang=tr&label=x-no-such-charset"))
    assert "Sahil güvenlik sözcüsü" in result.html
    assert extract(result.html).tags[0].value == "tr"
    assert TURKISH_TEXT  # the page's text is the fixture server's


@pytest.mark.parametrize("query", ["", "?charset=utf-8", "?charset=windows-1256"])
def test_page_mixing_two_encodings_decodes_without_crashing(server, query):
    result = timed_fetch(server.url(f"/mixed-encoding{query}"))
    utf8_half, legacy_half = ARABIC_TEXT.split("\n")
    assert utf8_half in result.html or legacy_half in result.html  # one half survives whole
    document = extract(result.html)
    assert document.tags[0].value == "ar"


def test_decode_html_survives_any_labels():
    body = "<p>قال المتحدث</p>".encode("cp1256") + b"\xff\xfe\x00"
    for label in (
        None,
        "",
        "utf-8",
        "utf-16",
        "rot13",
        "base64",
        "zlib",
        "idna",
        "punycode",
        "x-user-defined",
        "\udcff",
        "utf-8\0",
        "a" * 500,
    ):
        text, codec = decode_html(body, label)
        assert isinstance(text, str) and codec


@pytest.mark.parametrize("label", ["rot13", "base64", "idna"])
def test_non_text_charset_labels_are_ignored(server, label):
    result = timed_fetch(server.url(f"/encoded?codec=windows-1256&label={label}&charset={label}"))
    assert (result.encoding, ARABIC_TEXT.split("\n")[0] in result.html) == ("cp1256", True)

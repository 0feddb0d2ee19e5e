import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.core.errors import InvalidURL
from workers.core.urls import canonicalize, site_of, url_hash


@pytest.mark.parametrize(
    "variant",
    [
        "https://www.example.com/news/1",
        "HTTPS://WWW.EXAMPLE.COM/news/1",
        "https://www.example.com:443/news/1",
        "https://www.example.com/news/1#comments",
        "https://www.example.com/news/1?utm_source=twitter&utm_medium=social",
        "https://www.example.com/news/1?fbclid=abc123",
        "  https://www.example.com/news/1  ",
    ],
)
def test_variants_of_one_url_share_one_identity(variant):
    assert url_hash(canonicalize(variant)) == url_hash(canonicalize("https://www.example.com/news/1"))


@pytest.mark.parametrize(
    "variant",
    [
        "https://www.example.com/news/1/",
        "https://example.com/news/1",
        "https://m.example.com/news/1",
        "https://mobile.example.com/news/1",
        "https://amp.example.com/news/1",
        "https://www.example.com/news/1/amp",
        "https://www.example.com/news/1/amp/",
        "https://www.example.com/amp/news/1",
        "https://www.example.com/news/1.amp",
        "https://www.example.com/news/1?amp=1",
        "https://www.example.com/news/1?amp",
        "https://www.example.com/news/1?outputType=amp",
        "https://WWW.example.com:443/news/1/?gclid=x&utm_campaign=y",
    ],
)
def test_amp_mobile_and_trailing_slash_variants_share_one_identity(variant):
    assert canonicalize(variant) == "https://example.com/news/1"


def test_a_short_domain_keeps_its_labels_and_other_parameters_stay():
    assert canonicalize("https://m.co/news/1") == "https://m.co/news/1"
    assert canonicalize("https://example.com/news/1?amp=1&id=2") == "https://example.com/news/1?id=2"
    assert canonicalize("https://example.com/news/amplifier") == "https://example.com/news/amplifier"


def test_real_query_parameters_stay_part_of_the_identity():
    assert canonicalize("https://example.com/article?id=1") != canonicalize("https://example.com/article?id=2")


def test_non_ascii_paths_are_percent_encoded_once():
    assert canonicalize("https://ar.example.com/أخبار/تركيا") == canonicalize(
        "https://ar.example.com/%D8%A3%D8%AE%D8%A8%D8%A7%D8%B1/%D8%AA%D8%B1%D9%83%D9%8A%D8%A7"
    )


@pytest.mark.parametrize(
    "url, reason",
    [
        ("", "empty"),
        ("not a url", "spaces"),
        ("ftp://example.com/file", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("javascript:alert(1)", "only http and https"),
        ("example.com/news", "no scheme"),
        ("http://", "no host"),
        ("http://example.com:99999/", "malformed"),
        ("http://example.com:0/", "port 0"),
        ("http://exa mple.com/", "spaces"),
    ],
)
def test_malformed_urls_are_rejected_with_a_reason(url, reason):
    with pytest.raises(InvalidURL, match=reason):
        canonicalize(url)


def test_site_drops_www():
    assert site_of("https://www.aljazeera.net/news/x") == "aljazeera.net"


@given(st.text(max_size=200))
def test_canonicalize_either_answers_or_raises_invalid_url(text):
    try:
        canonical = canonicalize(text)
    except InvalidURL:
        return
    assert canonical.startswith(("http://", "https://"))
    assert canonicalize(canonical) == canonical

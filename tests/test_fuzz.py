"""Property-based tests (hypothesis) of the URL validator, the text normalisers, strip and
classify, and a bounded run of random and mutated HTML through clean → strip → classify.

The HTML run happens in a forked child process, one case at a time, with a time limit per
case: a case that hangs (a parser loop, a regex backtracking in C) is killed and reported
instead of hanging the suite. Example counts keep the whole file well under a minute.
"""

from __future__ import annotations

import multiprocessing
import random
import traceback
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workers.core.document import Document
from workers.core.errors import EmptyExtraction, InvalidURL
from workers.core.urls import canonicalize
from workers.runtime.pipeline import extract, warm_up
from workers.stages.classify import classify
from workers.stages.fetch import decode_html
from workers.stages.strip import strip
from workers.text.textnorm import fold, fold_words

SEED_PAGES = sorted((Path(__file__).parent.parent / "seeds" / "pages").glob("*.html"))
CASE_SECONDS = 10  # one extraction of one page; real pages take well under a second
FAST = settings(max_examples=200, deadline=1000, suppress_health_check=[HealthCheck.too_slow])

# --- building blocks -----------------------------------------------------------------------------------------------

ARABIC = "أعلنت وزارة الدفاع الليبية توقيع اتفاقية تدريب مع تركيا في طرابلس، حسب المصدر: وكالة الأنباء."
TURKISH = "Türkiye ile Libya arasında askeri eğitim anlaşması imzalandı. Kaynak: AA. Etiketler: Libya, Türkiye"
ENGLISH = "The Libyan coast guard received two patrol boats from Turkey on Tuesday. Share this article. © 2025"
PHRASES = [
    ARABIC,
    TURKISH,
    ENGLISH,
    "اقرأ أيضا",
    "İlgili Haberler",
    "Read more:",
    "Copyright",
    "Tags:",
    "بقلم: أحمد",
    "Yorum Yaz",
    "Misrata",
    "Ankara",
    "Bayraktar TB2",
    "ـــ",
    "ٱلْحَمْدُ",
    "İIıi",
]
text_pieces = st.one_of(
    st.sampled_from(PHRASES), st.text(max_size=40), st.text(alphabet=st.characters(codec="utf-8"), max_size=20)
)
lines = st.lists(text_pieces, max_size=6).map(" ".join)
documents = st.builds(
    Document,
    text=st.lists(lines, max_size=25).map("\n".join),
    title=st.none() | lines,
    site_name=st.none() | st.sampled_from(PHRASES) | lines,
)

url_hosts = st.one_of(
    st.sampled_from(
        [
            "example.com",
            "EXAMPLE.com.",
            "xn--bcher-kva.example",
            "bücher.example",
            "127.0.0.1",
            "[::1]",
            "[::ffff:1.2.3.4]",
            "0x7f.1",
            "a..b",
            "-x-.example",
            "مرصاد.example",
            "user:pass@example.org",
            "example.org:0",
            "example.org:99999",
            "example.org:443",
            "example.org:80",
            "",
        ]
    ),
    st.text(max_size=15),
)
url_tails = st.text(alphabet="/?#&=%.:;@!$'()*+,~-_abcXYZ019 \t\u00e9\u0644", max_size=40)
urls = st.one_of(
    st.builds(
        "{}://{}{}".format, st.sampled_from(["http", "https", "HTTP", "ftp", "javascript", ""]), url_hosts, url_tails
    ),
    st.text(max_size=80),
)


def _without_punctuation(text: str) -> bool:
    return not any(unicodedata.category(ch)[0] in "PSC" or (ch.isspace() and ch != " ") for ch in text)


# --- URL validator and normalisers ---------------------------------------------------------------------------------


@FAST
@given(urls)
def test_canonicalize_is_idempotent_and_raises_only_invalid_url(url):
    try:
        canonical = canonicalize(url)
    except InvalidURL:
        return
    assert canonicalize(canonical) == canonical
    assert canonical.startswith(("http://", "https://"))


@FAST
@given(st.text())
def test_fold_is_idempotent(text):
    folded = fold(text)
    assert fold(folded) == folded
    assert folded == folded.strip() and "  " not in folded


@FAST
@given(st.text())
def test_fold_words_keeps_only_words_and_single_spaces(text):
    folded = fold_words(text)
    assert fold_words(folded) == folded
    assert _without_punctuation(folded)
    assert folded == " ".join(folded.split())


@FAST
@given(st.text())
def test_fold_words_is_fold_without_punctuation(text):
    assert fold_words(fold(text)) == fold_words(text)


@settings(max_examples=150, deadline=None)  # the first call loads the markers
@given(documents)
def test_strip_only_removes_and_accounts_for_every_line(doc):
    result = strip(doc)
    source = [line.strip() for line in doc.text.split("\n") if line.strip()]
    kept = [line.strip() for line in result.text.split("\n") if line.strip()]
    removed = [r.line for r in result.removed]
    assert set(kept) <= set(source)
    assert sorted(kept + removed) == sorted(source)


@settings(max_examples=150, deadline=None)  # the first call loads the vocabularies and the language model
@given(documents)
def test_classify_scores_are_probabilities_with_evidence(doc):
    for tag in classify(doc):
        assert 0.0 <= tag.score <= 1.0
        assert tag.kind == "language" or tag.evidence


@FAST
@given(st.binary(max_size=3000), st.none() | st.text(max_size=20))
def test_decode_html_accepts_any_bytes_and_any_label(body, label):
    text, codec = decode_html(body, label)
    assert isinstance(text, str) and codec


# --- random and mutated HTML through the pipeline, in a child process ----------------------------------------------


def _serve(connection) -> None:
    """The child: extract each page it receives; answer "ok", "empty" or the crash's traceback."""
    while True:
        html = connection.recv()
        try:
            extract(html, url="https://news.example/fuzz")
            connection.send("ok")
        except EmptyExtraction:
            connection.send("empty")
        except Exception:  # the whole point: report any crash to the parent
            connection.send(traceback.format_exc())


class Sandbox:
    """A forked worker that runs one extraction at a time, killed when a case overruns its time."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self.connection, child_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(child_end,), daemon=True)
        self.process.start()

    def extract(self, html: str) -> str:
        self.connection.send(html)
        if not self.connection.poll(CASE_SECONDS):
            self.process.kill()
            raise AssertionError(f"extraction hung for over {CASE_SECONDS} s on a {len(html)}-character page")
        return self.connection.recv()

    def close(self) -> None:
        self.process.kill()
        self.process.join()


@pytest.fixture(scope="module")
def sandbox():
    warm_up()  # load markers, vocabularies and the language model once, before the fork
    running = Sandbox()
    yield running
    running.close()


def _mutate(page: str, operations: list[tuple[str, int, int]], garbage: bytes) -> str:
    """``page`` after each (operation, a, b) in turn; a and b are random numbers for positions."""
    for operation, a, b in operations:
        at = a % (len(page) + 1)
        if operation == "truncate":
            page = page[:at]
        elif operation == "shuffle-tags":
            head, *tags = page.split("<")
            start = a % max(len(tags), 1)
            window = tags[start : start + 1 + b % 40]
            random.Random(b).shuffle(window)
            tags[start : start + len(window)] = window
            page = "<".join([head, *tags])
        elif operation == "garbage":  # every byte value as a character: NUL, controls, lone high bytes
            page = page[:at] + garbage.decode("latin-1") + page[at:]
        elif operation == "nest":
            depth = 1 + b % 5000
            tag = ["div", "span", "table", "b", "p", "ul", "li", "a"][b % 8]
            page = page[:at] + f"<{tag}>" * depth + page[at:] + f"</{tag}>" * (b % 2 * depth)
        elif operation == "duplicate":
            page = page[:at] + page[at : at + b % 5000] * 3 + page[at:]
        elif operation == "drop-closers":
            page = page.replace("</", "<", b % 200)
    return page


mutations = st.lists(
    st.tuples(
        st.sampled_from(["truncate", "shuffle-tags", "garbage", "nest", "duplicate", "drop-closers"]),
        st.integers(0, 10**6),
        st.integers(0, 10**6),
    ),
    min_size=1,
    max_size=4,
)

tag_names = st.sampled_from(
    [
        "html",
        "head",
        "body",
        "title",
        "meta",
        "script",
        "style",
        "div",
        "p",
        "article",
        "table",
        "tr",
        "td",
        "a",
        "h1",
        "nav",
        "footer",
        "svg",
        "math",
        "template",
        "!--",
        "![CDATA[",
        "?xml",
        "!DOCTYPE html",
        "br/",
        "iframe",
        "noscript",
        "plaintext",
    ]
)
random_html = st.recursive(
    st.one_of(text_pieces, st.sampled_from(["&amp;", "&#0;", "&#x110000;", "&nbsp", "<", ">", "\0", "\ufeff"])),
    lambda inner: st.builds(
        lambda tag, attrs, body, close: f"<{tag}{attrs}>{''.join(body)}" + (f"</{tag}>" if close else ""),
        tag_names,
        st.sampled_from(["", " lang=ar", ' class="x"', " charset=x-nope", " a='"]),
        st.lists(inner, max_size=5),
        st.booleans(),
    ),
    max_leaves=60,
).map("<!DOCTYPE html><html><body>{}</body></html>".format)
# Wrapped in a document: a bare fragment whose root is an <iframe>, <svg>… crashes clean today
# (test_clean_survives_a_page_that_is_one_embedded_element); unwrap when that is fixed.


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(SEED_PAGES), mutations, st.binary(max_size=200))
def test_mutated_pages_never_crash_or_hang_the_pipeline(sandbox, seed_page, operations, garbage):
    page, _ = decode_html(seed_page.read_bytes())
    outcome = sandbox.extract(_mutate(page, operations, garbage))
    assert outcome in {"ok", "empty"}, outcome


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_html)
def test_random_html_never_crashes_or_hangs_the_pipeline(sandbox, html):
    outcome = sandbox.extract(html)
    assert outcome in {"ok", "empty"}, outcome


@pytest.mark.parametrize("tag", ["iframe", "svg", "math", "embed", "object", "canvas", "audio", "video", "applet"])
def test_clean_survives_a_page_that_is_one_embedded_element(sandbox, tag):
    """An SVG or a player served as text/html: the page's root element is one htmldate removes."""
    assert sandbox.extract(f"<{tag}>HTML") in {"ok", "empty"}


def test_seed_pages_extract_in_the_sandbox(sandbox):
    """The sandbox itself works: unmutated pages come out as articles."""
    assert [sandbox.extract(decode_html(path.read_bytes())[0]) for path in SEED_PAGES] == ["ok"] * len(SEED_PAGES)

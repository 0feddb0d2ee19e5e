"""A real HTTP server on 127.0.0.1 for unit tests, end-to-end runs and benchmarks.

Use it as a context manager (or ``start()``/``stop()``)::

    with FixtureServer(pages_dir=Path("tests/fixtures/fetch")) as server:
        fetch(server.url("/pages/plain.html"), settings)

It is bound at construction (``base_url`` is known at once) and serves from a daemon thread,
one daemon thread per request; ``stop()`` wakes handlers that are waiting (/drip, /slow) so it
returns at once. ``requests`` is the access log: ``(time.time(), method, path with query)``.

Routes (GET):

==============================  ==============================================================
``/pages/<name>``               a file from ``pages_dir`` (default ``<repo>/seeds/pages``);
                                Content-Type from the extension (.html, .htm, .xhtml, .pdf,
                                .png, .txt; else application/octet-stream); 404 if missing
``/status/<code>``              that status with a tiny HTML body; ``?retry_after=V`` sends
                                ``Retry-After: V`` (seconds or an HTTP-date)
``/redirect/<n>``               302 to ``/redirect/<n-1>``; ``/redirect/0`` is a small page
``/redirect-to?url=U``          302 (or ``&status=30x``) to ``U``
``/drip?seconds=N``             headers, then one byte a second for N seconds (default 30)
``/big?mb=N``                   N MB (10^6 bytes) of HTML, streamed in 64 KB chunks, with a
                                Content-Length; ``&length=0`` leaves it out (read to close)
``/gzip-big?mb=N``              a small gzip body (Content-Encoding: gzip) decoding to N MB
``/pdf``                        a tiny real-looking PDF, application/pdf
``/truncated``                  promises 1000 bytes, sends 10, closes: a broken transfer
``/slow?seconds=N``             waits N seconds (default 30), then serves an article page
``/flaky?fail=K&key=X``         the first K requests for key X answer 503, later ones a page
``/article/<anything>``         a generated English news article (~3 KB), unique per path
``/headers``                    the request headers, one per line in a <pre>
==============================  ==============================================================

On every route with a body, ``?ctype=T`` replaces the Content-Type (``?ctype=`` sends none),
``?charset=C`` appends ``; charset=C`` to it and ``?encoding=E`` sends ``Content-Encoding: E``
(whatever the body is).

Run ``python tests/fixture_server.py --port 8000`` to serve by hand (demos, benchmarks).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import threading
import time
import zlib
from collections import Counter
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_PAGES_DIR = Path(__file__).resolve().parent.parent / "seeds" / "pages"
CONTENT_TYPES = {
    ".html": "text/html",
    ".htm": "text/html",
    ".xhtml": "application/xhtml+xml",
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".txt": "text/plain",
}
MEGABYTE = 1_000_000
CHUNK = 64 * 1024
PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
    b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)


class FixtureServer:
    def __init__(self, pages_dir: Path | None = None, port: int = 0, host: str = "127.0.0.1"):
        """``host``: another loopback address (127.0.0.2…) makes another site, as ``site_of`` sees it."""
        self.pages_dir = Path(pages_dir or DEFAULT_PAGES_DIR)
        self.requests: list[tuple[float, str, str]] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.flaky_counts: Counter[str] = Counter()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.fixture = self
        self.base_url = f"http://{host}:{self._httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def start(self) -> FixtureServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fixture-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._thread:
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def __enter__(self) -> FixtureServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_request(self, method: str, path: str) -> None:
        with self.lock:
            self.requests.append((time.time(), method, path))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # bulk tests open many connections at once
    fixture: FixtureServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        fixture = self.server.fixture
        fixture.log_request("GET", self.path)
        parts = urlsplit(self.path)
        self.query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        route, _, rest = parts.path.lstrip("/").partition("/")
        handler = getattr(self, f"route_{route.replace('-', '_')}", None)
        try:
            if handler:
                handler(unquote(rest))
            else:
                self.send_body(404, b"<p>no such route</p>")
        except (ValueError, KeyError) as exc:  # a malformed or missing query parameter
            self.send_body(400, f"<p>bad request: {exc!r}</p>".encode())
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (size cap, timeout): expected

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the access log is ``FixtureServer.requests``."""

    def send_body(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_head(status, content_type, {"Content-Length": str(len(body)), **(headers or {})})
        self.wfile.write(body)

    def send_head(self, status: int, content_type: str, headers: dict[str, str]) -> None:
        content_type = self.query.get("ctype", content_type)
        if "charset" in self.query:
            content_type += f"; charset={self.query['charset']}"
        if "encoding" in self.query:
            headers = {**headers, "Content-Encoding": self.query["encoding"]}
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def wait(self, seconds: float) -> bool:
        """Sleep, waking early when the server stops; True if it did (the handler should quit)."""
        return self.server.fixture.stopping.wait(seconds)

    def route_pages(self, name: str) -> None:
        root = self.server.fixture.pages_dir.resolve()
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            self.send_body(404, b"<p>no such page</p>")
            return
        self.send_body(200, path.read_bytes(), CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream"))

    def route_status(self, code: str) -> None:
        status = int(code)
        headers = {"Retry-After": self.query["retry_after"]} if "retry_after" in self.query else {}
        self.send_body(status, b"" if status in {204, 304} else f"<p>status {status}</p>".encode(), headers=headers)

    def route_redirect(self, hops: str) -> None:
        left = int(hops)
        if left > 0:
            self.send_body(302, b"", headers={"Location": f"/redirect/{left - 1}"})
        else:
            self.send_body(200, b"<!DOCTYPE html><title>End</title><p>End of the redirect chain.</p>")

    def route_redirect_to(self, _: str) -> None:
        self.send_body(int(self.query.get("status", 302)), b"", headers={"Location": self.query["url"]})

    def route_drip(self, _: str) -> None:
        seconds = int(self.query.get("seconds", 30))
        self.send_head(200, "text/html", {"Content-Length": str(seconds)})
        for _ in range(seconds):
            self.wfile.write(b".")
            self.wfile.flush()
            if self.wait(1):
                return

    def route_big(self, _: str) -> None:
        size = int(float(self.query.get("mb", 50)) * MEGABYTE)
        headers = {"Content-Length": str(size)} if self.query.get("length") != "0" else {}
        self.send_head(200, "text/html; charset=utf-8", headers)
        for chunk in big_page_chunks(size):
            self.wfile.write(chunk)

    def route_gzip_big(self, _: str) -> None:
        body = gzipped_big_page(int(float(self.query.get("mb", 50)) * MEGABYTE))
        self.send_body(200, body, headers={"Content-Encoding": "gzip"})

    def route_deflate_big(self, _: str) -> None:
        body = deflated_big_page(int(float(self.query.get("mb", 50)) * MEGABYTE), raw=self.query.get("raw") == "1")
        self.send_body(200, body, headers={"Content-Encoding": "deflate"})

    def route_brotli_big(self, _: str) -> None:
        body = brotli_big_page(int(float(self.query.get("mb", 50)) * MEGABYTE))
        self.send_body(200, body, headers={"Content-Encoding": "br"})

    def route_wrong_length(self, _: str) -> None:
        self.send_head(200, "text/html; charset=utf-8", {"Content-Length": self.query["claim"]})
        self.wfile.write(article_page("wrong-length"))
        self.close_connection = True

    def route_endless(self, _: str) -> None:
        delay = float(self.query.get("delay", 0))
        self.send_chunked_head()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(HTML_HEAD), HTML_HEAD))
        chunk = b"<p>" + b"and it goes on. " * 256 + b"</p>\n"
        while not self.wait(delay):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    def route_bad_chunked(self, _: str) -> None:
        self.send_chunked_head()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(HTML_HEAD), HTML_HEAD))
        self.wfile.write(b"zz; not a size\r\n<p>broken</p>\r\n0\r\n\r\n")

    def route_binary(self, _: str) -> None:
        self.send_body(200, random.Random(7).randbytes(CHUNK), "text/html")

    def route_nul_bytes(self, _: str) -> None:
        page = article_page("nul-bytes")
        at = 200 if self.query.get("at") == "head" else page.index(b"</article>")
        self.send_body(200, page[:at] + b"\0\0 NUL \0" + page[at:])

    def route_deep(self, _: str) -> None:
        levels = int(self.query.get("levels", 10_000))
        self.send_body(
            200,
            b"<!DOCTYPE html><html><body>"
            + b"<div>" * levels
            + article_page("deep")
            + b"</div>" * levels
            + b"</body></html>",
        )

    def route_encoded(self, _: str) -> None:
        codec = self.query.get("codec", "windows-1256")
        text = TURKISH_TEXT if self.query.get("lang") == "tr" else ARABIC_TEXT
        self.send_body(200, legacy_page(text, self.query.get("label", codec)).encode(codec), "text/html")

    def route_mixed_encoding(self, _: str) -> None:
        half = ARABIC_TEXT.split("\n")
        body = (
            f'<!DOCTYPE html><html lang="ar"><body><article><p>{half[0]}</p>'.encode()
            + f"<p>{half[1]}</p></article></body></html>".encode("windows-1256")
        )
        self.send_body(200, body, "text/html")

    def send_chunked_head(self) -> None:
        self.protocol_version = "HTTP/1.1"  # chunked framing is HTTP/1.1 only
        self.send_head(200, "text/html; charset=utf-8", {"Transfer-Encoding": "chunked", "Connection": "close"})
        self.close_connection = True

    def route_pdf(self, _: str) -> None:
        self.send_body(200, PDF, "application/pdf")

    def route_truncated(self, _: str) -> None:
        self.send_head(200, "text/html", {"Content-Length": "1000"})
        self.wfile.write(b"<p>cut off")
        self.close_connection = True

    def route_slow(self, _: str) -> None:
        if not self.wait(float(self.query.get("seconds", 30))):
            self.send_body(200, article_page(self.path))

    def route_flaky(self, _: str) -> None:
        fixture, key = self.server.fixture, self.query.get("key", "")
        with fixture.lock:
            fixture.flaky_counts[key] += 1
            attempt = fixture.flaky_counts[key]
        if attempt <= int(self.query.get("fail", 1)):
            self.send_body(503, b"<p>try again later</p>")
        else:
            self.send_body(200, article_page(f"flaky/{key}"))

    def route_article(self, slug: str) -> None:
        self.send_body(200, article_page(slug))

    def route_headers(self, _: str) -> None:
        lines = "\n".join(f"{name}: {value}" for name, value in self.headers.items())
        self.send_body(200, f"<!DOCTYPE html><title>Headers</title><pre>\n{lines}\n</pre>".encode())


def big_page_chunks(size: int):
    """``size`` bytes of valid HTML, in chunks, without holding the page in memory."""
    head, tail = b"<!DOCTYPE html><html><head><title>Big</title></head><body>\n", b"</body></html>\n"
    paragraph = b"<p>" + b"A long page of filler text that keeps going. " * 20 + b"</p>\n"
    block = paragraph * (CHUNK // len(paragraph) + 1)
    yield head
    left = size - len(head) - len(tail)
    while left > 0:
        yield block[:left]
        left -= len(block)
    yield tail


@lru_cache(maxsize=4)
def gzipped_big_page(size: int) -> bytes:
    return _zlib_compressed(size, 31)  # wbits 31: gzip container


@lru_cache(maxsize=4)
def deflated_big_page(size: int, raw: bool = False) -> bytes:
    return _zlib_compressed(size, -15 if raw else 15)  # 15: zlib container; -15: bare deflate


@lru_cache(maxsize=4)
def brotli_big_page(size: int) -> bytes:
    """Cached: compressing a gigabyte takes seconds, longer than a fetch may wait for its answer."""
    import brotli

    compressor = brotli.Compressor(quality=5)
    return b"".join(compressor.process(chunk) for chunk in big_page_chunks(size)) + compressor.finish()


def _zlib_compressed(size: int, wbits: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return b"".join(compressor.compress(chunk) for chunk in big_page_chunks(size)) + compressor.flush()


HTML_HEAD = b"<!DOCTYPE html><html><head><title>Endless</title></head><body>\n"
ARABIC_TEXT = (
    "قال المتحدث باسم خفر السواحل إن الدورية البحرية المشتركة ستستمر حتى نهاية الشهر الجاري.\n"
    "وأضاف أن السفن ستعود إلى الميناء بعد انتهاء التدريب على عمليات البحث والإنقاذ في المياه الإقليمية."
)
TURKISH_TEXT = (
    "Sahil güvenlik sözcüsü, ortak deniz devriyesinin ay sonuna kadar süreceğini söyledi.\n"
    "Gemilerin, arama ve kurtarma eğitimi bittikten sonra limana döneceğini de ekledi."
)


def legacy_page(text: str, charset_label: str) -> str:
    """A small article page declaring ``charset_label``, with ``text`` as its paragraphs."""
    paragraphs = "\n".join(f"<p>{line}</p>" for line in text.split("\n"))
    return (
        f'<!DOCTYPE html><html><head><meta charset="{charset_label}"><title>{text[:30]}</title></head>'
        f"<body><article>{paragraphs}</article></body></html>"
    )


SUBJECTS = [
    "The defence ministry",
    "A government spokesman",
    "Officials in Ankara",
    "The coast guard",
    "Port authorities in Misrata",
    "Analysts in Tripoli",
    "A parliamentary committee",
    "The navy",
    "Regional diplomats",
    "The energy ministry",
    "A shipyard consortium",
    "Opposition deputies",
]
VERBS = [
    "announced",
    "confirmed",
    "reviewed",
    "postponed",
    "welcomed",
    "questioned",
    "outlined",
    "extended",
    "criticised",
    "approved",
]
OBJECTS = [
    "a training programme for naval officers",
    "the maintenance contract for patrol boats",
    "new rules on maritime patrols",
    "a joint exercise in the eastern Mediterranean",
    "the budget for coastal surveillance",
    "plans to modernise a shipyard",
    "an agreement on border security",
    "talks on fuel smuggling",
    "a delegation's visit to the port",
    "the purchase of surveillance drones",
]
TAILS = [
    "on Tuesday",
    "after a week of talks",
    "in a short statement",
    "despite objections from the opposition",
    "according to local media",
    "ahead of the summer season",
    "without giving further details",
    "during a visit to the capital",
    "at a press conference",
    "in a letter to parliament",
]


@lru_cache(maxsize=1024)
def article_page(slug: str) -> bytes:
    """A plausible English news page, the same for the same ``slug`` and different across slugs."""
    rng = random.Random(hashlib.sha256(slug.encode()).digest())

    def sentence() -> str:
        return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(TAILS)}."

    title = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} ({slug})"
    paragraphs = "\n".join(f"<p>{' '.join(sentence() for _ in range(4))}</p>" for _ in range(7))
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>{title}</title></head>\n'
        f'<body>\n<nav><a href="/">Home</a> | <a href="/world">World</a> | <a href="/about">About</a></nav>\n'
        f"<article>\n<h1>{title}</h1>\n{paragraphs}\n</article>\n"
        f"<footer>Copyright Fixture News. All rights reserved.</footer>\n</body>\n</html>\n"
    ).encode()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Serve the test fixture routes on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--pages-dir", type=Path, default=DEFAULT_PAGES_DIR)
    arguments = parser.parse_args()
    with FixtureServer(arguments.pages_dir, arguments.port) as server:
        print(f"serving {server.base_url} (pages from {server.pages_dir}); Ctrl-C stops")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass

"""A small web site on 127.0.0.1 whose documents the tests replace between polls.

``tests/fixture_server.py`` serves fixed routes; feeds need documents that change and a
server that answers conditional GETs, so this one keeps a table of path -> ``Document``:

    with FeedSite() as site:
        site.put_fixture("/feed.xml", "rss-1.xml")
        poll(site.url("/feed.xml"), settings=SETTINGS)

A document's ETag is a hash of its body (on unless ``etag=False``); its Last-Modified is the
``modified`` time given to ``put`` (none unless given). If-None-Match is honoured first, then
If-Modified-Since (RFC 9110 §13.2.2). ``{base}`` in a fixture becomes the server's base URL.
Paths not in the table answer 404; ``put_status`` makes a path answer a bare status.
``log`` records a ``Request(path, status, if_none_match, if_modified_since)`` per request, and
``access_log`` an ``Access(at, path, status)``, ``at`` being when it arrived (``time.time()``), so
tests can measure the rate a host was asked at.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

FIXTURES = Path(__file__).resolve().parent / "feed_fixtures"


@dataclass(frozen=True)
class Document:
    body: bytes
    content_type: str
    etag: str | None
    modified: datetime | None
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()


class Request(NamedTuple):
    path: str
    status: int
    if_none_match: str | None
    if_modified_since: str | None


class Access(NamedTuple):
    at: float
    path: str
    status: int


class FeedSite:
    def __init__(self) -> None:
        self.documents: dict[str, Document] = {}
        self.log: list[Request] = []
        self.access_log: list[Access] = []
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.site = self
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="feed-site", daemon=True
        )

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def put(
        self,
        path: str,
        body: bytes | str,
        content_type: str = "application/xml; charset=utf-8",
        *,
        etag: bool = True,
        modified: datetime | None = None,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        tag = f'"{hashlib.sha256(data).hexdigest()[:16]}"' if etag else None
        with self.lock:
            self.documents[path] = Document(data, content_type, tag, modified)

    def put_fixture(
        self, path: str, name: str, content_type: str = "application/xml; charset=utf-8", **options
    ) -> None:
        text = (FIXTURES / name).read_text(encoding="utf-8").replace("{base}", self.base_url)
        self.put(path, text, content_type, **options)

    def put_status(self, path: str, status: int, **headers: str) -> None:
        with self.lock:
            self.documents[path] = Document(
                f"<p>status {status}</p>".encode(), "text/html", None, None, status, tuple(headers.items())
            )

    def requests_for(self, path: str) -> list[Request]:
        with self.lock:
            return [entry for entry in self.log if entry[0] == path]

    def __enter__(self) -> FeedSite:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._thread.join()
        self._httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        arrived = time.time()
        site: FeedSite = self.server.site
        with site.lock:
            document = site.documents.get(self.path)
        if_none_match, if_modified_since = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
        if document is None:
            status, body, headers = 404, b"<p>no such document</p>", {"Content-Type": "text/html"}
        elif document.status != 200:
            status, body, headers = (
                document.status,
                document.body,
                {"Content-Type": document.content_type, **dict(document.headers)},
            )
        else:
            headers = {"Content-Type": document.content_type}
            if document.etag:
                headers["ETag"] = document.etag
            if document.modified:
                headers["Last-Modified"] = format_datetime(document.modified, usegmt=True)
            status, body = (
                (304, b"") if _not_modified(document, if_none_match, if_modified_since) else (200, document.body)
            )
        with site.lock:
            site.log.append(Request(self.path, status, if_none_match, if_modified_since))
            site.access_log.append(Access(arrived, self.path, status))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the access log is ``FeedSite.log``."""


def _not_modified(document: Document, if_none_match: str | None, if_modified_since: str | None) -> bool:
    if if_none_match is not None:
        return document.etag is not None and document.etag in {tag.strip() for tag in if_none_match.split(",")}
    if if_modified_since and document.modified:
        try:
            return document.modified <= parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
    return False

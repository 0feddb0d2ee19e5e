"""Watches end to end on a real stack (both databases), with real webhook receivers and SMTP on 127.0.0.1.

One stack per database runs every case at once (the slow ones are waits: a receiver down for 20 s,
one answering 500 until the attempts run out), then 1,000 watches meet 500 items, each announced twice.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from standardwebhooks import Webhook, WebhookVerificationError

from tests.fixture_server import FixtureServer, article_page
from tests.stack_helpers import free_port, json_lines, mirsad, push_all, wait_final, wait_until
from workers.core.document import Document
from workers.core.settings import Settings
from workers.core.urls import canonicalize, url_hash
from workers.runtime import arrivals
from workers.storage import watches
from workers.storage.db import session_scope
from workers.storage.models import Delivery, WatchMatch
from workers.storage.store import store_item

pytestmark = pytest.mark.integration

SMTP_PORT = free_port()
STACK_ENV = {
    "MIRSAD_WATCH_SWEEP_AFTER": "2",
    "MIRSAD_WEBHOOK_TIMEOUT": "3",
    "MIRSAD_WEBHOOK_MAX_ATTEMPTS": "8",
    # Webhook retries back off from 2 s to 8 s: eight attempts span 23 s at least, past the 20 s outage.
    "MIRSAD_RETRY_BACKOFF": "2",
    "MIRSAD_RETRY_BACKOFF_MAX": "8",
    "MIRSAD_SMTP_URL": f"smtp://127.0.0.1:{SMTP_PORT}",
}


class Receiver:
    """A webhook receiver: answers ``status``; ``hold_first`` keeps the first request unanswered until released.

    ``delivered`` holds (headers, body) of every request answered 2xx."""

    def __init__(self, port: int = 0, status: int = 200, hold_first: bool = False):
        self.status = status
        self.hold_first = hold_first
        self.delivered: list[tuple[dict[str, str], bytes]] = []
        self.requests = 0
        self.held = threading.Event()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests += 1
                if receiver.hold_first and not receiver.held.is_set():
                    receiver.held.set()
                    receiver.release.wait(60)
                    return  # never answered: the sender was killed meanwhile
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if 200 <= receiver.status < 300:
                    receiver.delivered.append(({k.lower(): v for k, v in self.headers.items()}, body))

            def log_message(self, *args):
                pass

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._handler = Handler
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def items(self) -> list[int]:
        return [json.loads(body)["data"]["item"]["id"] for _, body in self.delivered if b'"watch.match"' in body]


class Mailbox:
    def __init__(self):
        self.messages: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content.decode("utf-8", "replace"))
        return "250 OK"


@pytest.fixture(scope="module")
def mailbox():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("watch-pages")


def write_page(pages: Path, name: str, slug: str, sentence: str) -> str:
    """A generated article (unique per ``slug``) with ``sentence`` as one more paragraph; its file name."""
    html = article_page(slug).replace(b"</article>", f"<p>{sentence}</p>\n</article>".encode())
    (pages / f"{name}.html").write_bytes(html)
    return f"/pages/{name}.html"


def about(word: str) -> str:
    return (
        f"Officials said the {word} programme would be reviewed by the joint committee next week, the statement added."
    )


def add_watch(env: dict[str, str], name: str, query: str, *options: str) -> dict:
    result = mirsad("watches", "add", name, query, *options, "--json", env=env)
    assert result.returncode == 0, result.stderr
    [created] = json_lines(result.stdout)
    assert created["secret"].startswith("whsec_")
    return created


def state_of(database_url: str, watch_id: int) -> list[Delivery]:
    with session_scope(database_url) as session:
        return list(session.scalars(select(Delivery).where(Delivery.watch_id == watch_id)))


def test_alerts_signed_retried_dead_story_aware_and_surviving_a_killed_worker(stack, pages, mailbox):
    database_url, env, running, _log = stack
    mailbox.messages.clear()  # the server outlives each database's stack
    site = FixtureServer(pages_dir=pages).start()
    story_sites = [FixtureServer(pages_dir=pages, host=f"127.0.0.{n}").start() for n in range(2, 7)]
    good, failing, held = Receiver().start(), Receiver(status=500).start(), Receiver(hold_first=True).start()
    down = Receiver()  # its port is known, nothing listens there for the first 20 s
    try:
        alpha = add_watch(env, "alpha", "zircon falcon", "--webhook", good.url)
        bravo = add_watch(env, "bravo", "obsidian", "--webhook", down.url)
        charlie = add_watch(env, "charlie", "quartz", "--webhook", failing.url)
        delta = add_watch(env, "delta", "basalt", "--webhook", good.url, "--email", "analyst@example.org")
        echo = add_watch(env, "echo", "garnet", "--webhook", held.url)
        # Killed between store and delivery: the delivery worker dies with the webhook request in flight.
        [garnet] = push_all(database_url, [site.url(write_page(pages, "garnet", "garnet", about("garnet")))]).values()
        wait_until(held.held.is_set, 90, "the held receiver to get its first request", interval=0.01)
        os.killpg(running.processes["fetch-worker"].pid, signal.SIGKILL)
        running.processes["fetch-worker"].wait()
        held.release.set()
        running.spawn("fetch-worker")

        story_page = write_page(pages, "basalt", "basalt-story", about("basalt"))
        urls = [
            site.url(write_page(pages, "match", "zircon", about("zircon falcon"))),
            site.url(write_page(pages, "nomatch", "other", about("granite eagle"))),
            site.url(write_page(pages, "obsidian", "obsidian", about("obsidian"))),
            site.url(write_page(pages, "quartz", "quartz", about("quartz"))),
        ]
        started = time.monotonic()
        results = push_all(database_url, urls)
        # Five reports of one story, one after another (each outlet its own site).
        for story_site in story_sites:
            [report] = push_all(database_url, [story_site.url(story_page)]).values()
            wait_final(database_url, [report.url_id], timeout=60)
        records = wait_final(database_url, [r.url_id for r in results.values()] + [garnet.url_id], timeout=90)
        assert all(r.state == "stored" for r in records.values()), [(r.url, r.last_error) for r in records.values()]
        item_of = {r.url: r.item_id for r in records.values()}

        wait_until(lambda: time.monotonic() - started > 20, 30, "the outage of 20 s")
        down.start()
        wait_until(lambda: len(good.delivered) >= 2 and down.delivered and held.delivered, 90, "the alerts")
        wait_until(
            lambda: any(d.state == "dead" for d in state_of(database_url, charlie["id"])), 120, "the dead delivery"
        )
        time.sleep(2)  # anything sent twice would have arrived by now

        # Exactly one signed delivery for the matching page, none for the other; a tampered body fails.
        assert item_of[urls[1]] not in good.items() + down.items() + failing.items() + held.items()
        alpha_bodies = [(h, b) for h, b in good.delivered if b in _bodies(good, "alpha")]
        assert len(alpha_bodies) == 1
        headers, body = alpha_bodies[0]
        payload = Webhook(alpha["secret"]).verify(body, headers)
        assert payload["data"]["item"]["id"] == item_of[urls[0]]
        assert payload["data"]["item"]["link"].endswith(f"/items/{item_of[urls[0]]}")
        assert {"url", "title", "language", "site", "published_at", "tags", "story"} <= set(payload["data"]["item"])
        with pytest.raises(WebhookVerificationError):
            Webhook(alpha["secret"]).verify(body.replace(b"zircon", b"zircoN"), headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(bravo["secret"]).verify(body, headers)  # another watch's secret

        # The receiver down for 20 s: the delivery arrived once, after retries.
        assert len(down.delivered) == 1 and down.items() == [item_of[urls[2]]]
        [bravo_delivery] = state_of(database_url, bravo["id"])
        assert bravo_delivery.state == "sent" and bravo_delivery.attempts > 1

        # 500 forever: dead after the attempts, with the reason; listed; sent again once it is fixed.
        [dead] = state_of(database_url, charlie["id"])
        assert dead.attempts == 8 and "HTTP 500" in dead.last_error and "after 8 attempts" in dead.last_error
        listed = json.loads(mirsad("alerts", "--dead", "--json", env=env).stdout)
        assert [d["id"] for d in listed] == [dead.id] and listed[0]["state"] == "dead"
        failing.status = 200
        assert mirsad("alerts", "resend", str(dead.id), env=env).returncode == 0
        wait_until(lambda: failing.delivered, 30, "the resent delivery")

        # The killed worker: the alert still arrived, once (one answered request, the same message id).
        assert held.items() == [item_of[garnet.url]] and len(held.delivered) == 1
        assert held.requests == 2

        # Five reports of one story: one alert, four in the digest.
        delta_alerts = [b for b in _bodies(good, "delta") if json.loads(b)["type"] == "watch.match"]
        assert len(delta_alerts) == 1
        with session_scope(database_url) as session:
            delta_matches = session.scalars(select(WatchMatch).where(WatchMatch.watch_id == delta["id"])).all()
        assert len(delta_matches) == 5 and sum(m.alerted for m in delta_matches) == 1
        assert len({m.story_id for m in delta_matches}) == 1
        result = mirsad("watches", "digest", "delta", env=env)
        assert result.returncode == 0, result.stderr
        wait_until(lambda: mailbox.messages, 10, "the digest e-mail")
        [message] = mailbox.messages
        assert "To: analyst@example.org" in message and "4 item(s) matched" in message and "in 1 story" in message
        assert all(f"/items/{m.item_id}" in message for m in delta_matches if not m.alerted)

        shown = json.loads(mirsad("watches", "show", "delta", "--json", env=env).stdout)
        assert shown["counts"]["matches"] == 5 and shown["counts"]["sent"] == 1 and "secret" not in shown
        assert not [d for d in state_of(database_url, alpha["id"]) if d.state != "sent"]
        assert echo["id"] and not any(d.state != "sent" for d in state_of(database_url, echo["id"]))
    finally:
        for server in (good, failing, held, down):
            server.stop()
        for fixture in (site, *story_sites):
            fixture.stop()


def test_a_thousand_watches_and_500_items_no_missed_and_no_duplicate_deliveries(stack):
    """Item j mentions the words of watches 2j and 2j+1 only: every watch must get exactly its one alert.

    The items are stored as the store stage stores them (the page stages are not what is tested here),
    and each is announced twice, as a retried task would: the stack's workers match and deliver."""
    database_url, env, _running, _log = stack
    receiver = Receiver().start()
    settings = Settings.from_env({**os.environ, **env})
    try:
        with session_scope(database_url) as session:
            made = {watches.add(session, f"load-{n}", _word(n), settings, receiver.url).id: n for n in range(1000)}
        item_of = {}
        for j in range(500):
            url = f"https://load.example.org/news/{j}"
            document = Document(
                text=re.sub(r"<[^>]+>", " ", article_page(f"load-{j}").decode())
                + about(f"{_word(2 * j)} and {_word(2 * j + 1)}"),
                title=f"Report {j}",
                language="en",
                url=url,
            )
            with session_scope(database_url) as session:
                stored = store_item(session, url_hash(canonicalize(url)), url, document)
                watches.enqueue_item(session, stored.item_id)
            item_of[j] = stored.item_id
        for item_id in [*item_of.values(), *item_of.values()]:
            arrivals.announce(item_id)

        def all_sent() -> bool:
            with session_scope(database_url) as session:
                return (
                    session.scalar(
                        select(func.count()).where(Delivery.watch_id.in_(list(made)), Delivery.state == "sent")
                    )
                    == 1000
                )

        wait_until(all_sent, 240, "1,000 deliveries", interval=1)
        time.sleep(2)  # anything sent twice would have arrived by now
        by_watch: dict[str, list[int]] = {}
        for _headers, body in receiver.delivered:
            data = json.loads(body)["data"]
            by_watch.setdefault(data["watch"]["name"], []).append(data["item"]["id"])
        assert by_watch == {f"load-{n}": [item_of[n // 2]] for n in range(1000)}
        assert len({h["webhook-id"] for h, _ in receiver.delivered}) == len(receiver.delivered) == 1000
    finally:
        receiver.stop()


def _bodies(receiver: Receiver, watch_name: str) -> list[bytes]:
    return [body for _, body in receiver.delivered if json.loads(body)["data"]["watch"]["name"] == watch_name]


def _word(n: int) -> str:
    """A made-up word per number ("qbabax"…) that no generated article contains, ending in x so that no
    stemmer (Turkish strips a final -a or -e) makes two of them one."""
    letters = "bdfgklmnprstvz"
    vowels = "aeiou"
    word = ""
    for _ in range(3):
        n, consonant = divmod(n, len(letters))
        n, vowel = divmod(n, len(vowels))
        word += letters[consonant] + vowels[vowel]
    return "q" + word + "x"

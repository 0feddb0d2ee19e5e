"""Politeness: per-host turns shared through Redis, robots.txt, slowing down and pausing a host.

The unit tests take turns against the real Redis (the tests' database) and a real local site; the
end-to-end tests run two real fetch workers and measure the rate from the site's access log.
"""

from __future__ import annotations

import os
import subprocess
import time
from itertools import pairwise

import pytest
import redis
from sqlalchemy import select

from tests.feed_server import FeedSite
from workers.core.errors import ConnectionFailed, HostNotReady, RobotsDisallowed, ServerBusy
from workers.core.settings import Settings
from workers.intake import politeness
from workers.runtime.push import push
from workers.runtime.stack import FETCH_WORKER, mirsad_command
from workers.storage.db import forget_engines, migrate, session_scope
from workers.storage.models import UrlEvent, UrlRecord

SETTINGS = Settings(
    redis_url=os.environ["MIRSAD_REDIS_URL"],
    allow_private_hosts="127.0.0.0/8",
    host_interval=0.5,
    total_timeout=5,
    read_timeout=3,
    connect_timeout=2,
)
ARTICLE = (
    "<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
    "<p>Türkiye ile Libya arasında askeri eğitim anlaşması imzalandı. Heyetler Trablus'ta bir araya geldi ve "
    "eğitim programının ayrıntılarını görüştü. Anlaşma sahil güvenlik ve deniz kuvvetlerini kapsıyor.</p>"
    "</article></body></html>"
)
TOLERANCE = 0.02  # seconds: the server stamps arrivals after the socket accepted them


@pytest.fixture
def site():
    redis.Redis.from_url(SETTINGS.redis_url).flushdb()
    with FeedSite() as feed_site:
        yield feed_site


def ready_in(url: str, settings) -> float:
    """Seconds until the host is free (0.0: now), without taking the turn: what the tests observe."""
    return politeness._turn(url, settings, take=False)


def serve_article(site: FeedSite, path: str) -> str:
    site.put(path, ARTICLE.format(title=path.strip("/")), "text/html; charset=utf-8")
    return site.url(path)


# -- turns ---------------------------------------------------------------------------------------------------


def test_a_host_gives_one_turn_per_interval_and_other_hosts_are_independent(site):
    url = site.url("/a")
    assert politeness.take_turn(url, SETTINGS) == 0.0
    assert politeness.take_turn(url, SETTINGS) == 0.5  # taken, request not over yet: come back in an interval
    with politeness.observing(url, SETTINGS):  # the request is over: the interval starts now
        pass
    wait = politeness.take_turn(url, SETTINGS)
    assert 0.4 < wait <= 0.5
    assert politeness.take_turn("http://127.0.0.1:1/elsewhere", SETTINGS) == 0.0
    assert ready_in(url, SETTINGS) > 0  # asking does not take the turn…
    time.sleep(wait)
    assert ready_in(url, SETTINGS) == 0.0
    assert politeness.take_turn(url, SETTINGS) == 0.0  # …which is still there to take


def test_the_crawl_delay_of_robots_txt_becomes_the_hosts_interval(site):
    site.put("/robots.txt", "User-agent: *\nCrawl-delay: 2\n", "text/plain")
    rules, read_now = politeness.robots_rules(site.url("/a"), SETTINGS)
    assert read_now and rules.crawl_delay(SETTINGS.user_agent) == 2
    assert politeness.robots_rules(site.url("/b"), SETTINGS)[1] is False  # cached
    time.sleep(ready_in(site.url("/a"), SETTINGS))
    assert politeness.take_turn(site.url("/a"), SETTINGS) == 0.0
    with politeness.observing(site.url("/a"), SETTINGS):
        pass
    assert 1.9 < politeness.take_turn(site.url("/a"), SETTINGS) <= 2.0
    assert [request.path for request in site.log] == ["/robots.txt"]


def test_429_with_retry_after_pauses_the_host_and_doubles_its_interval(site):
    url = site.url("/a")
    politeness.note_failure(url, ServerBusy("HTTP 429", 429, retry_after=1.5), SETTINGS)
    assert 1.4 < ready_in(url, SETTINGS) <= 1.5
    time.sleep(1.5)
    assert politeness.take_turn(url, SETTINGS) == 0.0
    with politeness.observing(url, SETTINGS):
        pass
    assert 0.9 < politeness.take_turn(url, SETTINGS) <= 1.0  # 2 × 0.5 s


def test_a_host_that_keeps_failing_is_paused_and_a_success_ends_the_run(site):
    url = site.url("/a")
    for _ in range(politeness.PAUSE_AFTER_FAILURES - 1):
        politeness.note_failure(url, ConnectionFailed("refused"), SETTINGS)
    politeness.note_success(url, SETTINGS)
    politeness.note_failure(url, ConnectionFailed("refused"), SETTINGS)
    assert ready_in(url, SETTINGS) == 0.0  # the run started again
    for _ in range(politeness.PAUSE_AFTER_FAILURES - 1):
        politeness.note_failure(url, ConnectionFailed("refused"), SETTINGS)
    assert politeness.PAUSE_FOR - 1 < ready_in(url, SETTINGS) <= politeness.PAUSE_FOR


def test_a_busy_host_is_not_asked_and_the_caller_learns_how_long_to_wait(site):
    fetch_fn = politeness.polite_fetch_fn(SETTINGS)
    serve_article(site, "/a")
    assert fetch_fn(site.url("/a"), {}).status == 200  # robots.txt (404: no rules), then the page, on one turn
    assert [request.path for request in site.log] == ["/robots.txt", "/a"]
    with pytest.raises(HostNotReady) as busy:
        fetch_fn(site.url("/a"), {})
    assert 0 < busy.value.retry_after <= 0.5 and len(site.log) == 2
    assert politeness.requeue_delay(busy.value.retry_after, SETTINGS) <= politeness.MAX_REQUEUE_DELAY
    assert politeness.requeue_delay(3600, SETTINGS) == politeness.MAX_REQUEUE_DELAY


def test_a_url_robots_txt_disallows_is_refused_without_a_request(site):
    site.put("/robots.txt", "User-agent: Mirsad\nDisallow: /private/\n", "text/plain")
    serve_article(site, "/private/a")
    with pytest.raises(RobotsDisallowed, match="disallows"):
        politeness.fetch_page(site.url("/private/a"), SETTINGS)
    with pytest.raises(RobotsDisallowed):
        politeness.polite_fetch_fn(SETTINGS, wait_up_to=1)(site.url("/private/a"), {})
    assert [request.path for request in site.log] == ["/robots.txt"]


def test_first_contact_reads_robots_txt_and_the_page_on_one_turn_and_the_interval_follows(site):
    url = serve_article(site, "/a")
    assert politeness.take_turn(url, SETTINGS) == 0.0  # what the fetch task's gate does
    started = time.monotonic()
    politeness.fetch_page(url, SETTINGS)
    assert time.monotonic() - started < SETTINGS.host_interval  # no sleep in the fetch thread
    assert [request.path for request in site.access_log] == ["/robots.txt", "/a"]
    assert 0.4 < politeness.take_turn(url, SETTINGS) <= 0.5  # the next request waits an interval after the page


def test_a_crawl_delay_read_on_first_contact_sends_the_page_to_the_next_turn(site):
    site.put("/robots.txt", "User-agent: *\nCrawl-delay: 2\n", "text/plain")
    url = serve_article(site, "/a")
    assert politeness.take_turn(url, SETTINGS) == 0.0
    with pytest.raises(HostNotReady) as busy:
        politeness.fetch_page(url, SETTINGS)
    assert busy.value.retry_after == 2 and [request.path for request in site.access_log] == ["/robots.txt"]
    assert 1.9 < politeness.take_turn(url, SETTINGS) <= 2.0


# -- real workers --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fetch_workers(tmp_path_factory):
    """Two fetch worker processes (threads pool each) on a fresh SQLite database; yields (database_url, logs)."""
    root = tmp_path_factory.mktemp("politeness")
    database_url = f"sqlite:///{root}/mirsad.db"
    migrate(database_url)
    redis.Redis.from_url(SETTINGS.redis_url).flushdb()
    env = {
        **os.environ,
        "MIRSAD_DATABASE_URL": database_url,
        "MIRSAD_HOST_INTERVAL": "0.25",
        "MIRSAD_FETCH_CONCURRENCY": "4",
        "MIRSAD_RETRY_BACKOFF": "0.2",
        "MIRSAD_RETRY_BACKOFF_MAX": "0.5",
        "MIRSAD_MAX_ATTEMPTS": "3",
        "MIRSAD_ALLOW_PRIVATE_HOSTS": "127.0.0.0/8",
    }
    logs = [root / f"fetch-{n}.log" for n in (1, 2)]
    workers = []
    for log in logs:
        with open(log, "ab") as handle:
            workers.append(
                subprocess.Popen(
                    mirsad_command(*FETCH_WORKER),
                    env=env,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    deadline = time.monotonic() + 30
    while not all("ready." in log.read_text(errors="replace") for log in logs):
        assert time.monotonic() < deadline, "the fetch workers did not start"
        time.sleep(0.2)
    yield database_url, logs
    for worker in workers:
        os.killpg(worker.pid, 15)
    for worker in workers:
        worker.wait(timeout=20)
    forget_engines()


def wait_states(database_url: str, url_ids: list[int], done: set[str], timeout: float = 40) -> dict[int, UrlRecord]:
    deadline = time.monotonic() + timeout
    while True:
        with session_scope(database_url) as session:
            records = {r.id: r for r in session.scalars(select(UrlRecord).where(UrlRecord.id.in_(url_ids)))}
        if all(r.state in done for r in records.values()) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def pushed_ids(database_url: str, urls: list[str]) -> list[int]:
    results = list(push(urls, database_url=database_url))
    assert {r.outcome for r in results} == {"accepted"}, results
    return [r.url_id for r in results]


@pytest.mark.integration
def test_forty_urls_on_one_host_across_two_workers_never_exceed_its_rate(fetch_workers):
    database_url, logs = fetch_workers
    with FeedSite() as site:
        urls = [serve_article(site, f"/news/{n}") for n in range(40)]
        ids = pushed_ids(database_url, urls)
        records = wait_states(database_url, ids, {"fetched", "failed", "dead"})
        assert {r.state for r in records.values()} == {"fetched"}, {r.url: r.last_error for r in records.values()}
        arrivals = sorted(request.at for request in site.access_log)
    assert len(arrivals) == 41  # robots.txt once, each page once
    gaps = [later - earlier for earlier, later in pairwise(arrivals)]
    assert gaps[0] < 0.25  # robots.txt and the first page: one visit on one turn
    assert min(gaps[1:]) >= 0.25 - TOLERANCE, sorted(gaps[1:])[:5]
    with session_scope(database_url) as session:  # waiting for the host cost no attempt
        details = session.scalars(select(UrlEvent.detail).where(UrlEvent.url_id.in_(ids))).all()
    assert not any((detail or "").startswith("retry") for detail in details)
    assert all(" ok in " in log.read_text(errors="replace") for log in logs), "both workers fetched"


@pytest.mark.integration
def test_a_url_robots_txt_disallows_fails_with_the_reason(fetch_workers):
    database_url, _logs = fetch_workers
    with FeedSite() as site:
        site.put("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
        allowed, private = serve_article(site, "/public/a"), serve_article(site, "/private/a")
        ids = pushed_ids(database_url, [allowed, private])
        records = wait_states(database_url, ids, {"fetched", "failed", "dead"})
        assert [request.path for request in site.log].count("/private/a") == 0
    assert records[ids[0]].state == "fetched"
    assert records[ids[1]].state == "failed"
    assert "RobotsDisallowed" in records[ids[1]].last_error and "/private/a" in records[ids[1]].last_error


@pytest.mark.integration
def test_429_slows_the_host_down_for_every_worker(fetch_workers):
    database_url, _logs = fetch_workers
    with FeedSite() as site:
        site.put_status("/busy", 429, **{"Retry-After": "2"})
        [busy_id] = pushed_ids(database_url, [site.url("/busy")])
        deadline = time.monotonic() + 20
        while not site.requests_for("/busy"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        serve_article(site, "/busy")
        others = pushed_ids(database_url, [serve_article(site, f"/later/{n}") for n in range(3)])
        records = wait_states(database_url, [busy_id, *others], {"fetched", "failed", "dead"})
        assert {r.state for r in records.values()} == {"fetched"}
        refused = next(request for request in site.access_log if request.path == "/busy")
        later = sorted(request.at for request in site.access_log if request.at > refused.at)
    assert later[0] - refused.at >= 2 - TOLERANCE  # Retry-After: 2 paused the host for everyone
    assert min(b - a for a, b in pairwise(later)) >= 0.5 - TOLERANCE  # then twice the 0.25 s interval

"""Politeness: one request per host at a time, across every worker; robots.txt; backing off a struggling host.

Why it is written this way:

- A host's turn is kept in Redis (the broker's server, which every worker already reaches) by
  two small Lua scripts: one reads the host's state and takes the turn atomically, the other
  starts the next interval when the request is over; both on the Redis server's clock, so no two
  workers can both see a host as free and the workers' own clocks do not matter. The ``limits``
  library was considered; its limits are whole "N per M seconds" items,
  while a host's interval here is any float (a Crawl-delay of 2.5 s, doubled after a 429) and
  the caller needs to know how long until the host is free, not only "no".
- Waiting is never a long Celery countdown (those interact badly with Redis's visibility
  timeout): the caller learns how long until the host is free and requeues itself with a short
  delay (``requeue_delay``), which the fetch task does *before* claiming the URL, so waiting
  costs no attempt.
- A host's interval is ``MIRSAD_HOST_INTERVAL``, raised by its robots.txt Crawl-delay and doubled
  for ``SLOWDOWN_FOR`` after a 429 or 503; a Retry-After pauses the host until then. A host
  whose requests keep failing (``PAUSE_AFTER_FAILURES`` in a row) is paused for ``PAUSE_FOR``
  instead of being retried in a tight loop by every URL queued for it.
- robots.txt (protego, which reads Crawl-delay) is read once per host and cached in Redis for
  ``ROBOTS_TTL``; a 4xx means no rules. A URL it disallows fails permanently with the reason.
  On first contact robots.txt and the page are one visit on one turn, back to back: sleeping an
  interval in a fetch thread between them made every new host cost a whole interval (a request
  not made), and the issue's peer, trafilatura's CLI, does not read robots.txt at all. Only a
  Crawl-delay longer than our interval, just read, sends the page to wait for the next turn.

A host is the URL's ``host[:port]``: robots.txt belongs to that origin, and local test servers
on one address with different ports are different sites.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator, Mapping
from functools import lru_cache
from urllib.parse import urlsplit

import redis
from protego import Protego

from workers.core.errors import (
    ConnectionFailed,
    FetchTimeout,
    HostNotReady,
    RetryableError,
    RobotsDisallowed,
    ServerBusy,
)
from workers.core.settings import Settings, get_settings
from workers.core.urls import pacing_key
from workers.intake.discover import read_robots
from workers.intake.feeds import FetchFn
from workers.stages.fetch import FetchResult, RawResponse, fetch, fetch_raw

ROBOTS_TTL = 6 * 3600  # seconds a host's robots.txt is trusted before it is read again
MAX_INTERVAL = 60.0  # a Crawl-delay above this is honoured as this (one request a minute)
SLOWDOWN_FOR = 600  # seconds a 429 or 503 doubles the host's interval for
MAX_RETRY_AFTER = 3600.0  # longest Retry-After honoured as a pause of the whole host
PAUSE_AFTER_FAILURES = 10  # failed requests in a row (timeouts, refused connections, 5xx, 429)…
PAUSE_FOR = 300  # …pause the host this many seconds
MAX_REQUEUE_DELAY = 5.0  # a task waiting for its host comes back at least this often
MAX_INLINE_WAIT = 10.0  # longest a one-off command (mirsad discover) sleeps for a host's turn
LONGEST_TURN_WAIT = MAX_INTERVAL * 2 + MAX_REQUEUE_DELAY  # enough for the next turn of any host that is not paused
TURN_HELD_FOR = 5.0  # a turn taken and not given back (the worker died, the URL was done) frees the host after this
SLOWED_STATUSES = frozenset({429, 503})
KEY_PREFIX = "mirsad:host"

# Both scripts: KEYS = next turn, pause until, crawl-delay interval, slowdown factor, turn taken;
# ARGV = default interval, then (TAKE_TURN) 1 to take the turn and how long a taken turn is held (ms).
# TAKE_TURN returns the seconds until the host may be asked, as a string (a Lua number would come back
# truncated to an integer); "0" means the turn is free (and, when asked, now ours).
HOST_INTERVAL = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local interval = math.max(tonumber(ARGV[1]), tonumber(redis.call('GET', KEYS[3]) or '0'))
interval = interval * tonumber(redis.call('GET', KEYS[4]) or '1')
"""
TAKE_TURN = (
    HOST_INTERVAL
    + """
local free_at = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(redis.call('GET', KEYS[2]) or '0'))
if free_at > now then return tostring(free_at - now) end
if redis.call('EXISTS', KEYS[5]) == 1 then return tostring(interval) end
if ARGV[2] == '1' then redis.call('SET', KEYS[5], '1', 'PX', ARGV[3]) end
return '0'
"""
)
# Called when a request is over: the next turn is one interval from now, and the held turn is given back.
REQUEST_DONE = (
    HOST_INTERVAL
    + """
redis.call('SET', KEYS[1], tostring(now + interval), 'PX', math.ceil(interval * 1000) + 1000)
redis.call('DEL', KEYS[5])
return '0'
"""
)


def take_turn(url: str, settings: Settings | None = None) -> float:
    """0.0 when this caller took the host's turn (it may send one request, inside ``observing``); else
    the seconds until the host may be free, with nothing taken. A taken turn holds the host until its
    request is over (or ``TURN_HELD_FOR``) and the interval counts from then, so neither the time
    between taking the turn and sending (claiming the URL in the database) nor a slow answer
    shortens the gap between two requests."""
    return _turn(url, settings or get_settings(), take=True)


def wait_turn(url: str, settings: Settings | None = None, limit: float = MAX_INLINE_WAIT) -> None:
    """Take the host's turn, sleeping for it when it comes within ``limit`` seconds; else HostNotReady."""
    settings = settings or get_settings()
    deadline = time.monotonic() + limit
    while (wait := take_turn(url, settings)) > 0:
        if time.monotonic() + wait > deadline:
            raise HostNotReady(f"{pacing_key(url)} is not free for {wait:.1f} s", retry_after=wait)
        time.sleep(wait)


def requeue_delay(wait: float, settings: Settings | None = None) -> float:
    """How long a task waiting ``wait`` seconds for its host stays away: never more than
    ``MAX_REQUEUE_DELAY``, spread by up to one host interval so waiting tasks do not arrive together."""
    spread = random.uniform(0, (settings or get_settings()).host_interval)
    return min(MAX_REQUEUE_DELAY, wait + spread)


def note_failure(url: str, error: RetryableError, settings: Settings | None = None) -> None:
    """Slow the host down after a 429 or 503 (and pause it for a Retry-After); pause a host whose
    requests keep failing."""
    client, host = _client(settings or get_settings()), pacing_key(url)
    if isinstance(error, ServerBusy) and error.status in SLOWED_STATUSES:
        client.set(_key(host, "slow"), 2, ex=SLOWDOWN_FOR)
        if error.retry_after:
            _pause(client, host, min(error.retry_after, MAX_RETRY_AFTER))
    failures_key = _key(host, "failures")
    with client.pipeline() as pipe:
        pipe.incr(failures_key)
        pipe.expire(failures_key, PAUSE_FOR)
        failures, _ = pipe.execute()
    if failures >= PAUSE_AFTER_FAILURES:
        _pause(client, host, PAUSE_FOR)
        client.delete(failures_key)


def note_success(url: str, settings: Settings | None = None) -> None:
    """The host answered: its run of failures is over."""
    _client(settings or get_settings()).delete(_key(pacing_key(url), "failures"))


@contextlib.contextmanager
def observing(url: str, settings: Settings | None = None) -> Iterator[None]:
    """Around one request to ``url``'s host, on a turn taken: tells ``note_failure`` or ``note_success``
    how it went, then starts the host's next interval and gives the turn back. A permanent error
    (a 404, a PDF) says nothing about the host's health and is not noted."""
    settings = settings or get_settings()
    try:
        yield
    except (ServerBusy, ConnectionFailed, FetchTimeout) as exc:
        note_failure(url, exc, settings)
        raise
    else:
        note_success(url, settings)
    finally:
        _script(settings.redis_url, REQUEST_DONE)(keys=_keys(pacing_key(url)), args=[settings.host_interval])


def robots_rules(url: str, settings: Settings) -> tuple[Protego, bool]:
    """``url``'s host's robots.txt rules, and whether they had to be read now. Called on a turn taken and
    inside ``observing``: a first contact reads robots.txt and then the page on the same turn. A new
    Crawl-delay becomes the host's interval."""
    client, host = _client(settings), pacing_key(url)
    cached = client.get(_key(host, "robots"))
    if cached is not None:
        return Protego.parse(cached if isinstance(cached, str) else cached.decode("utf-8")), False
    bodies: list[str] = []

    def read(robots_url: str, headers: Mapping[str, str]) -> RawResponse:
        response = fetch_raw(robots_url, headers, settings)
        bodies.append(response.body.decode(response.charset or "utf-8", "replace"))
        return response

    rules = read_robots(url, read)  # a 4xx leaves ``bodies`` empty: no rules
    client.set(_key(host, "robots"), bodies[0] if bodies else "", ex=ROBOTS_TTL)
    delay = rules.crawl_delay(settings.user_agent)
    if delay:
        client.set(_key(host, "crawl"), min(float(delay), MAX_INTERVAL), ex=ROBOTS_TTL)
    return rules, True


def check_allowed(rules: Protego, url: str, settings: Settings) -> None:
    """Raise RobotsDisallowed unless robots.txt lets our user agent fetch ``url``."""
    if urlsplit(url).path != "/robots.txt" and not rules.can_fetch(url, settings.user_agent):
        raise RobotsDisallowed(f"robots.txt of {pacing_key(url)} disallows {url} for {settings.user_agent!r}")


def _first_visit(url: str, settings: Settings) -> Protego:
    """The rules for ``url``, on a turn taken. robots.txt read now and the page are one visit on one turn
    (a thread that sleeps an interval between them is a request not made), unless robots.txt just asked
    for a Crawl-delay longer than our interval: then the page waits for the next turn, as HostNotReady."""
    rules, read_now = robots_rules(url, settings)
    check_allowed(rules, url, settings)
    delay = float(rules.crawl_delay(settings.user_agent) or 0) if read_now else 0.0
    if delay > settings.host_interval:
        raise HostNotReady(
            f"robots.txt of {pacing_key(url)} asks for {delay:g} s between requests",
            retry_after=min(delay, MAX_INTERVAL),
        )
    return rules


def fetch_page(url: str, settings: Settings | None = None) -> FetchResult:
    """The fetch stage's request, made politely on the turn the task took before claiming the URL
    (robots.txt first when the host is new); it never sleeps for a turn."""
    settings = settings or get_settings()
    with observing(url, settings):
        _first_visit(url, settings)
        return fetch(url, settings)


def polite_fetch_fn(settings: Settings | None = None, *, wait_up_to: float = 0.0) -> FetchFn:
    """A ``FetchFn`` for feeds, sitemaps and discovery that honours robots.txt and takes the host's
    turn for every request: raising HostNotReady when the host is busy, or sleeping for the turn
    when it comes within ``wait_up_to`` seconds (one-off commands; a sitemap index's children,
    which must be read on the poll that listed them)."""
    settings = settings or get_settings()

    def polite_fetch(url: str, headers: Mapping[str, str]) -> RawResponse:
        wait_turn(url, settings, wait_up_to)
        with observing(url, settings):
            _first_visit(url, settings)
            return fetch_raw(url, headers, settings)

    return polite_fetch


def _turn(url: str, settings: Settings, take: bool) -> float:
    if settings.host_interval <= 0:  # pacing is off: every request may go now
        return 0.0
    return float(
        _script(settings.redis_url, TAKE_TURN)(
            keys=_keys(pacing_key(url)), args=[settings.host_interval, 1 if take else 0, int(TURN_HELD_FOR * 1000)]
        )
    )


def _keys(host: str) -> list[str]:
    return [_key(host, what) for what in ("next", "pause", "crawl", "slow", "taken")]


def _pause(client: redis.Redis, host: str, seconds: float) -> None:
    """No request to ``host`` for ``seconds`` (an existing longer pause stands)."""
    seconds_now, micros = client.time()
    until = seconds_now + micros / 1e6 + seconds
    key = _key(host, "pause")
    current = float(client.get(key) or 0)
    if until > current:
        client.set(key, until, px=int(seconds * 1000) + 1000)


def _key(host: str, what: str) -> str:
    return f"{KEY_PREFIX}:{host}:{what}"


def _client(settings: Settings) -> redis.Redis:
    return _redis(settings.redis_url)


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    """One client (a thread-safe connection pool) per Redis URL per process."""
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)


@lru_cache(maxsize=8)
def _script(url: str, source: str):
    return _redis(url).register_script(source)

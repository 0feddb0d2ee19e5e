"""The web page: small server-rendered pages (Jinja2, autoescaped) over the same functions as the JSON API.

A browser asking for HTML at ``/``, ``/search``, ``/items/{id}``, ``/stories/{id}``,
``/entities/{kind}/{value}``, ``/sources``, ``/status``, ``/watches`` or ``/watches/{id}`` gets a page; any
other client gets the API's JSON at the same paths (``HtmlFirst`` routes by the Accept header to the
pages under ``/ui``). The live feed listens at ``/events`` (Server-Sent Events fed by
``runtime.arrivals``), swapped into the page by htmx's SSE extension; a watch's live preview is an
htmx fragment (``/ui/watches/preview``) over the API's own ``storage.watches.preview``.
Page text is hostile: Jinja2 escapes everything, links are kept only for http(s) URLs, bidi controls
are dropped from one-line fields and every piece is isolated (``dir="auto"``), and a
Content-Security-Policy forbids any script that is not one of our files.
"""

from __future__ import annotations

import math
import pathlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from pydantic import ValidationError
from sqlalchemy import func, select
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from workers.api.params import (
    MAX_URLS_PER_PUSH,
    follow,
    has_control,
    item_filter,
    no_control,
    stop_following,
    when_param,
)
from workers.api.watches import WatchRequest
from workers.api.web_auth import CSRF_COOKIE, SESSION_COOKIE, SESSION_DAYS, WebAuth, bearer_token
from workers.core.errors import DatabaseUnavailable, MirsadError
from workers.core.settings import get_settings
from workers.core.topology import arrivals_channel
from workers.core.urls import site_of
from workers.runtime.dispatch import send_delivery
from workers.runtime.push import push
from workers.runtime.replay import requeue
from workers.runtime.status import status_report
from workers.storage import sources, tokens, watches
from workers.storage.db import session_scope
from workers.storage.items import (
    ENTITY_KINDS,
    ItemFilter,
    entity_summary,
    facets,
    list_items,
    parse_tag,
    tags_named,
)
from workers.storage.models import Delivery, Item, UrlRecord
from workers.storage.store import get_story
from workers.text.query import QueryError

HERE = pathlib.Path(__file__).resolve().parent
UI = "/ui"  # where the pages live; HtmlFirst sends a browser's GET of a public path here
PAGE_PATH = re.compile(
    r"^/(?:|search|items/\d+|stories/\d+|entities/[^/]+/.+|sources|status|signin|watches|watches/\d+)$"
)
FEED_PAGE = 50
SEARCH_PAGE = 20
CHART_DAYS = 30
CATCH_UP = 100  # at most this many items stored while a feed page was away are sent when it reconnects
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
KIND_NAMES = {"country": "Country", "place": "Place", "topic": "Topic", "person": "Person", "org": "Organisation"}
# Embedding and override controls (LRE RLE PDF LRO RLO, LRI RLI FSI PDI): a stranger's text must not turn the
# page (or itself) around; dir="auto" on every paragraph gives each its direction instead.
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


class SignInNeeded(Exception):
    """A page that needs a token, asked for without one: the sign-in page, then back here."""


class PageRoute(APIRoute):
    """A page's errors as pages: 4xx/5xx with the one-line reason the API would give, never JSON."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInNeeded:
                back = _public_path(request) if request.method == "GET" else "/"
                return RedirectResponse(f"/signin?{urlencode({'next': back})}", status_code=303)
            except HTTPException as exc:
                return error_page(request, exc.status_code, str(exc.detail))
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
                where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "body", "path"))
                return error_page(request, 422, f"{where or 'request'}: {first.get('msg')}")
            except DatabaseUnavailable as exc:
                return error_page(request, 503, str(exc))
            except MirsadError as exc:
                return error_page(request, 400, str(exc))

        return page


router = APIRouter(route_class=PageRoute, include_in_schema=False)


def install(app: FastAPI) -> None:
    """Add the pages, their static files and the live feed to ``app``."""
    app.state.web_auth = WebAuth(get_settings())
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(HtmlFirst)


class HtmlFirst:
    """ASGI middleware: a GET of a page path that asks for HTML (a browser) is served by the page at ``/ui``."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and PAGE_PATH.match(scope["path"]):
            accept = dict(scope.get("headers") or []).get(b"accept", b"")
            if b"text/html" in accept:
                scope = {**scope, "path": UI + scope["path"], "raw_path": (UI + scope["path"]).encode()}
        return await self.app(scope, receive, send)


# -- templates -----------------------------------------------------------------------------------------------


def safe_href(url: str | None) -> str | None:
    """``url`` when it is an http(s) URL a link may point to; None (shown as text) for javascript: and the like."""
    if not url or has_control(url):
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None


def one_line(value: str | None) -> str:
    """A title, author or name for display: without bidi controls or line breaks."""
    return BIDI_CONTROLS.sub("", re.sub(r"\s+", " ", value or "")).strip()


def when(value: datetime | str | None) -> str:
    """A moment as ``2026-12-01 14:05 UTC`` (readable in every language of the page); a bare date stays a date,
    a time without a zone is shown without one."""
    if isinstance(value, str):
        text = one_line(value)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return text
        if len(text) <= 10:
            return moment.date().isoformat()
        value = moment
    if value is None:
        return ""
    if value.tzinfo is None:
        return value.strftime("%Y-%m-%d %H:%M")
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def lag(seconds: float) -> str:
    """How long after the first report: ``+45 min``, ``+3 h 20 min``, ``+2 d 4 h``."""
    minutes = max(0, int(seconds // 60))
    if minutes < 60:
        return f"+{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"+{hours} h {minutes} min" if minutes else f"+{hours} h"
    days, hours = divmod(hours, 24)
    return f"+{days} d {hours} h"


templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True), trim_blocks=True
)
templates.filters.update(
    safe_href=safe_href, one_line=one_line, when=when, site_of=site_of, segment=lambda v: quote(str(v), safe="")
)
templates.globals.update(KIND_NAMES=KIND_NAMES, ENTITY_KINDS=ENTITY_KINDS)


@dataclass(frozen=True)
class Viewer:
    """Who is reading: their token's scope (None: an open API read without signing in) and the CSRF token."""

    scope: str | None
    csrf: str
    new_csrf: bool
    by_bearer: bool = False

    @property
    def can_write(self) -> bool:
        return tokens.allows(self.scope, "write")


def viewer(request: Request) -> Viewer:
    """The reader of a page: signed in by a bearer header or the session cookie, else only if reads are open."""
    web_auth: WebAuth = request.app.state.web_auth
    csrf, new_csrf = web_auth.csrf_value(request)
    if (token := bearer_token(request)) is not None:
        with session_scope() as session:
            scope = tokens.scope_of(session, token)
        if scope is None:
            raise HTTPException(401, "unknown or revoked token")
        return Viewer(scope, csrf, new_csrf, by_bearer=True)
    scope = web_auth.cookie_scope(request)
    if scope is None and not get_settings().api_reads_open:
        raise SignInNeeded()
    return Viewer(scope, csrf, new_csrf)


Reader = Annotated[Viewer, Depends(viewer)]


def writer(request: Request, csrf: Annotated[str | None, Form()] = None) -> Viewer:
    """The reader of a form post: a write token, and (signed in by cookie) the form's CSRF token."""
    reading = viewer(request)
    if reading.scope is None:  # reading is open, writing is not: sign in first
        raise SignInNeeded()
    if not reading.can_write:
        raise HTTPException(403, "this needs a write token: sign in with one (mirsad tokens add NAME --scope write)")
    if not reading.by_bearer and not request.app.state.web_auth.csrf_matches(request, csrf):
        raise HTTPException(403, "the form's CSRF token is missing or stale: reload the page and send it again")
    return reading


Writer = Annotated[Viewer, Depends(writer)]


def render(request: Request, who: Viewer | None, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page from ``templates/name``, with the CSP and, when new, the CSRF cookie."""
    if who is None:
        csrf, new_csrf = request.app.state.web_auth.csrf_value(request)
        who = Viewer(None, csrf, new_csrf)
    body = templates.get_template(name).render(request=request, viewer=who, path=_public_path(request), **context)
    response = HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)
    if who.new_csrf:
        _set_cookie(request, response, CSRF_COOKIE, who.csrf)
    return response


SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, None, "error.html", status_code=status, status=status, message=message)


def _set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        max_age=SESSION_DAYS * 86400,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def _public_path(request: Request) -> str:
    """The path the reader asked for (a page's own path without ``/ui``), with its query."""
    path = request.url.path.removeprefix(UI) or "/"
    return path + (f"?{request.url.query}" if request.url.query else "")


def _with(request: Request, **changes: str | None) -> str:
    """The current page's URL with some query parameters replaced (None: removed) and the cursor dropped."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in changes and k != "cursor"]
    params += [(k, v) for k, v in changes.items() if v]
    path = request.url.path.removeprefix(UI) or "/"
    return path + (f"?{urlencode(params)}" if params else "")


def _with_tag(request: Request, kind: str, value: str) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    if ("tag", f"{kind}:{value}") not in params:
        params.append(("tag", f"{kind}:{value}"))
    return (request.url.path.removeprefix(UI) or "/") + "?" + urlencode(params)


def _without_tag(request: Request, spec: str) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor" and (k, v) != ("tag", spec)]
    return (request.url.path.removeprefix(UI) or "/") + (f"?{urlencode(params)}" if params else "")


templates.globals.update(with_params=_with, with_tag=_with_tag, without_tag=_without_tag)


# -- the feed ------------------------------------------------------------------------------------------------


Short = Annotated[str | None, Query(max_length=255)]


@dataclass(frozen=True)
class FeedFilters:
    """The feed's filters (a language, a country, a topic, a site), shared by the page and its event stream."""

    language: str | None
    country: str | None
    topic: str | None
    site: str | None

    @property
    def chosen(self) -> bool:
        return any((self.language, self.country, self.topic, self.site))

    def wanted(self) -> ItemFilter:
        tags = [("country", self.country), ("topic", self.topic)]
        return ItemFilter(
            tags=tuple(parse_tag(f"{kind}:{value}") for kind, value in tags if value),
            language=self.language or None,
            site=self.site or None,
        )


def feed_filters(language: Short = None, country: Short = None, topic: Short = None, site: Short = None) -> FeedFilters:
    for name, value in (("language", language), ("country", country), ("topic", topic), ("site", site)):
        no_control(value, name)
    return FeedFilters(language, country, topic, site)


Feed = Annotated[FeedFilters, Depends(feed_filters)]


@router.get(f"{UI}/")
def feed(
    request: Request, who: Reader, filters: Feed, cursor: Annotated[str | None, Query(max_length=1000)] = None
) -> HTMLResponse:
    wanted = filters.wanted()
    with session_scope() as session:
        page = list_items(session, wanted, "date", FEED_PAGE, cursor)
        newest = session.scalar(select(func.max(Item.id))) or 0  # anything stored after this page is new to it
        events = "/events?" + urlencode(
            [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"] + [("after", str(newest))]
        )
        return render(
            request,
            who,
            "feed.html",
            items=page.items,
            next_url=_with(request, cursor=page.next_cursor) if page.next_cursor else None,
            first_page=cursor is None,
            events=events,
            filters=filters,
        )


@router.get("/events")
async def events(
    request: Request, who: Reader, filters: Feed, after: Annotated[int | None, Query(ge=0)] = None
) -> EventSourceResponse:
    """Each item stored from now on that the feed's filters let through, as an ``item`` event: its row's HTML.

    On (re)connecting, the items stored after ``after`` (or the Last-Event-ID) are sent first, so the
    seconds between loading the page and listening lose nothing."""
    wanted = filters.wanted()
    last_seen = request.headers.get("last-event-id", "")
    since = int(last_seen) if last_seen.isdigit() else after
    broker_url = get_settings().redis_url

    async def stream():
        client = aioredis.from_url(broker_url)
        pubsub = client.pubsub()
        sent: set[int] = set()
        try:
            await pubsub.subscribe(arrivals_channel(broker_url))
            if since is not None:
                for item_id, html in await run_in_threadpool(rows_after, since, wanted):
                    sent.add(item_id)
                    yield {"event": "item", "id": str(item_id), "data": html}
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=30)
                if message is None or not str(message.get("data", b"").decode()).isdigit():
                    continue
                item_id = int(message["data"])
                if item_id in sent:
                    continue
                for found_id, html in await run_in_threadpool(rendered_rows, [item_id], wanted):
                    sent.add(found_id)
                    yield {"event": "item", "id": str(found_id), "data": html}
        finally:
            await pubsub.aclose()
            await client.aclose()

    return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})


def rows_after(after: int, wanted: ItemFilter) -> list[tuple[int, str]]:
    """The rows of the items stored after item ``after`` that ``wanted`` lets through, oldest first."""
    with session_scope() as session:
        ids = session.scalars(select(Item.id).where(Item.id > after).order_by(Item.id).limit(CATCH_UP)).all()
    return rendered_rows(list(ids), wanted)


def rendered_rows(ids: list[int], wanted: ItemFilter) -> list[tuple[int, str]]:
    """(id, row HTML) for the items of ``ids`` that ``wanted`` lets through, in the order of ``ids``."""
    if not ids:
        return []
    with session_scope() as session:
        found = {i.id: i for i in list_items(session, replace(wanted, ids=tuple(ids)), "date", len(ids)).items}
        row = templates.get_template("_row.html")
        return [(i, row.render(item=found[i], fresh=True)) for i in ids if i in found]


# -- search --------------------------------------------------------------------------------------------------


@router.get(f"{UI}/search")
def search(
    request: Request,
    who: Reader,
    wanted: Annotated[ItemFilter, Depends(item_filter)],
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> HTMLResponse:
    with session_scope() as session:
        page = list_items(session, wanted, None, SEARCH_PAGE, cursor, with_snippets=True)
        counts = facets(session, wanted)
        exports = {
            fmt: "/export?"
            + urlencode([*((k, v) for k, v in request.query_params.multi_items() if k != "cursor"), ("format", fmt)])
            for fmt in ("csv", "jsonl")
        }
        return render(
            request,
            who,
            "search.html",
            q=request.query_params.get("q", ""),
            items=page.items,
            # escaped by storage.search.snippet; only bidi controls are taken out
            snippets={i: Markup(BIDI_CONTROLS.sub("", html)) for i, html in page.snippets.items()},
            facets=counts,
            chosen_tags=request.query_params.getlist("tag"),
            next_url=_with(request, cursor=page.next_cursor) if page.next_cursor else None,
            exports=exports,
        )


# -- one item ------------------------------------------------------------------------------------------------


def marked(text: str, evidence: dict[str, str]) -> list[Markup]:
    """The paragraphs of ``text``, escaped, each word that triggered a tag in ``<mark>`` (titled by the tag)."""
    words = sorted((w for w in evidence if len(w) > 1), key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE) if words else None
    paragraphs = []
    for paragraph in BIDI_CONTROLS.sub("", text).split("\n"):
        if not paragraph.strip():
            continue
        if pattern is None:
            paragraphs.append(Markup(escape(paragraph)))
            continue
        pieces, cursor = [], 0
        for match in pattern.finditer(paragraph):
            tag = evidence.get(match.group(0)) or evidence.get(match.group(0).lower(), "")
            pieces += [
                escape(paragraph[cursor : match.start()]),
                Markup('<mark title="%s">%s</mark>') % (tag, match.group(0)),
            ]
            cursor = match.end()
        pieces.append(escape(paragraph[cursor:]))
        paragraphs.append(Markup("").join(pieces))
    return paragraphs


@router.get(f"{UI}/items/{{item_id}}")
def item_page(request: Request, who: Reader, item_id: int) -> HTMLResponse:
    with session_scope() as session:
        item = session.get(Item, item_id)
        if item is None:
            raise HTTPException(404, f"no item #{item_id}")
        evidence: dict[str, str] = {}
        for tag in item.tags:
            for word in tag.evidence or []:
                if isinstance(word, str) and word.strip():
                    evidence.setdefault(word, f"{tag.kind}:{tag.value}")
                    evidence.setdefault(word.lower(), f"{tag.kind}:{tag.value}")
        urls = session.scalars(select(UrlRecord).where(UrlRecord.item_id == item_id).order_by(UrlRecord.id)).all()
        story = get_story(session, item.story_id) if item.story_id is not None else None
        return render(
            request,
            who,
            "item.html",
            item=item,
            paragraphs=marked(item.text or "", evidence),
            tags=sorted(item.tags, key=lambda t: (t.kind, -t.score)),
            urls=urls,
            story=story,
        )


# -- a story -------------------------------------------------------------------------------------------------


@router.get(f"{UI}/stories/{{story_id}}")
def story_page(request: Request, who: Reader, story_id: int) -> HTMLResponse:
    with session_scope() as session:
        story = get_story(session, story_id)
        if story is None:
            raise HTTPException(404, f"no story #{story_id}")
        first = datetime.fromisoformat(story["first_published_at"])
        rows = []
        for entry in story["items"]:
            published = _moment(entry["published_at"]) or first
            rows.append({**entry, "lag": lag((published - first).total_seconds()), "when": published})
        named = tags_named(session, [e["id"] for e in story["items"]], ("country", "person", "org", "place"))
        languages = sorted({e["language"] for e in story["items"] if e["language"]})
        return render(request, who, "story.html", story=story, rows=rows, named=named, languages=languages)


def _moment(value: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value or "")
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- an entity -----------------------------------------------------------------------------------------------


def daily_chart(daily: Iterable[dict], days: int = CHART_DAYS, today: date | None = None) -> dict:
    """The last ``days`` days as bars (every day, zero included) scaled for the page's SVG chart."""
    today = today or datetime.now(UTC).date()
    counts = {str(d["date"]): int(d["count"]) for d in daily}
    span = [today - timedelta(days=back) for back in range(days - 1, -1, -1)]
    values = [counts.get(day.isoformat(), 0) for day in span]
    top = max(values, default=0) or 1
    height = 80
    return {
        "bars": [
            {"x": n * 10, "h": math.ceil(v / top * height) if v else 0, "day": day.isoformat(), "count": v}
            for n, (day, v) in enumerate(zip(span, values, strict=True))
        ],
        "height": height,
        "width": days * 10,
        "top": max(values, default=0),
        "total": sum(values),
        "first": span[0].isoformat(),
        "last": span[-1].isoformat(),
    }


@router.get(f"{UI}/entities/{{kind}}/{{value:path}}")
def entity_page(request: Request, who: Reader, kind: str, value: Annotated[str, Path(max_length=255)]) -> HTMLResponse:
    if kind not in ENTITY_KINDS:
        raise HTTPException(404, f"no entity kind {kind!r} (known: {', '.join(ENTITY_KINDS)})")
    no_control(value, "value")
    with session_scope() as session:
        summary = entity_summary(session, kind, value, 20)
        return render(request, who, "entity.html", summary=summary, chart=daily_chart(summary["daily"]))


# -- sources and status (and what a write token may do there) ------------------------------------------------


@router.get(f"{UI}/sources")
def sources_page(request: Request, who: Reader) -> HTMLResponse:
    return _sources(request, who)


def _sources(request: Request, who: Viewer, notice: str | None = None, status_code: int = 200) -> HTMLResponse:
    now = datetime.now(UTC)
    with session_scope() as session:
        listed = [{"id": s.id, **sources.describe(s, now)} for s in sources.listing(session)]
    return render(request, who, "sources.html", status_code, sources=listed, notice=notice)


@router.get(f"{UI}/status")
def status_page(request: Request, who: Reader) -> HTMLResponse:
    return _status(request, who)


def _status(request: Request, who: Viewer, notice: str | None = None, results: list | None = None) -> HTMLResponse:
    with session_scope() as session:
        report = status_report(session)
    return render(request, who, "status.html", report=report, notice=notice, results=results or [])


@router.post(f"{UI}/push")
def push_form(request: Request, who: Writer, urls: Annotated[str, Form(max_length=1_000_000)]) -> HTMLResponse:
    given = [line.strip() for line in urls.splitlines() if line.strip()]
    if not given:
        raise HTTPException(400, "no URL given: one per line")
    if len(given) > MAX_URLS_PER_PUSH:
        raise HTTPException(400, f"at most {MAX_URLS_PER_PUSH} URLs at once, got {len(given)}")
    if any(has_control(url) for url in given):
        raise HTTPException(400, "a URL contains a control character")
    results = list(push(given))
    accepted = sum(1 for r in results if r.outcome == "accepted")
    return _status(request, who, f"{accepted} of {len(results)} URLs accepted", results)


@router.post(f"{UI}/sources/add")
def source_add_form(
    request: Request,
    who: Writer,
    url: Annotated[str, Form(min_length=1, max_length=8192)],
    every: Annotated[int | None, Form(ge=1, le=10_000_000)] = None,
) -> HTMLResponse:
    follow(url, every)
    return _sources(request, who, f"now following {one_line(url)}")


@router.post(f"{UI}/sources/{{source_id}}/remove")
def source_remove_form(request: Request, who: Writer, source_id: int) -> HTMLResponse:
    url = stop_following(source_id)
    return _sources(request, who, f"no longer following {one_line(url)}")


@router.post(f"{UI}/requeue")
def requeue_form(
    request: Request,
    who: Writer,
    reason: Annotated[str | None, Form(max_length=1000)] = None,
    since: Annotated[str | None, Form(max_length=64)] = None,
) -> HTMLResponse:
    no_control(reason, "reason")
    done = requeue("the web page", reason=reason or None, since=when_param(since, "since"))
    return _status(request, who, f"{len(done)} failed or dead URLs requeued")


# -- watches -----------------------------------------------------------------------------------------------


@router.get(f"{UI}/watches")
def watches_page(request: Request, who: Reader) -> HTMLResponse:
    return _watches(request, who)


def _watches(
    request: Request,
    who: Viewer,
    notice: str | None = None,
    created: dict | None = None,
    error: str | None = None,
    form: dict | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with session_scope() as session:
        listed = [watches.to_dict(w, watches.match_counts(session, w.id)) for w in watches.listing(session)]
    return render(
        request,
        who,
        "watches.html",
        status_code,
        watches=listed,
        notice=notice,
        created=created,
        error=error,
        form=form or {},
    )


@router.get(f"{UI}/watches/preview")
def watch_preview_fragment(
    request: Request, who: Reader, query: Annotated[str, Query(max_length=2000)] = ""
) -> HTMLResponse:
    """The live preview under the query box (an htmx fragment): how many stored items match now, the latest ten."""
    if not query.strip():
        return render(request, who, "_preview.html", query="", count=None, items=[], error=None)
    try:
        with session_scope() as session:
            count, latest = watches.preview(session, query)
            return render(request, who, "_preview.html", query=query, count=count, items=latest, error=None)
    except QueryError as exc:
        return render(request, who, "_preview.html", query=query, count=None, items=[], error=str(exc))


@router.get(f"{UI}/watches/{{watch_id}}")
def watch_page(request: Request, who: Reader, watch_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> HTMLResponse:
    return _watch(request, who, watch_id)


def _watch(request: Request, who: Viewer, watch_id: int, notice: str | None = None) -> HTMLResponse:
    with session_scope() as session:
        try:
            watch = watches.find(session, watch_id)
        except watches.WatchError:
            raise HTTPException(404, f"no watch #{watch_id}") from None
        matches, sent = watches.recent(session, watch.id)
        return render(
            request,
            who,
            "watch.html",
            watch=watches.to_dict(watch, watches.match_counts(session, watch.id)),
            matches=matches,
            deliveries=sent,
            notice=notice,
        )


@router.post(f"{UI}/watches/add")
def watch_add_form(
    request: Request,
    who: Writer,
    name: Annotated[str, Form(max_length=1000)] = "",
    query: Annotated[str, Form(max_length=10_000)] = "",
    webhook: Annotated[str, Form(max_length=10_000)] = "",
    email: Annotated[str, Form(max_length=1000)] = "",
    digest: Annotated[str, Form(max_length=100)] = "",
) -> HTMLResponse:
    """Add a watch from the form: the API's checks, then the secret shown this once; a refusal on the form."""
    form = {"name": name, "query": query, "webhook": webhook, "email": email, "digest": digest}
    try:
        body = WatchRequest(name=name, query=query, webhook=webhook or None, email=email or None, digest=digest or None)
        with session_scope() as session:
            watch = watches.add(session, body.name, body.query, get_settings(), body.webhook, body.email, body.digest)
            created = {**watches.to_dict(watch), "secret": watch.secret}
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _watches(request, who, error=f"{where}: {first.get('msg')}", form=form, status_code=400)
    except MirsadError as exc:
        return _watches(request, who, error=one_line(str(exc)), form=form, status_code=400)
    return _watches(request, who, notice=f"watch {one_line(created['name'])} added", created=created)


@router.post(f"{UI}/watches/{{watch_id}}/remove")
def watch_remove_form(request: Request, who: Writer, watch_id: int) -> HTMLResponse:
    with session_scope() as session:
        try:
            watch = watches.find(session, watch_id)
        except watches.WatchError:
            raise HTTPException(404, f"no watch #{watch_id}") from None
        name = watch.name
        watches.remove(session, watch.id)
    return _watches(request, who, notice=f"watch {one_line(name)} removed")


@router.post(f"{UI}/watches/{{watch_id}}/resend/{{delivery_id}}")
def delivery_resend_form(request: Request, who: Writer, watch_id: int, delivery_id: int) -> HTMLResponse:
    with session_scope() as session:
        if session.scalar(select(Delivery.watch_id).where(Delivery.id == delivery_id)) != watch_id:
            raise HTTPException(404, f"watch #{watch_id} has no delivery {delivery_id}")
        watches.reopen(session, delivery_id)
    send_delivery(delivery_id)
    return _watch(request, who, watch_id, notice=f"delivery {delivery_id} sent again")


# -- signing in ----------------------------------------------------------------------------------------------


@router.get(f"{UI}/signin")
def signin_page(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None) -> HTMLResponse:
    return render(request, None, "signin.html", next=_local(next), error=None)


@router.post(f"{UI}/signin")
def signin(
    request: Request,
    token: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str | None, Form()] = None,
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    if not request.app.state.web_auth.csrf_matches(request, csrf):
        raise HTTPException(403, "the form's CSRF token is missing or stale: reload the page and send it again")
    with session_scope() as session:
        scope = tokens.scope_of(session, token.strip())
    if scope is None:
        return render(request, None, "signin.html", 401, next=_local(next), error="unknown or revoked token")
    response = RedirectResponse(_local(next), status_code=303)
    _set_cookie(request, response, SESSION_COOKIE, request.app.state.web_auth.session_value(token.strip()))
    return response


@router.post(f"{UI}/signout")
def signout(request: Request, who: Reader, csrf: Annotated[str | None, Form()] = None) -> Response:
    if not request.app.state.web_auth.csrf_matches(request, csrf):
        raise HTTPException(403, "the form's CSRF token is missing or stale: reload the page and send it again")
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _local(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never ``//elsewhere`` or ``https://…``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target or has_control(target):
        return "/"
    return target

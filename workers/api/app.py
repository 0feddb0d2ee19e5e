"""The FastAPI application: every endpoint, token checks, and errors as one-line 4xx messages.

Item JSON is exactly ``workers.storage.store.item_to_dict``'s (what ``mirsad show --json`` prints);
every listing answers ``{"items": [...], "next": URL or null}``. Pushing goes through
``workers.runtime.push.push``, so the API gives the verdicts ``mirsad push`` gives.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import select, text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from workers.api import pages
from workers.api.metrics import metrics_text
from workers.api.params import (
    MAX_ID,
    MAX_URLS_PER_PUSH,
    Text,
    follow,
    has_control,
    item_filter,
    no_control,
    stop_following,
    when_param,
)
from workers.api.watches import watch_routes
from workers.core.errors import DatabaseUnavailable, MirsadError
from workers.core.settings import get_settings
from workers.runtime.push import push
from workers.runtime.status import status_report
from workers.storage import sources, tokens
from workers.storage.db import session_scope
from workers.storage.health import sites_overview
from workers.storage.items import (
    EntityKind,
    ItemFilter,
    entity_summary,
    iter_items,
    list_items,
    stories_page,
)
from workers.storage.models import Item, Source, UrlRecord
from workers.storage.store import get_story, item_to_dict

MAX_LIMIT = 500

T = TypeVar("T")
bearer = HTTPBearer(auto_error=False, description="a token from `mirsad tokens add NAME --scope read|write`")


def needs(scope: str):
    """A dependency that lets the request through with a token of ``scope`` (or, for reads, an open API)."""

    def check(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if credentials is None:
            if scope == "read" and (get_settings().api_reads_open or _signed_in(request)):
                return  # a web page's session reads (an export link); it never writes through the JSON API
            raise HTTPException(
                401,
                "a bearer token is needed: Authorization: Bearer TOKEN (mirsad tokens add)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        with session_scope() as session:
            granted = tokens.scope_of(session, credentials.credentials)
        if granted is None:
            raise HTTPException(401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
        if not tokens.allows(granted, scope):
            raise HTTPException(403, f"this token may {granted}; this needs a {scope} token")

    return Depends(check)


def _signed_in(request: Request) -> bool:
    web_auth = getattr(request.app.state, "web_auth", None)
    return web_auth is not None and web_auth.cookie_scope(request) is not None


READ, WRITE = needs("read"), needs("write")
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


class ErrorBody(BaseModel):
    """Every 4xx and 503: one line saying what was wrong."""

    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "malformed query, filter, date or cursor"),
        (401, "no token, or an unknown or revoked one"),
        (403, "the token's scope does not allow this"),
        (404, "no such URL, item, story or source"),
        (413, "request body over MIRSAD_API_MAX_BODY"),
        (422, "a parameter or the body does not fit the schema; a source the fetch address guard refuses"),
        (503, "the database is unreachable"),
    )
}


class PushRequest(BaseModel):
    urls: list[Annotated[str, Field(max_length=8192)]] = Field(min_length=1, max_length=MAX_URLS_PER_PUSH)


class SourceRequest(BaseModel):
    url: Annotated[str, Field(min_length=1, max_length=8192)]
    every: Annotated[int | None, Field(ge=1, le=10_000_000)] = None


def create_app() -> FastAPI:
    app = FastAPI(title="Mirsad", version="0.1.0", description=__doc__, responses=ERRORS)
    app.add_middleware(BodyLimit, limit=get_settings().api_max_body)
    _errors(app)
    _routes(app)
    app.include_router(watch_routes(READ, WRITE))
    pages.install(app)
    return app


def _errors(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "body", "path"))
        return JSONResponse({"detail": f"{where or 'request'}: {first.get('msg')}"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only those of the first route that matched it
            methods = {
                m
                for route in app.routes
                if route.matches(request.scope)[0] != Match.NONE
                for m in getattr(route, "methods", None) or ()
            }
            headers["Allow"] = ", ".join(sorted(methods))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(DatabaseUnavailable)
    async def unavailable(_request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(MirsadError)
    async def refused(_request: Request, exc: MirsadError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)


def _routes(app: FastAPI) -> None:  # noqa: C901 (one function per endpoint; they share the helpers below)
    @app.post("/urls", dependencies=[WRITE], summary="Push URLs (the verdicts of `mirsad push`, one per URL)")
    def push_urls(body: PushRequest) -> dict:
        if any(has_control(url) for url in body.urls):
            raise HTTPException(400, "a URL contains a control character")
        return {
            "results": [
                {"url": r.url, "outcome": str(r.outcome), "detail": r.detail, "id": r.url_id} for r in push(body.urls)
            ]
        }

    @app.get("/urls/{url_id}", dependencies=[READ], summary="A pushed URL: its state and history")
    def url_state(url_id: Id) -> dict:
        with session_scope() as session:
            record = _found(session.get(UrlRecord, url_id), f"no URL #{url_id}")
            return {
                "id": record.id,
                "url": record.url,
                "canonical_url": record.canonical_url,
                "state": record.state,
                "attempts": record.attempts,
                "last_error": record.last_error,
                "item_id": record.item_id,
                "alias_of": record.alias_of,
                "created_at": record.created_at.isoformat(),
                "updated_at": record.updated_at.isoformat(),
                "history": [
                    {"at": e.at.isoformat(), "state": e.state, "attempt": e.attempt, "detail": e.detail}
                    for e in record.events
                ],
            }

    @app.get("/items", dependencies=[READ], summary="Items, searched and filtered, newest or most relevant first")
    def items(
        request: Request,
        wanted: Annotated[ItemFilter, Depends(item_filter)],
        sort: Literal["relevance", "date"] | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        cursor: Text = None,
    ) -> dict:
        with session_scope() as session:
            page = list_items(session, wanted, sort, limit, cursor, with_snippets=True)
            listing: dict[str, object] = {
                "items": [item_to_dict(item) for item in page.items],
                "next": _next(request, page.next_cursor),
            }
        if page.snippets:
            listing["snippets"] = {str(item_id): html for item_id, html in page.snippets.items()}
        return listing

    @app.get("/items/{item_id}", dependencies=[READ], summary="One item")
    def item(item_id: Id) -> dict:
        with session_scope() as session:
            return item_to_dict(_found(session.get(Item, item_id), f"no item #{item_id}"))

    @app.get("/stories", dependencies=[READ], summary="Stories with the latest additions first")
    def stories(
        request: Request, since: Text = None, limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20, cursor: Text = None
    ) -> dict:
        with session_scope() as session:
            found, next_cursor = stories_page(session, when_param(since, "since"), limit, cursor)
        return {"items": found, "next": _next(request, next_cursor)}

    @app.get("/stories/{story_id}", dependencies=[READ], summary="One story: its items in order of publication")
    def story(story_id: Id) -> dict:
        with session_scope() as session:
            return _found(get_story(session, story_id), f"no story #{story_id}")

    @app.get(
        "/entities/{kind}/{value}",
        dependencies=[READ],
        summary="A country, place, person, organisation or topic: items, stories, co-mentions, daily counts",
    )
    def entity(
        kind: EntityKind,
        value: Annotated[str, Path(max_length=255)],
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    ) -> dict:
        no_control(value, "value")
        with session_scope() as session:
            summary = entity_summary(session, kind, value, limit)
            summary["items"] = [item_to_dict(i) for i in summary["items"]]
        return summary

    @app.get("/sources", dependencies=[READ], summary="The feeds and sitemaps followed, with their health")
    def source_list() -> dict:
        now = datetime.now(UTC)
        with session_scope() as session:
            return {"items": [{"id": s.id, **sources.describe(s, now)} for s in sources.listing(session)], "next": None}

    @app.post("/sources", dependencies=[WRITE], status_code=201, summary="Follow a feed or sitemap")
    def source_add(body: SourceRequest) -> dict:
        follow(body.url, body.every)
        with session_scope() as session:
            added = session.scalars(select(Source).where(Source.url == body.url.strip())).one()
            return {"id": added.id, **sources.describe(added, datetime.now(UTC))}

    @app.delete("/sources/{source_id}", dependencies=[WRITE], status_code=204, summary="Stop following a source")
    def source_remove(source_id: Id) -> Response:
        stop_following(source_id)
        return Response(status_code=204)

    @app.get(
        "/sites",
        dependencies=[READ],
        summary="The sites seen, flagged ones first, with their health and why (`mirsad sites --json`)",
    )
    def site_list() -> dict:
        with session_scope() as session:
            return {"items": sites_overview(session, get_settings().site_line_min_articles), "next": None}

    @app.get("/status", dependencies=[READ], summary="Queues, URLs per state, latest failures (`mirsad status --json`)")
    def status() -> dict:
        with session_scope() as session:
            return status_report(session)

    @app.get(
        "/export",
        dependencies=[READ],
        summary="Every matching item, streamed as CSV or JSON lines",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}, "description": "the items"}},
    )
    def export(
        wanted: Annotated[ItemFilter, Depends(item_filter)], format: Literal["csv", "jsonl"] = "jsonl"
    ) -> StreamingResponse:
        with session_scope() as session:  # a bad query fails here, as a 400, before the stream starts
            list_items(session, wanted, limit=1)
        rows = iter_items(wanted)
        body = (
            _csv(rows)
            if format == "csv"
            else _chunks(json.dumps(item_to_dict(i), ensure_ascii=False) + "\n" for i in rows)
        )
        media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
        return StreamingResponse(
            body, media_type=media, headers={"Content-Disposition": f'attachment; filename="mirsad-items.{format}"'}
        )

    @app.get(
        "/metrics",
        dependencies=[READ],
        summary="Prometheus metrics",
        responses={200: {"content": {"text/plain": {}}, "description": "the Prometheus text format"}},
    )
    def metrics() -> Response:
        content, media_type = metrics_text()
        return Response(content, media_type=media_type)

    @app.get("/healthz", summary="Database and broker reachable (no token needed)")
    def healthz() -> JSONResponse:
        checks = {"database": _check_database(), "broker": _check_broker()}
        healthy = all(value == "ok" for value in checks.values())
        return JSONResponse(checks, status_code=200 if healthy else 503)


def _found(thing: T | None, missing: str) -> T:
    """``thing``, or a 404 saying what is missing."""
    if thing is None:
        raise HTTPException(404, missing)
    return thing


def _next(request: Request, cursor: str | None) -> str | None:
    return str(request.url.include_query_params(cursor=cursor)) if cursor else None


CSV_COLUMNS = (
    "id",
    "url",
    "canonical_url",
    "title",
    "language",
    "published_at",
    "author",
    "site_name",
    "story",
    "copy_of",
    "stored_at",
    "tags",
    "text",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CHUNK_CHARS = 64_000


def _csv(items: Iterable[Item]) -> Iterator[bytes]:
    """CSV rows; a cell a spreadsheet would run as a formula (=, +, -, @) gets a leading apostrophe."""

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        yield buffer.getvalue()
        for item in items:
            data = item_to_dict(item)
            data["tags"] = "; ".join(f"{t['kind']}:{t['value']}" for t in data["tags"])
            buffer.seek(0)
            buffer.truncate()
            writer.writerow([_cell(data[column]) for column in CSV_COLUMNS])
            yield buffer.getvalue()

    return _chunks(rows())


def _cell(value) -> str:
    cell = "" if value is None else str(value)
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _chunks(pieces: Iterable[str]) -> Iterator[bytes]:
    """Pieces gathered into chunks of about 64 KB: fewer, larger writes to the socket."""
    chunk: list[str] = []
    size = 0
    for piece in pieces:
        chunk.append(piece)
        size += len(piece)
        if size >= CHUNK_CHARS:
            yield "".join(chunk).encode("utf-8")
            chunk, size = [], 0
    if chunk:
        yield "".join(chunk).encode("utf-8")


def _check_database() -> str:
    try:
        with session_scope() as session:
            session.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # any failure is "unhealthy", said how
        return f"unreachable ({type(exc).__name__})"


def _check_broker() -> str:
    import redis

    try:
        redis.Redis.from_url(get_settings().redis_url, socket_timeout=2, socket_connect_timeout=2).ping()
        return "ok"
    except Exception as exc:  # any failure is "unhealthy", said how
        return f"unreachable ({type(exc).__name__})"


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is a 413, whether or not it declared its length."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _too_large(send, self.limit)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise _TooLarge()
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _too_large(send, self.limit)


class _TooLarge(Exception):
    pass


async def _too_large(send, limit: int) -> None:
    body = json.dumps({"detail": f"request body over {limit} bytes (MIRSAD_API_MAX_BODY)"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})

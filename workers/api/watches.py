"""The watches' endpoints: ``/watches`` (add, list, show, remove, live preview), a watch's Atom feed, ``/alerts``.

The feed takes its read token as ``?token=`` since feed readers cannot send headers (a browser signed in
to the web page may follow the page's link to it with its session cookie). Item text in
the feed is escaped by the XML serialiser and cleaned of the control characters XML forbids.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.params import Depends
from fastapi.responses import Response
from pydantic import BaseModel, Field

from workers.core.settings import get_settings
from workers.runtime.dispatch import send_delivery
from workers.storage import tokens, watches
from workers.storage.db import session_scope
from workers.storage.models import utcnow
from workers.storage.store import item_to_dict

ATOM = "http://www.w3.org/2005/Atom"
FEED_ENTRIES = 50
SUMMARY_CHARS = 400
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


class WatchRequest(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    query: Annotated[str, Field(min_length=1, max_length=2000)]
    webhook: Annotated[str | None, Field(max_length=8192)] = None
    email: Annotated[str | None, Field(max_length=254)] = None
    digest: Annotated[str | None, Field(pattern="^(hourly|daily)$")] = None
    spikes: bool = True


def watch_routes(READ: Depends, WRITE: Depends) -> APIRouter:  # noqa: C901, N803 (the app's auth, one per endpoint)
    """The watches' routes, guarded by the app's read and write dependencies (``api.app.needs``)."""
    router = APIRouter()

    @router.get("/watches", dependencies=[READ], summary="Every watch with its counts (never its secret)")
    def watch_list() -> dict:
        with session_scope() as session:
            return {
                "watches": [watches.to_dict(w, watches.match_counts(session, w.id)) for w in watches.listing(session)]
            }

    @router.post(
        "/watches", dependencies=[WRITE], status_code=201, summary="Add a watch (its secret is shown only now)"
    )
    def watch_add(body: WatchRequest) -> dict:
        with session_scope() as session:
            watch = watches.add(
                session, body.name, body.query, get_settings(), body.webhook, body.email, body.digest, body.spikes
            )
            return {**watches.to_dict(watch), "secret": watch.secret}

    @router.get(
        "/watches/preview",
        dependencies=[READ],
        summary="Live preview of a query: how many items match now, the latest 10",
    )
    def watch_preview(q: Annotated[str, Query(min_length=1, max_length=2000)]) -> dict:
        with session_scope() as session:
            count, latest = watches.preview(session, q)
            return {"count": count, "items": [item_to_dict(item) for item in latest]}

    @router.get("/watches/{watch_id:int}", dependencies=[READ], summary="One watch: its recent matches and deliveries")
    def watch_show(watch_id: Id) -> dict:
        with session_scope() as session:
            watch = _watch(session, watch_id)
            matches, sent = watches.recent(session, watch.id)
            return {
                **watches.to_dict(watch, watches.match_counts(session, watch.id)),
                "matches": [
                    {"item": item.id, "title": item.title, "url": item.url, "story": m.story_id, "alerted": m.alerted}
                    for m, item in matches
                ],
                "deliveries": [watches.delivery_to_dict(d, watch.name) for d in sent],
            }

    @router.delete("/watches/{watch_id:int}", dependencies=[WRITE], status_code=204, summary="Remove a watch")
    def watch_remove(watch_id: Id) -> Response:
        with session_scope() as session:
            watches.remove(session, _watch(session, watch_id).id)
        return Response(status_code=204)

    @router.get(
        "/watches/{watch_id:int}/feed.atom",
        summary="A watch's matches as an Atom feed, newest first (read token as ?token=)",
        response_class=Response,
    )
    def watch_feed(
        request: Request, watch_id: Id, token: Annotated[str | None, Query(max_length=200)] = None
    ) -> Response:
        settings = get_settings()
        web_auth = getattr(request.app.state, "web_auth", None)  # the web page's session, when it is installed
        signed_in = token is None and web_auth is not None and web_auth.cookie_scope(request) is not None
        with session_scope() as session:
            if token is None and not settings.api_reads_open and not signed_in:
                raise HTTPException(401, "a read token is needed: ?token=TOKEN (mirsad tokens add NAME --scope read)")
            if token is not None and not tokens.allows(tokens.scope_of(session, token), "read"):
                raise HTTPException(401, "unknown or revoked token")
            watch = _watch(session, watch_id)
            entries = watches.feed_entries(session, watch.id, FEED_ENTRIES)
            feed = ET.Element("feed", xmlns=ATOM)
            _text(feed, "id", f"{settings.link_base}/watches/{watch.id}")
            _text(feed, "title", f"Mirsad watch: {watch.name}")
            _text(feed, "subtitle", watch.query)
            _text(feed, "updated", _stamp(entries[0][0].matched_at if entries else utcnow()))
            ET.SubElement(feed, "link", rel="alternate", href=f"{settings.link_base}/watches/{watch.id}")
            for match, item in entries:
                entry = ET.SubElement(feed, "entry")
                _text(entry, "id", f"{settings.link_base}/items/{item.id}")
                _text(entry, "title", item.title or item.url)
                ET.SubElement(entry, "link", rel="alternate", href=_clean(item.url))
                ET.SubElement(entry, "link", rel="related", href=f"{settings.link_base}/items/{item.id}")
                _text(entry, "updated", _stamp(match.matched_at))
                if item.published_at:
                    _text(entry, "published", item.published_at)
                _text(entry, "summary", item.text[:SUMMARY_CHARS])
                for tag in item.tags:
                    ET.SubElement(entry, "category", term=_clean(f"{tag.kind}:{tag.value}"))
        body = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    @router.get("/alerts", dependencies=[READ], summary="Webhook deliveries, newest first (`mirsad alerts --json`)")
    def alert_list(dead: bool = False, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict:
        with session_scope() as session:
            return {
                "alerts": [watches.delivery_to_dict(d, name) for d, name in watches.deliveries(session, dead, limit)]
            }

    @router.post("/alerts/{delivery_id}/resend", dependencies=[WRITE], status_code=202, summary="Send a delivery again")
    def alert_resend(delivery_id: Id) -> dict:
        with session_scope() as session:
            watches.reopen(session, delivery_id)
        send_delivery(delivery_id)
        return {"id": delivery_id, "state": "pending"}

    return router


def _watch(session, watch_id: int):
    try:
        return watches.find(session, watch_id)
    except watches.WatchError as exc:
        raise HTTPException(404, f"no watch #{watch_id}") from exc


def _text(parent: ET.Element, tag: str, value: str) -> None:
    ET.SubElement(parent, tag).text = _clean(value)


def _clean(value: str) -> str:
    return _XML_FORBIDDEN.sub("", value)


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")

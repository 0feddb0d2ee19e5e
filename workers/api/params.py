"""What the JSON API and the web page read from a request in the same way: item filters, dates, text checks.

Shared by ``app`` (the API) and ``pages`` (the web page), so both accept and refuse the same input
with the same one-line 400.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import HTTPException, Query

from workers.core.errors import ConnectionFailed, ForbiddenAddress
from workers.core.settings import get_settings
from workers.stages.fetch import check_url
from workers.storage import sources
from workers.storage.db import session_scope
from workers.storage.items import ItemFilter, parse_tag
from workers.storage.models import Source
from workers.text.query import parse

MAX_ID = 2**31 - 1  # PostgreSQL's integer columns
MAX_URLS_PER_PUSH = 1000
_DURATION = re.compile(r"^(\d{1,6})([mhd])$")
Text = Annotated[str | None, Query(max_length=1000)]


def item_filter(
    q: Text = None,
    tag: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006 (FastAPI's way)
    language: Annotated[str | None, Query(max_length=16)] = None,
    site: Annotated[str | None, Query(max_length=255)] = None,
    story: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    since: Text = None,
    until: Text = None,
) -> ItemFilter:
    """The item filters shared by /items and /export: ``q`` (the query language), tags, language, site, story, dates."""
    for name, value in (("q", q), ("language", language), ("site", site), *(("tag", t) for t in tag)):
        no_control(value, name)
    return ItemFilter(
        query=parse(q or ""),
        tags=tuple(parse_tag(t) for t in tag),
        language=language or None,
        site=site or None,
        story=story,
        since=when_param(since, "since"),
        until=when_param(until, "until"),
    )


def when_param(value: str | None, name: str) -> datetime | None:
    """An ISO date or date-time (UTC unless it says), or a duration back from now (30m, 2h, 7d)."""
    if not value:
        return None
    no_control(value, name)
    if match := _DURATION.match(value.strip()):
        unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return datetime.now(UTC) - timedelta(**{unit: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise HTTPException(
            400, f"{name}: {value!r} is not an ISO date (2026-11-30, 2026-11-30T08:00Z) or a duration (30m, 2h, 7d)"
        ) from None
    if isinstance(moment, date) and not isinstance(moment, datetime):
        moment = datetime.combine(moment, datetime.min.time())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def has_control(value: str) -> bool:
    return any(ord(ch) < 32 or ch == "\x7f" for ch in value)


def no_control(value: str | None, name: str) -> None:
    """A NUL (which PostgreSQL refuses in text) or another control character is a 400, not a 500."""
    if value is not None and has_control(value):
        raise HTTPException(400, f"{name}: contains a control character")
    if value is not None and any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise HTTPException(400, f"{name}: is not valid Unicode")


def edit_sources(edit) -> None:
    """Edit config/sources.yaml (ValueError: a 400 naming why) and bring the database in step at once."""
    config_dir = get_settings().config_dir
    try:
        edit(config_dir)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    with session_scope() as session:
        sources.sync_from_config(session, config_dir)


def follow(url: str, every: int | None) -> None:
    """Follow a feed or sitemap (config/sources.yaml and the database), or a 400 saying why not."""
    no_control(url, "url")
    guarded(url)
    edit_sources(lambda config_dir: sources.add_to_file(config_dir, url, every or sources.DEFAULT_EVERY))


def stop_following(source_id: int) -> str:
    """Stop following source ``source_id`` (a 404 when there is none); its URL."""
    with session_scope() as session:
        found = session.get(Source, source_id)
        url = found.url if found else None
    if url is None:
        raise HTTPException(404, f"no source #{source_id}")
    edit_sources(lambda config_dir: sources.remove_from_file(config_dir, url))
    return url


def guarded(url: str) -> None:
    """A URL fetch's address guard refuses (a private, loopback or metadata address, an internal
    service's port) is a 422 saying why, a malformed one a 400; a host that does not resolve now is
    let through (fetch checks every address again)."""
    try:
        check_url(url.strip(), get_settings())
    except ForbiddenAddress as exc:
        raise HTTPException(422, f"url: {exc}") from None
    except ConnectionFailed:
        pass

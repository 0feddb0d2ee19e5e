"""The API's bearer tokens: created once (the secret is shown then, never again), stored as SHA-256.

A token's secret has 256 random bits, so one unsalted SHA-256 is enough to make a stolen table
useless, and it lets a request's token be found by its hash in one indexed look-up.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from workers.core.errors import MirsadError
from workers.storage.db import rowcount
from workers.storage.models import ApiToken, utcnow

SCOPES = ("read", "write")  # write may also read
TOKEN_PREFIX = "mirsad_"
LAST_USED_RESOLUTION = timedelta(minutes=5)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class TokenError(MirsadError):
    """A token that cannot be added or revoked (bad name or scope, a name taken, no such token)."""


@dataclass(frozen=True)
class TokenInfo:
    name: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "scope": self.scope,
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
        }


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add(session: Session, name: str, scope: str) -> str:
    """Create a token and return its secret (the only time it is known)."""
    if not _NAME.match(name):
        raise TokenError(f"token name {name!r}: letters, digits, '.', '_' or '-', at most 64")
    if scope not in SCOPES:
        raise TokenError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with session.begin_nested():
            session.add(ApiToken(name=name, scope=scope, token_hash=hash_token(token)))
    except IntegrityError as exc:
        raise TokenError(f"a token named {name!r} exists; revoke it first") from exc
    return token


def listing(session: Session) -> list[TokenInfo]:
    return [
        TokenInfo(t.name, t.scope, t.created_at, t.last_used_at)
        for t in session.scalars(select(ApiToken).order_by(ApiToken.name))
    ]


def revoke(session: Session, name: str) -> None:
    if rowcount(session.execute(delete(ApiToken).where(ApiToken.name == name))) == 0:
        raise TokenError(f"no token named {name!r}")


def scope_of(session: Session, token: str) -> str | None:
    """The scope of a valid token (and its use noted), or None."""
    return scope_of_hash(session, hash_token(token))


def scope_of_hash(session: Session, token_hash: str) -> str | None:
    """``scope_of`` for a token known by its hash (the web page's session cookie carries only the hash)."""
    row = session.execute(
        select(ApiToken.id, ApiToken.scope, ApiToken.last_used_at).where(ApiToken.token_hash == token_hash)
    ).first()
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:  # not a write per request
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
    return row.scope


def allows(scope: str | None, needed: str) -> bool:
    return scope is not None and SCOPES.index(scope) >= SCOPES.index(needed)

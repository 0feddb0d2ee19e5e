"""Signing in to the web page: an API token becomes a signed session cookie; CSRF tokens for its forms.

The session cookie (HttpOnly, SameSite=Strict) carries the token's SHA-256, never the token, and
every request checks it against the tokens table, so revoking a token signs its sessions out. The
CSRF token is double-submit: a signed cookie of its own, repeated in a hidden field of every form.
A request with ``Authorization: Bearer`` is signed in by its header alone and needs no CSRF token
(a browser never adds that header to a forged request).
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.engine import make_url

from workers.core.settings import Settings
from workers.storage import tokens
from workers.storage.db import session_scope

SESSION_COOKIE = "mirsad_session"
CSRF_COOKIE = "mirsad_csrf"
SESSION_DAYS = 30
SECRET_FILE = "web-secret"


def secret_path(settings: Settings) -> Path:
    """Where the generated secret is kept: beside the SQLite database, else in the user's data folder."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).expanduser().resolve().parent / SECRET_FILE
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "mirsad" / SECRET_FILE


def web_secret(settings: Settings) -> str:
    """MIRSAD_WEB_SECRET, else the generated one (made once, readable by its owner only; the first writer wins)."""
    if settings.web_secret:
        return settings.web_secret
    path = secret_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="ascii").strip()


class WebAuth:
    """The signers of one app (made once when the app is created, from its settings)."""

    def __init__(self, settings: Settings):
        secret = web_secret(settings)
        self.sessions = URLSafeTimedSerializer(secret, salt="mirsad-session")
        self.csrf = URLSafeTimedSerializer(secret, salt="mirsad-csrf")

    def session_value(self, token: str) -> str:
        return self.sessions.dumps({"t": tokens.hash_token(token)})

    def cookie_scope(self, request: Request) -> str | None:
        """The scope of the token the session cookie was made from, if it is valid and the token not revoked."""
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            token_hash = self.sessions.loads(raw, max_age=SESSION_DAYS * 86400)["t"]
        except (BadSignature, KeyError, TypeError):
            return None
        with session_scope() as session:
            return tokens.scope_of_hash(session, token_hash)

    def csrf_value(self, request: Request) -> tuple[str, bool]:
        """The request's CSRF token, and whether it is new (the response must then set the cookie)."""
        current = request.cookies.get(CSRF_COOKIE)
        if current and self._valid_csrf(current):
            return current, False
        return self.csrf.dumps(secrets.token_urlsafe(16)), True

    def csrf_matches(self, request: Request, submitted: str | None) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE)
        return bool(cookie and submitted and self._valid_csrf(cookie) and hmac.compare_digest(cookie, submitted))

    def _valid_csrf(self, value: str) -> bool:
        try:
            self.csrf.loads(value, max_age=SESSION_DAYS * 86400)
        except BadSignature:
            return False
        return True


def bearer_token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None

"""Sending what watches found: signed webhooks and e-mail digests, and checking where they go.

Webhooks are signed the Standard Webhooks way (``standardwebhooks``: headers webhook-id,
webhook-timestamp and webhook-signature = ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``
with the watch's ``whsec_`` secret), so receivers verify them with any of that spec's libraries.
They go out through fetch's guarded transport: the URL's addresses are checked when a watch is added
and again where the socket is opened, so a webhook can never reach a private, loopback or metadata
address unless MIRSAD_ALLOW_PRIVATE_HOSTS allows it. Redirects are not followed (a receiver that
moved must be edited, not chased into the intranet).
"""

from __future__ import annotations

import base64
import re
import secrets
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
from standardwebhooks import Webhook

from workers.core.errors import ForbiddenAddress, InvalidURL, MirsadError, RetryableError
from workers.core.settings import Settings
from workers.stages.fetch import GuardedTransport, check_address, check_port, resolve_host

RETRYABLE_STATUSES = frozenset({408, 425, 429}) | frozenset(range(500, 600))
SECRET_BYTES = 24
_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


class InvalidDestination(MirsadError):
    """A webhook URL or e-mail address a watch cannot use; the message says why."""


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes it: ``whsec_`` + base64 of random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def check_webhook_url(url: str, settings: Settings) -> str:
    """``url`` if a webhook may be sent there (http(s), a port that is not an internal service's, every
    address of its host public or allowed by MIRSAD_ALLOW_PRIVATE_HOSTS); else InvalidDestination."""
    try:
        parsed = httpx.URL(url)
        host = parsed.host
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidDestination(f"webhook {url!r} is not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not host:
        raise InvalidDestination(f"webhook {url!r}: only http:// and https:// URLs with a host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    allowed = settings.private_networks_allowed
    try:
        check_port(port)
        addresses = resolve_host(host, port)
        for address in addresses:
            check_address(address, allowed)
    except ForbiddenAddress as exc:
        raise InvalidDestination(f"webhook {url!r} refused: {exc}") from None
    except (OSError, UnicodeError) as exc:
        raise InvalidDestination(f"webhook {url!r}: cannot resolve {host} ({exc})") from None
    return url


def check_email(address: str) -> str:
    if not _EMAIL.match(address or "") or len(address) > 254:
        raise InvalidDestination(f"{address!r} is not an e-mail address")
    return address


@dataclass(frozen=True)
class SendOutcome:
    """One attempt at a webhook: delivered, or the error and whether trying again may help."""

    delivered: bool
    error: str | None = None
    retryable: bool = False
    retry_after: float | None = None


def signed_headers(secret: str, message_id: str, body: str, now: datetime | None = None) -> dict[str, str]:
    """The Standard Webhooks headers of ``body`` (signed afresh at each attempt, with its own timestamp)."""
    moment = now or datetime.now(UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, moment, body),
    }


def send_webhook(url: str, secret: str, message_id: str, body: str, settings: Settings) -> SendOutcome:
    """POST ``body`` (JSON) to ``url`` signed with ``secret``; 2xx is delivered, never raises."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": settings.user_agent,
        **signed_headers(secret, message_id, body),
    }
    try:
        with httpx.Client(
            transport=GuardedTransport(settings, resolve_host),
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(settings.webhook_timeout, connect=min(settings.connect_timeout, 10.0)),
        ) as client:
            response = client.post(url, content=body.encode("utf-8"), headers=headers)
    except ForbiddenAddress as exc:
        return SendOutcome(False, f"refused: {exc}")
    except httpx.TimeoutException as exc:
        return SendOutcome(False, f"timed out ({type(exc).__name__})", retryable=True)
    except (httpx.HTTPError, OSError) as exc:
        return SendOutcome(False, f"{type(exc).__name__}: {exc}", retryable=True)
    if 200 <= response.status_code < 300:
        return SendOutcome(True)
    reason = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    retry_after = _seconds(response.headers.get("retry-after"))
    if response.status_code in RETRYABLE_STATUSES:
        return SendOutcome(False, reason, retryable=True, retry_after=retry_after)
    return SendOutcome(False, reason + (" (redirects are not followed)" if 300 <= response.status_code < 400 else ""))


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    user: str | None
    password: str | None
    tls: bool  # smtps: TLS from the first byte
    starttls: bool


def smtp_server(smtp_url: str) -> SmtpServer:
    """MIRSAD_SMTP_URL read: ``smtp://[user:pass@]host[:port][?starttls=1]`` or ``smtps://…``."""
    parts = urlsplit(smtp_url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise InvalidURL(f"MIRSAD_SMTP_URL must be smtp://host[:port] or smtps://host[:port], got {smtp_url!r}")
    starttls = parse_qs(parts.query).get("starttls", ["0"])[0].lower() in ("1", "true", "yes", "on")
    return SmtpServer(
        parts.hostname,
        parts.port or (465 if parts.scheme == "smtps" else 587 if starttls else 25),
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
        parts.scheme == "smtps",
        starttls,
    )


def send_email(message: EmailMessage, settings: Settings) -> None:
    """Send one message through MIRSAD_SMTP_URL; connection and server errors are RetryableError."""
    server = smtp_server(settings.smtp_url)
    timeout = settings.webhook_timeout
    try:
        if server.tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                server.host, server.port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=timeout)
        with client:
            if server.starttls:
                client.starttls(context=ssl.create_default_context())
            if server.user:
                client.login(server.user, server.password or "")
            client.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise RetryableError(f"SMTP {server.host}:{server.port}: {type(exc).__name__}: {exc}") from exc


def digest_message(
    sender: str, recipient: str, watch_name: str, stories: list[tuple[str, list[dict]]], period: str
) -> EmailMessage:
    """A plain-text digest: one section per story (its title, then its items: title, site, link)."""
    count = sum(len(items) for _, items in stories)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = f"Mirsad {period} digest: {count} new for {_one_line(watch_name)}"
    lines = [f"{count} item(s) matched the watch {watch_name!r} in {len(stories)} story(ies).", ""]
    for title, items in stories:
        lines.append(f"== {_one_line(title)} ({len(items)})")
        for item in items:
            lines.append(f"- {_one_line(item.get('title') or '(no title)')} [{item.get('site')}]")
            lines.append(f"  {item.get('url')}")
            lines.append(f"  {item.get('link')}")
        lines.append("")
    message.set_content("\n".join(lines))
    return message


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:300]

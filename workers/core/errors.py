"""Mirsad's exceptions.

The whole tree, so a task can tell at a glance whether to try again::

    MirsadError
    ├── RetryableError             a later attempt may succeed: retry with backoff
    │   ├── FetchTimeout           connect, read or whole-request deadline passed
    │   ├── ConnectionFailed       refused, reset, DNS failure, broken transfer
    │   ├── ServerBusy             HTTP 408, 429 or 5xx (carries Retry-After when sent)
    │   ├── HostNotReady           the host's turn is taken or it is paused (politeness): come back later
    │   └── DatabaseUnavailable    the database could not be reached
    └── PermanentError             the same input will fail the same way: record and stop
        ├── InvalidURL             malformed, or a scheme other than http/https
        ├── ForbiddenAddress       the host resolves to loopback/private/reserved space
        ├── HTTPStatusError        HTTP 4xx other than 408 and 429
        ├── TooManyRedirects       more hops than MIRSAD_MAX_REDIRECTS
        ├── RobotsDisallowed       the site's robots.txt forbids our user agent this URL
        ├── UnsupportedContent     not HTML/XHTML (a PDF, an image, binary data)
        ├── PageTooLarge           decoded body over MIRSAD_MAX_BYTES
        └── EmptyExtraction        no article text could be extracted

Every error has a one-line ``reason`` that is stored with the failed URL.
"""

from __future__ import annotations


class MirsadError(Exception):
    """Base of all Mirsad errors; ``str(err)`` is the reason stored with the URL."""

    retryable = False

    @property
    def reason(self) -> str:
        return f"{type(self).__name__}: {self}"


class RetryableError(MirsadError):
    retryable = True

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class FetchTimeout(RetryableError):
    pass


class ConnectionFailed(RetryableError):
    pass


class ServerBusy(RetryableError):
    def __init__(self, message: str, status: int, retry_after: float | None = None):
        super().__init__(message, retry_after)
        self.status = status


class HostNotReady(RetryableError):
    """The host's turn is taken (or the host is paused); ``retry_after`` says for how long."""


class DatabaseUnavailable(RetryableError):
    """``claimed_attempt``: the attempt a stage had claimed when the database went away, so it can be given back."""

    claimed_attempt: int | None = None


class PermanentError(MirsadError):
    pass


class InvalidURL(PermanentError):
    pass


class ForbiddenAddress(PermanentError):
    pass


class HTTPStatusError(PermanentError):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class TooManyRedirects(PermanentError):
    pass


class RobotsDisallowed(PermanentError):
    """The site's robots.txt forbids our user agent this URL."""


class UnsupportedContent(PermanentError):
    pass


class PageTooLarge(PermanentError):
    pass


class EmptyExtraction(PermanentError):
    pass

"""The relay package's failures, and the one place that translates foreign exceptions.

Every failure raised by :mod:`adapters.relay` is a :class:`RelayError`, split the
way the rest of :mod:`adapters` splits failures: :class:`PermanentRelayError`
(retrying will fail the same way: a malformed URL, a handshake the relay refuses
with 404, a bad certificate) and :class:`TemporaryRelayError` (the relay may be
reachable later; ``delay`` says when a retry makes sense).

aiohttp, asyncio and the OS raise their own exceptions; :func:`translate` and the
:func:`translated` context manager turn them into ours, the original kept as
``__cause__``. Nothing else in the package catches aiohttp exceptions, so the
mapping is decided here and only here (httpx's ``map_httpcore_exceptions`` is the
model).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp

from adapters.errors import AdapterError, PermanentAdapterError, TemporaryAdapterError

# Handshake answers that say "not now" rather than "never" (timeout, too early,
# too many requests); every other 4xx means the URL or the request is wrong.
_RETRYABLE_CLIENT_STATUSES = frozenset({408, 425, 429})
DEFAULT_RETRY_DELAY = 1.0


class RelayError(AdapterError):
    """Base class of every failure talking to a relay; ``url`` says which relay."""

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(f"{url}: {message}" if url else message)
        self.url = url


class PermanentRelayError(RelayError, PermanentAdapterError):
    """Retrying the same request against the same relay will fail the same way."""


class TemporaryRelayError(RelayError, TemporaryAdapterError):
    """The relay may answer if asked again after ``delay`` seconds."""

    def __init__(self, message: str, *, url: str = "", delay: float = DEFAULT_RETRY_DELAY) -> None:
        RelayError.__init__(self, message, url=url)
        self.delay = delay


class InvalidRelayUrl(PermanentRelayError):
    """A relay URL is not a usable ``ws://`` or ``wss://`` URL (the message says why)."""


class ConnectionLost(TemporaryRelayError):
    """The websocket closed or failed while requests were outstanding."""


class SubscriptionClosed(RelayError):
    """The relay ended a subscription with ``CLOSED``; ``prefix`` is its machine-readable part."""

    def __init__(self, message: str, *, url: str = "", prefix: str = "") -> None:
        super().__init__(message, url=url)
        self.prefix = prefix


def translate(exc: BaseException, *, url: str = "") -> RelayError:
    """The :class:`RelayError` that ``exc`` (raised by aiohttp, asyncio or the OS) means.

    The caller raises the result ``from exc``. A :class:`RelayError` comes back
    unchanged; cancellation must never reach here (it is not a failure).
    """
    if isinstance(exc, RelayError):
        return exc
    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidRelayUrl(f"aiohttp cannot use this URL ({exc})", url=url)
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return _handshake_error(exc, url)
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ServerFingerprintMismatch):
        # A certificate that does not verify will not verify on the next attempt either.
        return PermanentRelayError(f"TLS failed: {exc}", url=url)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return TemporaryRelayError(f"cannot resolve the relay's host: {exc}", url=url, delay=5.0)
    if isinstance(exc, TimeoutError):  # asyncio's, aiohttp's ServerTimeoutError, socket's
        return TemporaryRelayError(f"timed out: {exc or 'no answer in time'}", url=url)
    if isinstance(exc, aiohttp.ServerDisconnectedError | ConnectionResetError | EOFError):
        return ConnectionLost(f"connection lost: {exc or type(exc).__name__}", url=url)
    if isinstance(exc, aiohttp.WebSocketError):
        return ConnectionLost(f"websocket protocol error {exc.code}: {exc}", url=url)
    if isinstance(exc, aiohttp.ClientError | OSError):
        return TemporaryRelayError(f"cannot talk to the relay: {exc}", url=url)
    return TemporaryRelayError(f"unexpected {type(exc).__name__}: {exc}", url=url)


def is_translatable(exc: BaseException) -> bool:
    """True for the exceptions :func:`translate` knows; others (bugs) propagate as they are."""
    return isinstance(
        exc,
        aiohttp.ClientError | aiohttp.WebSocketError | OSError | TimeoutError | EOFError,
    ) and not isinstance(exc, asyncio.CancelledError)


@contextmanager
def translated(url: str) -> Iterator[None]:
    """Run a block that talks to ``url``; foreign network exceptions leave as RelayErrors."""
    try:
        yield
    except RelayError:
        raise
    except BaseException as exc:
        if not is_translatable(exc):
            raise
        raise translate(exc, url=url) from exc


def _handshake_error(exc: aiohttp.WSServerHandshakeError, url: str) -> RelayError:
    status = exc.status
    detail = f"websocket handshake refused with HTTP {status} {exc.message}".rstrip()
    if status >= 500 or status in _RETRYABLE_CLIENT_STATUSES:
        return TemporaryRelayError(detail, url=url, delay=_retry_after(exc) or 5.0)
    if 400 <= status < 500:
        return PermanentRelayError(
            f"{detail}; check the relay URL (path, host) and whether the relay admits us",
            url=url,
        )
    # 200 without an upgrade, or 3xx: the endpoint is not a websocket relay.
    return PermanentRelayError(f"{detail}; the URL does not lead to a Nostr relay", url=url)


def _retry_after(exc: aiohttp.ClientResponseError) -> float | None:
    headers = exc.headers
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None

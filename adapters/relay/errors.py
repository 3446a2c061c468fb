"""The relay package's failures, and the one place that translates foreign exceptions.

Every failure raised by :mod:`adapters.relay` is a :class:`RelayError`, split the
way the rest of :mod:`adapters` splits failures: :class:`PermanentRelayError`
(retrying will fail the same way: a malformed URL, a handshake the relay refuses
with 404, a bad certificate) and :class:`TemporaryRelayError` (the relay may be
reachable later; ``delay`` is the relay's own word on when, if it gave one).
The retry policy reads both (:meth:`adapters.relay.publishing.RetryPolicy.pause_after`).

aiohttp, asyncio and the OS raise their own exceptions; :func:`translate` and the
:func:`translated` context manager turn them into ours, the original kept as
``__cause__``. Nothing else in the package catches aiohttp exceptions, so the
mapping is decided here and only here (httpx's ``map_httpcore_exceptions`` is the
model).
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp

from adapters.errors import AdapterError, PermanentAdapterError, TemporaryAdapterError

# Handshake answers that say "not now" rather than "never" (timeout, too early,
# too many requests); every other 4xx means the URL or the request is wrong.
_RETRYABLE_CLIENT_STATUSES = frozenset({408, 425, 429})


class RelayError(AdapterError):
    """Base class of every failure talking to a relay; ``url`` says which relay.

    ``str()`` is the whole sentence, naming the relay; ``reason`` is the same
    without the relay, for reports that name it already.
    """

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(self._sentence(message, url))
        self.url = url
        self.reason = message

    @staticmethod
    def _sentence(message: str, url: str) -> str:
        return f"{url}: {message}" if url else message


class PermanentRelayError(RelayError, PermanentAdapterError):
    """Retrying the same request against the same relay will fail the same way."""


class TemporaryRelayError(RelayError, TemporaryAdapterError):
    """The relay may answer if asked again later.

    ``delay`` is how many seconds the relay asked us to wait (an HTTP
    ``Retry-After``), or ``None`` when it did not say: the retry policy then
    backs off on its own schedule.
    """

    def __init__(self, message: str, *, url: str = "", delay: float | None = None) -> None:
        RelayError.__init__(self, message, url=url)
        self.delay = delay


class InvalidRelayUrl(PermanentRelayError):
    """A relay URL is not a usable ``ws://`` or ``wss://`` URL (the message says why)."""


class ConnectionLost(TemporaryRelayError):
    """The websocket closed or failed while requests were outstanding."""


class CannotConnect(TemporaryRelayError):
    """No websocket could be opened: refused, unreachable, or no answer in time.

    Reads "cannot connect to ws://host:port: connection refused"; ``reason``
    is the part after the URL.
    """

    @staticmethod
    def _sentence(message: str, url: str) -> str:
        return f"cannot connect to {url}: {message}" if url else f"cannot connect: {message}"


class RelayTimeout(TemporaryRelayError):
    """A relay did not answer within the time allowed; the message says to what and how long."""


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
        why = _os_reason(exc.os_error)
        return CannotConnect(f"cannot resolve host {exc.host!r} ({why})", url=url)
    if isinstance(exc, aiohttp.ClientConnectorError):
        # aiohttp's own wording ("Cannot connect to host h:p ssl:default [...]") names
        # its connector's TLS setting even for ws://; the OS's reason is what matters.
        return CannotConnect(_os_reason(exc.os_error), url=url)
    if isinstance(exc, TimeoutError):  # asyncio's, aiohttp's ServerTimeoutError, socket's
        # Callers that know what they waited for say so (see RelayTimeout); this is
        # the fallback, and an empty TimeoutError() must not leave "timed out:".
        text = str(exc).strip()
        return RelayTimeout(f"timed out ({text})" if text else "no answer in time", url=url)
    if isinstance(exc, aiohttp.ServerDisconnectedError | ConnectionResetError | EOFError):
        return ConnectionLost(f"connection lost: {exc or type(exc).__name__}", url=url)
    if isinstance(exc, aiohttp.WebSocketError):
        return ConnectionLost(f"websocket protocol error {exc.code}: {exc}", url=url)
    if isinstance(exc, ConnectionRefusedError | ConnectionAbortedError):
        return CannotConnect(_os_reason(exc), url=url)
    if isinstance(exc, OSError) and not isinstance(exc, aiohttp.ClientError):
        return TemporaryRelayError(f"network error: {_os_reason(exc)}", url=url)
    if isinstance(exc, aiohttp.ClientError):
        return TemporaryRelayError(f"cannot talk to the relay: {exc}", url=url)
    return TemporaryRelayError(f"unexpected {type(exc).__name__}: {exc}", url=url)


def _os_reason(exc: OSError) -> str:
    """What the OS said, in its plain words ("connection refused"), without Python's
    decoration ("[Errno 111] Connect call failed ('127.0.0.1', 7777)")."""
    code = exc.errno
    if code == errno.ECONNREFUSED:
        return "connection refused"
    if isinstance(code, int) and code > 0:
        return os.strerror(code).lower()
    text = (exc.strerror or str(exc) or type(exc).__name__).strip()
    return text[:1].lower() + text[1:]


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
        return TemporaryRelayError(detail, url=url, delay=_retry_after(exc))
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

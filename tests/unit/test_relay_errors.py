"""Foreign exceptions are translated into the relay package's typed errors in one place."""

from __future__ import annotations

import asyncio
import errno
import os
from types import SimpleNamespace

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from adapters.errors import AdapterError, PermanentAdapterError, TemporaryAdapterError
from adapters.relay.errors import (
    CannotConnect,
    ConnectionLost,
    InvalidRelayUrl,
    PermanentRelayError,
    RelayError,
    RelayTimeout,
    TemporaryRelayError,
    translate,
    translated,
)

URL = "wss://relay.example.com"


def _handshake(
    status: int, headers: dict[str, str] | None = None
) -> aiohttp.WSServerHandshakeError:
    return aiohttp.WSServerHandshakeError(
        request_info=None,  # type: ignore[arg-type]
        history=(),
        status=status,
        message="nope",
        headers=CIMultiDictProxy(CIMultiDict(headers or {})),
    )


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (aiohttp.InvalidURL("x"), InvalidRelayUrl),
        (_handshake(404), PermanentRelayError),
        (_handshake(403), PermanentRelayError),
        (_handshake(200), PermanentRelayError),
        (_handshake(429), TemporaryRelayError),
        (_handshake(503), TemporaryRelayError),
        (aiohttp.ServerDisconnectedError(), ConnectionLost),
        (ConnectionResetError("reset"), ConnectionLost),
        (aiohttp.ClientConnectionResetError("reset"), ConnectionLost),
        (TimeoutError(), RelayTimeout),
        (aiohttp.ServerTimeoutError("slow"), RelayTimeout),
        (ConnectionRefusedError("refused"), CannotConnect),
        (OSError("network is unreachable"), TemporaryRelayError),
        (aiohttp.ClientPayloadError("bad"), TemporaryRelayError),
    ],
)
def test_foreign_exceptions_map_to_permanent_or_temporary(
    exc: BaseException, kind: type[RelayError]
) -> None:
    translated_exc = translate(exc, url=URL)
    assert type(translated_exc) is kind
    assert translated_exc.url == URL
    assert URL in str(translated_exc)


def test_the_split_matches_the_adapters_base_classes() -> None:
    assert issubclass(RelayError, AdapterError)
    assert issubclass(PermanentRelayError, PermanentAdapterError)
    assert issubclass(TemporaryRelayError, TemporaryAdapterError)
    assert issubclass(ConnectionLost, TemporaryRelayError)


def test_retry_after_on_a_refused_handshake_becomes_the_delay() -> None:
    error = translate(_handshake(503, {"Retry-After": "7"}))
    assert isinstance(error, TemporaryRelayError)
    assert error.delay == 7.0


def test_a_delay_is_only_ever_the_relays_own_word_on_when_to_ask_again() -> None:
    # Without Retry-After the retry policy's own backoff decides, not a guess made here.
    for exc in (
        _handshake(503, {}),
        aiohttp.ClientConnectorDNSError(
            SimpleNamespace(host="relay.invalid", port=443, ssl=True),  # type: ignore[arg-type]
            OSError(-2, "Name or service not known"),
        ),
        ConnectionRefusedError("refused"),
    ):
        error = translate(exc, url=URL)
        assert isinstance(error, TemporaryRelayError)
        assert error.delay is None


def test_the_context_manager_keeps_the_original_as_cause() -> None:
    original = aiohttp.ServerDisconnectedError()
    with pytest.raises(ConnectionLost) as caught, translated(URL):
        raise original
    assert caught.value.__cause__ is original


def test_the_context_manager_lets_bugs_and_cancellation_through() -> None:
    with pytest.raises(KeyError), translated(URL):
        raise KeyError("a bug is not a relay failure")
    with pytest.raises(asyncio.CancelledError), translated(URL):
        raise asyncio.CancelledError


def test_relay_errors_pass_through_unchanged() -> None:
    error = PermanentRelayError("x", url=URL)
    assert translate(error) is error


def _connector_error(os_error: OSError, *, tls: bool = False) -> aiohttp.ClientConnectorError:
    key = SimpleNamespace(host="127.0.0.1", port=7777, ssl=tls)
    return aiohttp.ClientConnectorError(key, os_error)  # type: ignore[arg-type]


def test_a_refused_connection_reads_cannot_connect_without_aiohttps_connector_wording() -> None:
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 7777)")
    error = translate(_connector_error(refused), url="ws://127.0.0.1:7777")
    assert isinstance(error, CannotConnect)
    assert str(error) == "cannot connect to ws://127.0.0.1:7777: connection refused"
    assert error.reason == "connection refused"


@pytest.mark.parametrize("code", [errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNRESET])
def test_connection_errors_say_what_the_os_said_and_nothing_of_ssl(code: int) -> None:
    error = translate(_connector_error(OSError(code, "whatever")), url="ws://10.0.0.1:7777")
    assert str(error) == f"cannot connect to ws://10.0.0.1:7777: {os.strerror(code).lower()}"
    assert "ssl" not in str(error)


def test_an_empty_timeout_never_leaves_a_dangling_colon() -> None:
    error = translate(TimeoutError(), url=URL)
    assert not str(error).rstrip().endswith(":")
    assert str(error) == f"{URL}: no answer in time"

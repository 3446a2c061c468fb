"""NIP-AE relay URL canonicalization and de-duplication."""

from __future__ import annotations

import pytest

from adapters.relay import InvalidRelayUrl, canonical_url, dedupe
from adapters.relay.urls import bridge_twin


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("wss://relay.example.com", "wss://relay.example.com"),
        ("wss://relay.example.com/", "wss://relay.example.com"),
        ("WSS://Relay.Example.COM/", "wss://relay.example.com"),
        ("wss://relay.example.com:443", "wss://relay.example.com"),
        ("wss://relay.example.com:443/", "wss://relay.example.com"),
        ("ws://relay.example.com:80/", "ws://relay.example.com"),
        ("ws://relay.example.com:443", "ws://relay.example.com:443"),
        ("wss://relay.example.com:80", "wss://relay.example.com:80"),
        ("wss://relay.example.com:7777/", "wss://relay.example.com:7777"),
        ("ws://127.0.0.1:7777", "ws://127.0.0.1:7777"),
        ("wss://relay.example.com/Path/", "wss://relay.example.com/Path/"),
        ("wss://relay.example.com/Path", "wss://relay.example.com/Path"),
        ("wss://relay.example.com//", "wss://relay.example.com//"),
        ("wss://relay.example.com/?x=1", "wss://relay.example.com?x=1"),
        ("wss://relay.example.com/a?B=C", "wss://relay.example.com/a?B=C"),
        ("wss://[::1]:443/", "wss://[::1]"),
        ("ws://[2001:DB8::1]:8080/r", "ws://[2001:db8::1]:8080/r"),
        ("  wss://relay.example.com/  ", "wss://relay.example.com"),
        ("wss://RELAY.example.com:0443", "wss://relay.example.com"),
    ],
)
def test_canonical_form(written: str, canonical: str) -> None:
    assert canonical_url(written) == canonical


def test_canonicalization_is_idempotent() -> None:
    once = canonical_url("WSS://Relay.Example.com:443/")
    assert canonical_url(once) == once


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("ftp://relay.example.com", "ws:// or wss://"),
        ("relay.example.com", "ws:// or wss://"),
        ("wss:relay.example.com", "ws:// or wss://"),
        ("wss://", "no host"),
        ("wss:///path", "no host"),
        ("wss://:443", "no host"),
        ("wss://relay example.com", "whitespace"),
        ("wss://relay.example.com:port", "not a number"),
        ("wss://relay.example.com:70000", "outside 1..65535"),
        ("wss://relay.example.com:0", "outside 1..65535"),
        ("wss://user:pw@relay.example.com", "user information"),
        ("wss://[::1", "unclosed"),
        ("wss://[not-ipv6]", "invalid IPv6"),
        ("wss://[::1]x", "after its IPv6"),
        ("wss://relay!.example.com", "invalid characters"),
        ("wss://relay.example.com\\path", "backslash"),
    ],
)
def test_malformed_urls_are_refused_with_a_reason(url: str, says: str) -> None:
    with pytest.raises(InvalidRelayUrl, match=says.replace(".", r"\.").replace("/", "/")):
        canonical_url(url)


def test_dedupe_keeps_the_first_written_form_of_each_relay() -> None:
    urls = [
        "wss://Relay.Example.com/",
        "wss://relay.example.com",
        "wss://relay.example.com:443",
        "wss://other.example.com/path",
        "wss://other.example.com/path/",
        "  wss://relay.example.com/  ",
    ]
    assert dedupe(urls) == [
        "wss://Relay.Example.com/",
        "wss://other.example.com/path",
        "wss://other.example.com/path/",
    ]


def test_dedupe_refuses_a_list_with_a_malformed_url() -> None:
    with pytest.raises(InvalidRelayUrl):
        dedupe(["wss://relay.example.com", "ftp://nope"])


def test_an_invalid_relay_url_is_a_permanent_adapter_error() -> None:
    from adapters.errors import PermanentAdapterError

    with pytest.raises(PermanentAdapterError):
        canonical_url("ftp://x")


def test_a_buzz_bridge_url_is_canonical_under_the_same_rules() -> None:
    assert canonical_url("HTTPS://Relay.Example.com:443/") == "https://relay.example.com"
    assert canonical_url("http://127.0.0.1:80") == "http://127.0.0.1"
    assert canonical_url("http://127.0.0.1:3000") == "http://127.0.0.1:3000"
    # The bridge and the websocket of one relay are two entries: two wires.
    assert dedupe(["wss://relay.example.com", "https://relay.example.com"]) == [
        "wss://relay.example.com",
        "https://relay.example.com",
    ]


@pytest.mark.parametrize(
    ("url", "twin"),
    [
        ("ws://127.0.0.1:7000", "http://127.0.0.1:7000"),
        ("WSS://Relay.Example.com:443/", "https://relay.example.com"),
        ("ws://relay.example.com:80", "http://relay.example.com"),
        ("wss://relay.example.com:8443/nostr", "https://relay.example.com:8443/nostr"),
        ("http://127.0.0.1:7000", None),
        ("https://relay.example.com", None),
    ],
)
def test_a_websocket_relays_bridge_twin_is_the_same_origin_over_http(
    url: str, twin: str | None
) -> None:
    assert bridge_twin(url) == twin

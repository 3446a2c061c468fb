"""Relay URLs as NIP-AE compares them: canonical form and de-duplication.

NIP-AE compares configured relay URLs *for equality only*, after canonicalizing:
lowercase scheme and host, strip the default port (443 for ``wss``, 80 for
``ws``), strip a trailing slash on an otherwise empty path; the path is otherwise
kept verbatim. Duplicates are removed before querying, and connections go to the
URL *as written* (so :func:`dedupe` keeps the first written form of each).

Used by :class:`adapters.relay.client.RelayPool` and by whoever stores the
configured relay list (which stores canonical forms).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Final

from adapters.relay.errors import InvalidRelayUrl

# ws/wss: a websocket relay; http/https: a buzz relay's HTTP bridge (adapters.relay.bridge).
_DEFAULT_PORTS: Final = {"ws": 80, "wss": 443, "http": 80, "https": 443}
# Characters a DNS name or IPv4 literal can hold; non-ASCII letters are allowed too
# (an internationalized name as written), compared after lowercasing.
_HOST_PUNCTUATION: Final = frozenset("-._~")
_FORBIDDEN: Final = frozenset(" \t\r\n\\\x00")


def canonical_url(url: str) -> str:
    """The NIP-AE canonical form of a ``ws://`` / ``wss://`` URL (or of a buzz HTTP
    bridge's ``http://`` / ``https://`` URL, under the same rules).

    Surrounding whitespace is ignored (lists are often hand-edited); anything
    that is not a usable relay URL raises :class:`InvalidRelayUrl` saying what to fix.
    """
    if not isinstance(url, str):
        raise InvalidRelayUrl(f"a relay URL must be a string, not {type(url).__name__}")
    text = url.strip()
    if not text:
        raise InvalidRelayUrl("a relay URL is empty; write it as wss://host[:port][/path]")
    if any(ch in _FORBIDDEN or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise InvalidRelayUrl(
            f"relay URL {text!r} contains whitespace, a backslash or a control character"
        )
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS:
        raise InvalidRelayUrl(
            f"relay URL {text!r} must start with ws:// or wss:// (a Nostr relay's websocket), "
            "or http:// or https:// (a buzz relay's HTTP bridge)"
        )
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    host, port = _split_authority(authority, text)
    if port == _DEFAULT_PORTS[scheme]:
        port = None
    if tail.startswith("/"):
        path_end = min((i for i in (tail.find(c) for c in "?#") if i >= 0), default=len(tail))
        if path_end == 1:  # the path is just "/": an otherwise empty path
            tail = tail[1:]
    netloc = host if port is None else f"{host}:{port}"
    return f"{scheme}://{netloc}{tail}"


_BRIDGE_SCHEME: Final = {"ws": "http", "wss": "https"}


def bridge_twin(url: str) -> str | None:
    """The canonical URL of the HTTP bridge a buzz relay serves beside the websocket
    relay at ``url`` (buzz serves both on one origin: the same host, port and path,
    ``http`` for ``ws`` and ``https`` for ``wss``); None for a URL that is not a
    websocket relay's. A relay list holding both URLs names one relay twice: one
    relay with two wires."""
    canonical = canonical_url(url)
    scheme, _, rest = canonical.partition("://")
    twin = _BRIDGE_SCHEME.get(scheme)
    return None if twin is None else canonical_url(f"{twin}://{rest}")


def dedupe(urls: Iterable[str]) -> list[str]:
    """``urls`` without repeats under :func:`canonical_url`, keeping the first written form.

    Raises :class:`InvalidRelayUrl` for the first URL that cannot be canonicalized:
    silently dropping a configured relay would hide a typo.
    """
    seen: set[str] = set()
    kept: list[str] = []
    for url in urls:
        canonical = canonical_url(url)
        if canonical not in seen:
            seen.add(canonical)
            kept.append(url.strip())
    return kept


def _split_authority(authority: str, text: str) -> tuple[str, int | None]:
    if not authority:
        raise InvalidRelayUrl(f"relay URL {text!r} has no host")
    if "@" in authority:
        raise InvalidRelayUrl(
            f"relay URL {text!r} carries user information (user@host); relays do not use it"
        )
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise InvalidRelayUrl(f"relay URL {text!r} has an unclosed IPv6 bracket")
        literal, after = authority[1:end], authority[end + 1 :]
        try:
            ipaddress.IPv6Address(literal.split("%", 1)[0])
        except ValueError:
            raise InvalidRelayUrl(f"relay URL {text!r} has an invalid IPv6 address") from None
        host = f"[{literal.lower()}]"
        if after and not after.startswith(":"):
            raise InvalidRelayUrl(f"relay URL {text!r} has text after its IPv6 address")
        port_text = after[1:] if after else None
    else:
        host_text, colon, port_part = authority.partition(":")
        if not host_text:
            raise InvalidRelayUrl(f"relay URL {text!r} has no host")
        if not all(ch.isalnum() or ch in _HOST_PUNCTUATION for ch in host_text):
            raise InvalidRelayUrl(f"relay URL {text!r} has a host with invalid characters")
        host = host_text.lower()
        port_text = port_part if colon else None
    return host, _parse_port(port_text, text)


def _parse_port(port_text: str | None, text: str) -> int | None:
    if port_text is None:
        return None
    if not port_text.isascii() or not port_text.isdigit():
        raise InvalidRelayUrl(f"relay URL {text!r} has a port that is not a number")
    port = int(port_text)
    if not 0 < port < 65536:
        raise InvalidRelayUrl(f"relay URL {text!r} has a port outside 1..65535")
    return port

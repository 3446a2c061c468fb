"""NIP-98 HTTP Auth: the kind 27235 event behind an ``Authorization: Nostr ...`` header.

One event per request, signed by the caller: ``u`` is the absolute request
URL, ``method`` the HTTP method, ``payload`` the lowercase hex SHA-256 of the
exact body bytes sent, and a random ``nonce`` so two requests in one second
never share an event id (buzz accepts each auth event once, reference §2.2).
Tags are in the order buzz's desktop writes them (``u``, ``method``,
``payload``, ``nonce``); content is empty. The header value is ``Nostr ``
followed by standard base64 (with padding) of the event's JSON.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import TYPE_CHECKING

from adapters.nostr.event import Event, UnsignedEvent

if TYPE_CHECKING:
    from adapters.ports import Signer

KIND_HTTP_AUTH = 27235


def http_auth_event(
    signer: Signer, url: str, method: str, body: bytes, *, created_at: int
) -> Event:
    """A fresh NIP-98 event authorizing ``method url`` with exactly ``body``."""
    return signer.sign(
        UnsignedEvent(
            created_at=created_at,
            kind=KIND_HTTP_AUTH,
            tags=(
                ("u", url),
                ("method", method.upper()),
                ("payload", hashlib.sha256(body).hexdigest()),
                ("nonce", secrets.token_hex(16)),
            ),
            content="",
        )
    )


def authorization(event: Event) -> str:
    """The ``Authorization`` header value carrying ``event``."""
    return "Nostr " + base64.b64encode(event.to_json().encode("utf-8")).decode("ascii")


def authorization_header(
    signer: Signer, url: str, method: str, body: bytes, *, created_at: int
) -> str:
    """Sign a fresh NIP-98 event for one request and wrap it as a header value."""
    return authorization(http_auth_event(signer, url, method, body, created_at=created_at))

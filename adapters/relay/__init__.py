"""Talking to Nostr relays: the relay seam's vocabulary and its transports.

* :mod:`adapters.relay.answers` - what a relay answers, whatever the wire:
  :class:`Outcome`, :class:`Answer`, :class:`QueryResult`;
* :mod:`adapters.relay.urls` - NIP-AE URL canonicalization and de-duplication;
* :mod:`adapters.relay.errors` - the package's typed failures and the one place
  where aiohttp / asyncio / OS exceptions are translated into them;
* :mod:`adapters.relay.messages` - NIP-01 wire frames parsed into values, and the
  classification of ``OK`` messages;
* :mod:`adapters.relay.publishing` - the pipelined publishing run over one websocket;
* :mod:`adapters.relay.client` - :class:`RelayConnection` (one relay over a
  websocket: the :class:`adapters.ports.Transport` it implements) and
  :class:`RelayPool` (several relays at once, over any transports);
* :mod:`adapters.relay.identities` - :class:`IdentityBoundRelay`, a websocket
  relay that binds one identity per socket (buzz), as one transport;
* :mod:`adapters.relay.bridge` - :class:`BridgeTransport`, a buzz relay's HTTP
  bridge, the second wire.

The reconciler reaches the relays through :class:`adapters.sync.gateway.PoolGateway`
over a :class:`RelayPool`; nothing here decides what to publish.
"""

from __future__ import annotations

from adapters.relay.answers import Answer, QueryResult, SubscriptionResult
from adapters.relay.client import (
    PoolQueryResult,
    PublishResult,
    RelayConnection,
    RelayPool,
)
from adapters.relay.errors import (
    InvalidRelayUrl,
    PermanentRelayError,
    RelayError,
    TemporaryRelayError,
)
from adapters.relay.messages import OkMessage, classify
from adapters.relay.publishing import RetryPolicy
from adapters.relay.urls import canonical_url, dedupe
from domain.verdict import Outcome

__all__ = [
    "Answer",
    "InvalidRelayUrl",
    "OkMessage",
    "Outcome",
    "PermanentRelayError",
    "PoolQueryResult",
    "PublishResult",
    "QueryResult",
    "RelayConnection",
    "RelayError",
    "RelayPool",
    "RetryPolicy",
    "SubscriptionResult",
    "TemporaryRelayError",
    "canonical_url",
    "classify",
    "dedupe",
]

"""Talking to Nostr relays over NIP-01 websockets (aiohttp).

* :mod:`adapters.relay.urls` - NIP-AE URL canonicalization and de-duplication;
* :mod:`adapters.relay.errors` - the package's typed failures and the one place
  where aiohttp / asyncio / OS exceptions are translated into them;
* :mod:`adapters.relay.messages` - wire frames parsed into values, and the
  classification of ``OK`` answers;
* :mod:`adapters.relay.client` - :class:`RelayConnection` (one relay: pipelined
  publishing, queries) and :class:`RelayPool` (several relays at once).

The apply engine uses :class:`RelayPool` (or :class:`RelayConnection`) and reads
:class:`PublishResult` / :class:`QueryResult`; nothing here decides what to publish.
"""

from __future__ import annotations

from adapters.relay.client import (
    PoolQueryResult,
    QueryResult,
    RelayConnection,
    RelayPool,
    RelayPublishReport,
    SubscriptionResult,
)
from adapters.relay.errors import (
    InvalidRelayUrl,
    PermanentRelayError,
    RelayError,
    TemporaryRelayError,
)
from adapters.relay.messages import OkAnswer, Outcome, classify
from adapters.relay.publishing import PublishResult, RetryPolicy, Signer
from adapters.relay.urls import canonical_url, dedupe

__all__ = [
    "InvalidRelayUrl",
    "OkAnswer",
    "Outcome",
    "PermanentRelayError",
    "PoolQueryResult",
    "PublishResult",
    "QueryResult",
    "RelayConnection",
    "RelayError",
    "RelayPool",
    "RelayPublishReport",
    "RetryPolicy",
    "Signer",
    "SubscriptionResult",
    "TemporaryRelayError",
    "canonical_url",
    "classify",
    "dedupe",
]

"""Fixtures giving integration tests real relays on 127.0.0.1.

Each test gets its own fresh relay (function scope): starting one costs a fraction of a
second (a subprocess on a free port) and no test can see another's events.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.buzz_relay import BuzzRelay
from tests.support.relays import RelayProcess, start_nostr_relay, start_rust_relay


@pytest.fixture
def nostr_relay(tmp_path: Path) -> Iterator[RelayProcess]:
    """The Python ``nostr-relay`` package with a private SQLite file."""
    with start_nostr_relay(tmp_path) as relay:
        yield relay


@pytest.fixture
def nostr_relay_url(nostr_relay: RelayProcess) -> str:
    return nostr_relay.url


@pytest.fixture
def rust_relay(tmp_path: Path) -> Iterator[RelayProcess]:
    """rust-nostr's in-memory ``LocalRelay``, rate limit raised to 10,000 EVENTs/min."""
    with start_rust_relay(tmp_path=tmp_path) as relay:
        yield relay


@pytest.fixture
def rust_relay_url(rust_relay: RelayProcess) -> str:
    return rust_relay.url


@pytest.fixture(params=["nostr-relay", "rust-relay"])
def any_relay_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each of the two relays in turn, for behaviour both must share."""
    if request.param == "nostr-relay":
        relay = start_nostr_relay(tmp_path)
    else:
        relay = start_rust_relay(tmp_path=tmp_path)
    with relay:
        yield relay.url


@pytest.fixture
def buzz_double() -> Iterator[BuzzRelay]:
    """The buzz relay double (open relay, default switches) served from its own thread.

    ``buzz_double.url`` is its websocket URL, ``buzz_double.http_url`` its bridge; set
    switches (``members``, ``require_relay_membership``...) and ``faults`` on it directly.
    """
    with BuzzRelay().serving() as relay:
        yield relay

"""A websocket relay that binds one identity per socket (buzz), as one
:class:`adapters.ports.Transport`.

NIP-42 lets a client authenticate several pubkeys on one socket; buzz binds the
first identity that authenticates and accepts an event only from it
(``invalid: event pubkey does not match authenticated identity``; a second
AUTH answers ``auth-required: already authenticated``; reference §1.1, §1.5).
:class:`IdentityBoundRelay` starts as a plain websocket client, one socket for
everything, which costs an open relay nothing more. The first time the relay
answers in a way that says "one identity per socket", it switches for the rest
of the command: every author's events go over a socket of their own (opened,
authenticated as that author on the challenge the relay sends at connect, then
used, then closed), at most ``max_open`` at once, so a 10,000-agent apply never
holds more than that many sockets. No EVENT goes out to be refused for want of
AUTH first; a relay that sends no challenge at connect costs the sockets open
at that moment one wait for it (the relay timeout), and the later ones send
first and authenticate when refused. Reads go over a
socket of the reader's own. The events it refused that way are sent again,
identical, on their author's socket. Until the relay has shown how it binds,
publishes take the shared socket one call at a time, so a call queued behind
the one that finds out goes per author too; a read still under way on the
shared socket at the switch keeps it until its answer is in.

:meth:`IdentityBoundRelay.traffic` counts, over all its sockets, those opened
(each one a websocket handshake, and at most one NIP-42 handshake), the most
open at once, and the NIP-42 handshakes (:mod:`adapters.relay.traffic`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from adapters.nostr.event import Event
from adapters.relay.answers import Answer, QueryResult
from adapters.relay.client import RelayConnection
from adapters.relay.errors import RelayError
from adapters.relay.traffic import WEBSOCKET, Traffic, TrafficMeter
from domain.verdict import Outcome

if TYPE_CHECKING:
    from adapters.ports import Signer, SignerLookup

logger = logging.getLogger(__name__)

DEFAULT_MAX_OPEN: Final = 8
# What buzz answers when a socket already speaks for another identity, or when
# another identity's AUTH failed on it (the socket can authenticate no one else).
_ONE_IDENTITY_SIGNS: Final = (
    "does not match authenticated identity",
    "already authenticated",
    "authentication already failed",
)


def binds_one_identity(answer: Answer) -> bool:
    """Whether a refusal says the socket is bound to another identity."""
    return not answer.stored and any(sign in answer.message for sign in _ONE_IDENTITY_SIGNS)


class IdentityBoundRelay:
    """Implements :class:`adapters.ports.Transport` over :class:`RelayConnection`s."""

    def __init__(
        self,
        url: str,
        open_connection: Callable[[str], RelayConnection],
        *,
        max_open: int = DEFAULT_MAX_OPEN,
    ) -> None:
        self._open_connection = open_connection
        self._url = url.strip()
        self.meter = TrafficMeter(WEBSOCKET)
        self._shared = self._new()
        self.canonical_url = self._shared.canonical_url
        self._max_open = max(1, max_open)
        # One bound for the relay, not per call: an apply publishes several batches at
        # once (adapters.sync.engine IN_FLIGHT), and a gate per call let each of them
        # hold max_open sockets (48 at once in a 1,000-agent apply).
        self._gate = asyncio.Semaphore(self._max_open)
        self._per_identity = False
        # Authors' sockets authenticate before their first EVENT until one shows the
        # relay does not challenge at connect (adapters.relay.publishing).
        self._authenticate_first = True
        self._reader: RelayConnection | None = None
        self._probing = asyncio.Lock()
        self._shared_reads = 0  # reads under way on the shared socket

    def _new(self) -> RelayConnection:
        connection = self._open_connection(self._url)
        connection.meter = self.meter  # one count over every socket of this relay
        return connection

    def traffic(self) -> Traffic:
        return self.meter.reading()

    @property
    def url(self) -> str:
        return self._url

    @property
    def per_identity(self) -> bool:
        """Whether the relay was found to bind one identity per socket."""
        return self._per_identity

    async def publish_many(
        self,
        events: Sequence[Event],
        *,
        window: int,
        timeout: float,
        signers: SignerLookup | None = None,
    ) -> dict[str, Answer]:
        answers: dict[str, Answer] = {}
        pending: Sequence[Event] = events
        if not self._per_identity:
            # One call at a time finds out how the relay binds identities; a call that
            # waited here behind the one that found out goes per author straight away,
            # never to the shared socket the switch leaves.
            async with self._probing:
                if not self._per_identity:
                    answers = await self._shared.publish_many(
                        events, window=window, timeout=timeout, signers=signers
                    )
                    pending = [e for e in events if binds_one_identity(answers[e.id])]
                    if pending:
                        logger.info(
                            "%s binds one identity per socket: each author gets its own "
                            "from now on",
                            self._url,
                        )
                        await self._switch()
        if not pending:
            return answers
        again = await self._per_author(pending, window, timeout, signers)
        return {**answers, **again}

    async def _switch(self) -> None:
        self._per_identity = True
        # The shared socket speaks for whoever authenticated first: reads get their own
        # from now on. One still under way there is not cut off: the last to finish
        # closes the socket.
        if self._shared_reads == 0:
            await self._shared.close()

    async def _per_author(
        self,
        events: Sequence[Event],
        window: int,
        timeout: float,
        signers: SignerLookup | None,
    ) -> dict[str, Answer]:
        by_author: dict[str, list[Event]] = {}
        for event in events:
            by_author.setdefault(event.pubkey, []).append(event)
        failures: list[RelayError] = []

        async def one(mine: list[Event]) -> dict[str, Answer]:
            async with self._gate:
                connection = self._new()
                # Its author's socket: AUTH before the first EVENT, not after a refusal.
                connection.authenticate_first = self._authenticate_first
                try:
                    answers = await connection.publish_many(
                        mine, window=window, timeout=timeout, signers=signers
                    )
                    if not connection.authenticate_first:
                        self._authenticate_first = False
                    return answers
                except RelayError as exc:
                    failures.append(exc)
                    return {
                        e.id: Answer(self.canonical_url, e.id, Outcome.TEMPORARY, "", str(exc), 0)
                        for e in mine
                    }
                finally:
                    await connection.close()

        results = await asyncio.gather(*(one(mine) for mine in by_author.values()))
        if failures and len(failures) == len(by_author):
            raise failures[0]
        merged: dict[str, Answer] = {}
        for result in results:
            merged.update(result)
        return merged

    async def query(
        self,
        filters: Sequence[Mapping[str, Any]],
        *,
        timeout: float,
        reader: Signer | None = None,
    ) -> QueryResult:
        if not self._per_identity:
            self._shared_reads += 1
            try:
                return await self._shared.query(filters, timeout=timeout, reader=reader)
            finally:
                self._shared_reads -= 1
                if self._per_identity and self._shared_reads == 0:
                    await self._shared.close()
        if self._reader is None:
            self._reader = self._new()
        return await self._reader.query(filters, timeout=timeout, reader=reader)

    async def close(self) -> None:
        await self._shared.close()
        if self._reader is not None:
            await self._reader.close()

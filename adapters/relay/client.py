"""A NIP-01 client for one relay (:class:`RelayConnection`) and for several (:class:`RelayPool`).

:class:`RelayConnection` is the websocket :class:`adapters.ports.Transport`: the
reconciler (through :mod:`adapters.sync.gateway` and a pool) publishes
pre-signed events with ``publish_many`` (pipelined, see
:mod:`adapters.relay.publishing`) and reads heads back with ``query``. One
:class:`RelayConnection` owns one ``aiohttp.ClientSession`` and at most one
websocket at a time, reopened when it drops. Frames are JSON text (relays expect
text frames). aiohttp's ``heartbeat`` pings the relay and the client answers the
relay's pings; the bounded window keeps the backlog that would make nostr-relay
miss a ping (and drop us) from building up.

A single reader task per socket parses every frame (garbage is skipped, see
:mod:`adapters.relay.messages`) and routes it: ``OK`` to the publishing run,
``EVENT``/``EOSE``/``CLOSED`` to the subscription they name, ``AUTH`` challenges
to the connection, ``NOTICE`` to the log.

Close every connection or pool (``async with`` or ``close()``): sessions left open
are reported by aiohttp as unclosed.

**Silence.** One number, ``timeout`` (``FLEETSYNC_RELAY_TIMEOUT`` in the CLI), bounds
every wait on a relay: opening the websocket (TCP, TLS, handshake, and the retries
after a refusal, all together), each EVENT's ``OK`` and each request's ``EOSE``
count from the last frame the relay sent. A relay that leaves us waiting that
long, or that cannot be connected to at all, is *given up* by its
:class:`RelayConnection`: every later call raises the same error at once, without
touching the network. One that leaves EVENTs unanswered but still answers
requests gets no more EVENTs, and is still asked for heads (what it stored
without saying ``OK`` is found by the read-back). A connection lives for one
command, so a relay that does not answer costs a command that timeout once, not
once per step or per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from adapters.nostr.event import Event
from adapters.nostr.nip42 import auth_event
from adapters.relay.answers import Answer, QueryResult, SubscriptionResult
from adapters.relay.errors import (
    CannotConnect,
    ConnectionLost,
    PermanentRelayError,
    RelayError,
    RelayTimeout,
    translated,
)
from adapters.relay.messages import (
    AuthChallenge,
    Closed,
    EndOfStoredEvents,
    EventMessage,
    MalformedEvent,
    Notice,
    OkMessage,
    RelayMessage,
    auth_frame,
    close_frame,
    parse_frame,
    prefix_of,
    req_frame,
)
from adapters.relay.publishing import (
    DEFAULT_TIMEOUT,
    DEFAULT_WINDOW,
    MAX_RECHALLENGES,
    STALE_CHALLENGE,
    Heard,
    Lost,
    Pace,
    PublishRun,
    RetryPolicy,
    with_clock_hint,
)
from adapters.relay.traffic import WEBSOCKET, Traffic, TrafficMeter
from adapters.relay.urls import bridge_twin, canonical_url, dedupe
from domain.verdict import Outcome

if TYPE_CHECKING:
    from adapters.ports import AttestationLookup, Signer, SignerLookup, Transport

logger = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_HEARTBEAT: Final = 15.0
DEFAULT_QUERY_TIMEOUT: Final = 15.0
# Subscriptions open at once per connection; rust-nostr allows 500 by default,
# and each one is closed as soon as it reaches EOSE.
DEFAULT_MAX_SUBSCRIPTIONS: Final = 16
MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024
_CLOSE_TIMEOUT: Final = 2.0
_ABANDON_TIMEOUT: Final = 0.1


@dataclass(slots=True)
class _Subscription:
    filter: Mapping[str, Any]
    events: list[Event] = field(default_factory=list)
    skipped: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    ended: EndOfStoredEvents | Closed | Lost | None = None

    def end(self, why: EndOfStoredEvents | Closed | Lost) -> None:
        if self.ended is None:
            self.ended = why
            self.done.set()


class RelayConnection:
    """One relay, one websocket at a time. Not thread-safe; one event loop.

    ``url`` is used as written (NIP-AE: connect to the advertised form);
    ``canonical_url`` is its NIP-AE canonical form. Connecting is lazy:
    the first ``publish_many`` or ``query`` opens the socket.

    ``connect_timeout`` bounds a whole :meth:`connect` (every attempt and the
    pauses between them). ``attestations`` gives an agent's NIP-OA tag for the
    AUTH events it signs (see :mod:`adapters.relay.publishing`). Once the relay
    is given up (see the module docstring, :attr:`given_up`), the connection stays
    given up until it is closed.
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        heartbeat: float | None = DEFAULT_HEARTBEAT,
        retry: RetryPolicy | None = None,
        max_subscriptions: int = DEFAULT_MAX_SUBSCRIPTIONS,
        attestations: AttestationLookup | None = None,
        meter: TrafficMeter | None = None,
        authenticate_first: bool = False,
    ) -> None:
        self.canonical_url = canonical_url(url)
        self._attestations = attestations
        # Set on a socket meant for one author's events on a relay that binds one
        # identity per socket: each publishing run authenticates as the author on the
        # challenge sent at connect before its first EVENT (adapters.relay.publishing).
        self.authenticate_first = authenticate_first
        # Counts sockets and AUTHs; the sockets of one relay may share one.
        self.meter = meter if meter is not None else TrafficMeter(WEBSOCKET)
        self._url = url.strip()
        self._connect_timeout = connect_timeout
        self._heartbeat = heartbeat
        self._retry = retry or RetryPolicy()
        self._max_subscriptions = max_subscriptions
        self._session: aiohttp.ClientSession | None = None
        # (socket generation, challenge, pubkey) a read was authenticated as (NIP-42)
        self._read_auth: tuple[int, str, str] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ack_now: Callable[[], None] = _nothing
        self._ack_due = False
        self._reader: asyncio.Task[None] | None = None
        self._broken = False  # the reader saw the socket end; it may not be closed yet
        self._generation = 0
        self._challenge: str | None = None
        self._challenge_heard = asyncio.Event()  # a challenge, or the socket's end
        self._answers: asyncio.Queue[Heard | Lost] = asyncio.Queue()
        self._subscriptions: dict[str, _Subscription] = {}
        self._sub_ids = itertools.count(1)
        self._connect_lock = asyncio.Lock()
        self._publish_lock = asyncio.Lock()
        self._pace = Pace()
        self._closed = False
        self._given_up: RelayError | None = None
        self._publishing_given_up: RelayError | None = None
        self._last_heard = 0.0  # loop time of the latest burst of frames from the relay

    # -- the Channel a PublishRun drives -------------------------------------------

    @property
    def url(self) -> str:
        return self._url

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def challenge(self) -> str | None:
        return self._challenge

    async def challenged(self, timeout: float) -> str | None:
        """The current socket's challenge, waiting up to ``timeout`` for the relay to
        send it; None if it sends none by then or the socket ends first."""
        if self._challenge is None and self.connected:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._challenge_heard.wait()
        return self._challenge

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed and not self._broken

    @property
    def given_up(self) -> RelayError | None:
        """Why this relay was given up for the rest of the connection's life, if it was."""
        return self._given_up

    @property
    def last_heard(self) -> float:
        """Event-loop time of the latest frame the relay sent on any socket (0: none yet)."""
        return self._last_heard

    def give_up(self, error: RelayError) -> None:
        """Stop waiting for this relay: every later call raises ``error`` at once.

        Subscriptions and a publishing run still waiting learn it now (as a lost
        socket), rather than after their own timeouts.
        """
        if self._given_up is not None:
            return
        self._given_up = error
        logger.info("giving up on %s: %s", self._url, error)
        lost = Lost(self._generation, f"given up: {error}")
        self._answers.put_nowait(lost)
        for sub in self._subscriptions.values():
            sub.end(lost)

    async def send_text(self, text: str) -> None:
        ws = self._ws
        if ws is None or ws.closed or self._broken:
            raise ConnectionLost("the websocket is closed", url=self._url)
        with translated(self._url):
            await ws.send_str(text)

    async def next_answer(self, timeout: float) -> Heard | Lost | None:
        try:
            async with asyncio.timeout(timeout):
                return await self._answers.get()
        except TimeoutError:
            return None

    def next_answer_nowait(self) -> Heard | Lost | None:
        try:
            return self._answers.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def discard_answers(self) -> None:
        while not self._answers.empty():
            self._answers.get_nowait()

    async def reconnect(self, timeout: float | None = None) -> None:
        """One attempt at a fresh socket, within ``timeout`` (default: the connect timeout)."""
        async with self._connect_lock:
            # Leaving a socket we gave up on: no need to wait for a polite close.
            await self._drop_socket(grace=_ABANDON_TIMEOUT)
            await self._open(self._connect_timeout if timeout is None else timeout)

    def traffic(self) -> Traffic:
        """Sockets opened and NIP-42 handshakes so far (see :mod:`adapters.relay.traffic`)."""
        return self.meter.reading()

    # -- lifecycle ----------------------------------------------------------------

    async def connect(self) -> None:
        """Open the websocket unless it is open; retries temporary failures with backoff
        (see :meth:`RetryPolicy.pause_after`).

        Every attempt and every pause fit in ``connect_timeout`` together. Raises
        :class:`PermanentRelayError` or :class:`TemporaryRelayError`; either way
        the relay is given up (later calls raise the same error at once).
        """
        async with self._connect_lock:
            if self._given_up is not None:
                raise self._given_up
            if self.connected:
                return
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._connect_timeout
            attempts = max(1, self._retry.connect_attempts)
            for attempt in range(1, attempts + 1):
                try:
                    await self._drop_socket()
                    await self._open(max(0.0, deadline - loop.time()))
                    return
                except RelayError as exc:
                    # Permanent: never retried. Temporary: after the relay's own delay
                    # if it gave one, and not at all if that is past the deadline.
                    pause = self._retry.pause_after(exc, attempt)
                    if pause is None or attempt == attempts or loop.time() + pause >= deadline:
                        self.give_up(exc)
                        raise
                    logger.info("cannot connect to %s (%s); retrying", self._url, exc)
                    await asyncio.sleep(pause)

    async def close(self) -> None:
        """Close the websocket and the session. Idempotent.

        A relay given up gets no time for a polite close: it was not answering.
        """
        self._closed = True
        async with self._connect_lock:
            await self._drop_socket(_ABANDON_TIMEOUT if self._given_up else _CLOSE_TIMEOUT)
            if self._session is not None:
                await self._session.close()
                self._session = None

    async def __aenter__(self) -> RelayConnection:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _open(self, timeout: float) -> None:
        """One attempt at a socket, bounded by ``timeout`` from TCP connect to handshake."""
        if self._closed:
            raise PermanentRelayError("the connection was closed", url=self._url)
        if self._given_up is not None:
            raise self._given_up
        if self._session is None:
            # No aiohttp timeouts: the one bound below covers connect and handshake.
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        try:
            with translated(self._url):
                async with asyncio.timeout(timeout):
                    ws = await self._session.ws_connect(
                        self._url,
                        autoping=True,
                        heartbeat=self._heartbeat,
                        max_msg_size=MAX_MESSAGE_SIZE,
                        timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=_CLOSE_TIMEOUT),
                    )
        except RelayTimeout as exc:
            raise CannotConnect(
                f"no answer within {self._connect_timeout:g} s "
                "(TCP connection and websocket handshake)",
                url=self._url,
            ) from exc.__cause__
        self._generation += 1
        self._ws = ws
        self.meter.opened()
        self._ack_now = _quick_acker(ws.get_extra_info("socket"))
        self._broken = False
        self._challenge = None
        self._challenge_heard.clear()
        self._reader = asyncio.create_task(
            self._read(ws, self._generation), name=f"relay reader {self._url}"
        )
        logger.debug("connected to %s (connection %d)", self._url, self._generation)

    async def _drop_socket(self, grace: float = _CLOSE_TIMEOUT) -> None:
        """Close the socket, waiting at most ``grace`` seconds for the relay's close frame.

        A relay working through a backlog keeps sending answers before it reads our
        close frame (aiohttp waits for it frame by frame), so the wait is bounded as
        a whole; past it aiohttp drops the connection.
        """
        ws, reader = self._ws, self._reader
        self._ws = self._reader = None
        if ws is not None:
            self.meter.closed()
            try:
                with translated(self._url):
                    async with asyncio.timeout(grace):
                        await ws.close()
            except RelayError as exc:  # closing a broken socket may fail; it is gone anyway
                logger.debug("closing %s: %s", self._url, exc)
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    # -- reading ------------------------------------------------------------------

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, generation: int) -> None:
        reason = "the relay closed the connection"
        try:
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._ack_soon()
                    message = parse_frame(msg.data)
                    if message is not None:
                        self._dispatch(message, generation)
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    reason = f"websocket error: {ws.exception()}"
                    break
                else:
                    logger.debug("skipping a %s frame from %s", msg.type.name, self._url)
        finally:
            self._lost(generation, reason)

    def _ack_soon(self) -> None:
        # Once the frames already received are handled (they are read in one go):
        # one system call per burst rather than per frame.
        if not self._ack_due:
            self._ack_due = True
            asyncio.get_running_loop().call_soon(self._ack)

    def _ack(self) -> None:
        self._ack_due = False
        self._last_heard = asyncio.get_running_loop().time()
        self._ack_now()

    def _lost(self, generation: int, reason: str) -> None:
        if generation != self._generation:
            return
        self._broken = True
        self._challenge_heard.set()  # nobody waits for a challenge on a socket gone
        logger.info("%s: %s", self._url, reason)
        self._answers.put_nowait(Lost(generation, reason))
        lost = Lost(generation, reason)
        for sub in self._subscriptions.values():
            sub.end(lost)

    def _dispatch(self, message: RelayMessage, generation: int) -> None:
        if isinstance(message, OkMessage):
            self._answers.put_nowait(Heard(generation, message))
        elif isinstance(message, EventMessage | MalformedEvent):
            sub = self._subscriptions.get(message.subscription_id)
            if sub is None:
                logger.debug("%s: EVENT for a subscription we do not have", self._url)
            elif isinstance(message, EventMessage):
                sub.events.append(message.event)
            else:
                sub.skipped += 1
                logger.debug("%s: skipping a malformed event (%s)", self._url, message.reason)
        elif isinstance(message, EndOfStoredEvents | Closed):
            sub = self._subscriptions.get(message.subscription_id)
            if sub is not None:
                sub.end(message)
        elif isinstance(message, AuthChallenge):
            if generation == self._generation:
                self._challenge = message.challenge
                self._challenge_heard.set()
            logger.debug("%s sent an AUTH challenge", self._url)
        elif isinstance(message, Notice):
            logger.info("NOTICE from %s: %s", self._url, message.message)

    # -- publishing ----------------------------------------------------------------

    async def publish_many(
        self,
        events: Sequence[Event],
        *,
        window: int = DEFAULT_WINDOW,
        timeout: float = DEFAULT_TIMEOUT,
        signers: SignerLookup | None = None,
    ) -> dict[str, Answer]:
        """Send ``events`` (exactly as given) pipelined; every event's answer by id.

        At most ``window`` EVENTs await an ``OK`` at a time; ``timeout`` is how long
        one may wait for its answer (see :mod:`adapters.relay.publishing`);
        ``signers`` gives an author's signer for NIP-42 AUTH. Raises
        :class:`RelayError` only when no connection could be opened at all;
        failures after that are reported per event (``unknown`` if it was sent,
        ``temporary`` if it never was).
        """
        async with self._publish_lock:
            if self._publishing_given_up is not None:
                raise self._publishing_given_up
            await self.connect()
            run = PublishRun(
                self,
                events,
                window=window,
                timeout=timeout,
                signers=signers,
                retry=self._retry,
                pace=self._pace,
                attestations=self._attestations,
                meter=self.meter,
                authenticate_first=self.authenticate_first,
            )
            results = await run.run()
            # A relay that sent no challenge at connect, or crossed the first AUTH
            # with a new one, is not waited for again on this connection.
            self.authenticate_first = run.authenticates_first
            if run.gave_up is not None:
                self.give_up(run.gave_up)
            elif run.silenced is not None:
                # It may still answer requests (a relay that stores without saying OK):
                # only publishing stops, so read-backs can still find what it stored.
                self._publishing_given_up = run.silenced
            return results

    async def publish(
        self,
        event: Event,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        signers: SignerLookup | None = None,
    ) -> Answer:
        """One event; see :meth:`publish_many`."""
        results = await self.publish_many([event], window=1, timeout=timeout, signers=signers)
        return results[event.id]

    # -- querying -----------------------------------------------------------------

    async def query(
        self,
        filters: Sequence[Mapping[str, Any]],
        *,
        timeout: float = DEFAULT_QUERY_TIMEOUT,
        reader: Signer | None = None,
    ) -> QueryResult:
        """Stored events matching any filter: one subscription per filter, until ``EOSE``.

        Filters are sent as given (any size: hundreds of authors are fine). Up to
        ``max_subscriptions`` run at once; each is closed at its ``EOSE``. A
        subscription cut short (``CLOSED``, the overall ``timeout``, a connection
        that could not be restored) keeps what it received and is flagged in
        :attr:`QueryResult.subscriptions`. ``timeout`` is the longest the relay may
        stay silent (it counts from the request or the relay's latest frame,
        whichever is later); past it the relay is given up. Raises
        :class:`RelayError` only when no connection could be opened at all.

        ``reader`` is the identity to read as (:class:`adapters.ports.Transport`):
        a subscription the relay closes with ``auth-required:`` is answered with a
        NIP-42 AUTH as ``reader`` on this socket (once per socket and challenge: a
        fresh challenge forgets the identity), then asked again; if the AUTH is
        refused, the subscription is reported cut short with the relay's reason.
        """
        await self.connect()
        gate = asyncio.Semaphore(self._max_subscriptions)

        async def one(filter_: Mapping[str, Any]) -> tuple[SubscriptionResult, list[Event]]:
            async with gate:
                return await self._subscribe(filter_, timeout)

        def refused_for_auth(indexes: Iterable[int]) -> list[int]:
            return [
                i
                for i in indexes
                if (closed := answers[i][0].closed) is not None
                and prefix_of(closed) == "auth-required"
            ]

        answers = list(await asyncio.gather(*(one(f) for f in filters)))
        refused = refused_for_auth(range(len(answers)))
        rounds = 0
        while refused and reader is not None:
            why = await self._authenticate_reader(reader, timeout)
            stale = why == STALE_CHALLENGE and rounds < MAX_RECHALLENGES
            if why is not None and not stale:
                for i in refused:
                    result, received = answers[i]
                    closed = (
                        f"{result.closed} (AUTH as {reader.public_key.hex}: {with_clock_hint(why)})"
                    )
                    answers[i] = (
                        SubscriptionResult(
                            result.filter, result.count, False, closed, result.skipped
                        ),
                        received,
                    )
                break
            authed = self._read_auth
            again = await asyncio.gather(*(one(answers[i][0].filter) for i in refused))
            for i, answer in zip(refused, again, strict=True):
                answers[i] = answer
            refused = refused_for_auth(refused)
            rounds += 1
            # Asked again only when the relay sent a fresh challenge meanwhile (it
            # forgot who we are, NIP-42) or refused an AUTH to the challenge it
            # replaced (on a fresh socket by now), a bounded number of times.
            if not stale and authed == (self._generation, self._challenge, reader.public_key.hex):
                break
            if rounds > MAX_RECHALLENGES:
                break
        seen: set[str] = set()
        events: list[Event] = []
        for _, received in answers:
            for event in received:
                if event.id not in seen:
                    seen.add(event.id)
                    events.append(event)
        return QueryResult(self._url, tuple(events), tuple(result for result, _ in answers))

    async def _authenticate_reader(self, reader: Signer, timeout: float) -> str | None:
        """NIP-42 AUTH as ``reader`` on the current socket; None once the relay said
        OK (now, or earlier on this socket and challenge), else why not
        (:data:`STALE_CHALLENGE`: the relay refused an AUTH to a challenge it had
        replaced, and the socket is a fresh one now)."""
        async with self._publish_lock:
            generation, challenge = self._generation, self._challenge
            if challenge is None:
                return "the relay sent no AUTH challenge"
            # A fresh challenge on the same socket forgets the identity (NIP-42).
            if self._read_auth == (generation, challenge, reader.public_key.hex):
                return None
            auth = auth_event(reader, self._url, challenge, int(time.time()))
            self.meter.handshake()
            self.discard_answers()  # late OKs of earlier calls: nobody waits for them
            logger.info("authenticating to %s as %s to read (NIP-42)", self._url, auth.pubkey)
            try:
                await self.send_text(auth_frame(auth))
            except RelayError as exc:
                return str(exc)
            while True:
                heard = await self.next_answer(timeout)
                if heard is None:
                    return f"no answer to AUTH within {timeout:g} s"
                if isinstance(heard, Lost):
                    return heard.reason
                if heard.ok.event_id != auth.id:
                    continue
                if heard.ok.accepted:
                    self._read_auth = (generation, challenge, reader.public_key.hex)
                    return None
                if self._generation == generation and self._challenge != challenge:
                    # The relay replaced the challenge while our AUTH was on its way: it
                    # refused an answer to an old challenge, not the reader. buzz takes
                    # one AUTH per socket, refused or not: a fresh socket, a fresh session.
                    logger.info("%s: %s", self._url, STALE_CHALLENGE)
                    with contextlib.suppress(RelayError):
                        await self.reconnect()
                    return STALE_CHALLENGE
                return heard.ok.message or "AUTH refused"

    async def _subscribe(
        self, filter_: Mapping[str, Any], timeout: float
    ) -> tuple[SubscriptionResult, list[Event]]:
        events: dict[str, Event] = {}
        skipped = 0
        losses = 0
        while True:
            sub = _Subscription(filter_)
            sub_id = f"fs{next(self._sub_ids)}"
            self._subscriptions[sub_id] = sub
            try:
                await self.send_text(req_frame(sub_id, [filter_]))
                if not await self._await_end(sub, timeout):
                    self.give_up(
                        RelayTimeout(f"no answer to a request for {timeout:g} s", url=self._url)
                    )
            except RelayError as exc:
                sub.end(Lost(self._generation, str(exc)))
            finally:
                del self._subscriptions[sub_id]
            for event in sub.events:
                events.setdefault(event.id, event)
            skipped += sub.skipped
            ended = sub.ended
            if isinstance(ended, Lost):
                # A query is safe to repeat: ask again on a fresh socket, a few times.
                losses += 1
                retry = losses <= self._retry.reconnects and self._given_up is None
                if retry and await self._restore(losses):
                    continue
            elif ended is None or isinstance(ended, EndOfStoredEvents):
                await self._close_subscription(sub_id)
            closed = ended.message if isinstance(ended, Closed) else None
            complete = isinstance(ended, EndOfStoredEvents)
            if not complete:
                why = "timed out" if ended is None else type(ended).__name__
                logger.info("%s: subscription cut short (%s)", self._url, why)
            result = SubscriptionResult(filter_, len(events), complete, closed, skipped)
            return result, list(events.values())

    async def _await_end(self, sub: _Subscription, timeout: float) -> bool:
        """Wait until ``sub`` ends; False if the relay stayed silent ``timeout`` seconds.

        Silence counts from the request or the latest frame on the socket, whichever
        is later: a relay works through a socket's messages in order, so a request
        queued behind others is not late while frames keep coming.
        """
        loop = asyncio.get_running_loop()
        asked = loop.time()
        while not sub.done.is_set():
            remaining = max(asked, self._last_heard) + timeout - loop.time()
            if remaining <= 0:
                return False
            try:
                async with asyncio.timeout(remaining):
                    await sub.done.wait()
            except TimeoutError:
                continue
        return True

    async def _restore(self, attempt: int) -> bool:
        await asyncio.sleep(min(self._retry.delay(attempt), self._connect_timeout))
        try:
            await self.connect()
        except RelayError as exc:
            logger.info("%s: cannot reconnect for a query: %s", self._url, exc)
            return False
        return True

    async def _close_subscription(self, sub_id: str) -> None:
        try:
            await self.send_text(close_frame(sub_id))
        except RelayError as exc:  # the socket is gone: so is the subscription
            logger.debug("%s: CLOSE not sent: %s", self._url, exc)


@dataclass(frozen=True, slots=True)
class PublishResult:
    """One relay's answers to a pool publish, keyed by event id.

    ``answers`` holds every event meant for it. ``error`` is set when no connection
    could be opened at all; every event is then ``temporary`` with zero attempts.
    """

    url: str
    answers: Mapping[str, Answer]
    error: RelayError | None = None


@dataclass(frozen=True, slots=True)
class PoolQueryResult:
    """The union of what the relays returned, and how each relay fared.

    ``answered`` lists relays whose every subscription reached ``EOSE``;
    ``partial`` those that answered only in part; ``failed`` those that could not
    be reached (with the error). URLs are canonical.
    """

    events: tuple[Event, ...]
    answered: tuple[str, ...]
    partial: tuple[str, ...]
    failed: Mapping[str, RelayError]
    per_relay: Mapping[str, QueryResult]


class RelayPool:
    """Several relays, canonicalized and de-duplicated per NIP-AE, used concurrently.

    Each relay is reached through a :class:`adapters.ports.Transport`:
    ``transport_for`` opens one per URL (as first written), a websocket
    :class:`RelayConnection` unless told otherwise, so one pool may mix wires.
    Results are keyed by canonical URL.

    **One relay, two wires.** A buzz relay serves its websocket and its HTTP
    bridge on one origin (:func:`adapters.relay.urls.bridge_twin`); a list
    naming both names one relay twice. Writes then go over the bridge only,
    once: each event carries its own NIP-98 header there, where over the
    websocket every agent would need a socket (and a NIP-42 handshake) of its
    own. The websocket URL's answer to each event is the bridge's, reported
    under the websocket URL (the same relay said it). Only when the bridge
    cannot be reached at all do the websocket URL's events go over the
    websocket. Reads go over both wires, each read as itself.
    """

    def __init__(
        self,
        urls: Iterable[str],
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        heartbeat: float | None = DEFAULT_HEARTBEAT,
        retry: RetryPolicy | None = None,
        transport_for: Callable[[str], Transport] | None = None,
    ) -> None:
        def websocket(url: str) -> Transport:
            return RelayConnection(
                url, connect_timeout=connect_timeout, heartbeat=heartbeat, retry=retry
            )

        open_transport = transport_for or websocket
        self._transports: dict[str, Transport] = {}
        for url in dedupe(urls):
            transport = open_transport(url)
            self._transports[transport.canonical_url] = transport
        # A websocket URL -> its relay's bridge URL, when the list names both.
        self._bridged: dict[str, str] = {
            url: twin
            for url in self._transports
            if (twin := bridge_twin(url)) is not None and twin in self._transports
        }

    @property
    def bridged(self) -> Mapping[str, str]:
        """Each websocket URL whose writes go over its relay's bridge, and that bridge."""
        return self._bridged

    @property
    def urls(self) -> list[str]:
        """Canonical URLs, in the order first written."""
        return list(self._transports)

    def transport(self, url: str) -> Transport:
        return self._transports[canonical_url(url)]

    async def publish_many(
        self,
        events: Sequence[Event],
        *,
        window: int = DEFAULT_WINDOW,
        timeout: float = DEFAULT_TIMEOUT,
        signers: SignerLookup | None = None,
        only: Mapping[str, Iterable[str]] | None = None,
    ) -> dict[str, PublishResult]:
        """The same events to every relay at once; a result per relay (canonical URL).

        ``only`` maps an event id to the relays (canonical URLs) that one goes to;
        events it does not name go everywhere. A result holds the events sent there.
        """
        targets = {event_id: frozenset(urls) for event_id, urls in (only or {}).items()}
        # What each bridge carries for the websocket URL of its relay, too.
        riders: dict[str, frozenset[str]] = {}
        for ws_url, bridge_url in self._bridged.items():
            riders[bridge_url] = riders.get(bridge_url, frozenset()) | {ws_url}

        async def one(url: str, transport: Transport) -> PublishResult:
            mine = events
            if targets:
                served = riders.get(url, frozenset()) | {url}
                mine = [e for e in events if e.id not in targets or served & targets[e.id]]
                if not mine:
                    return PublishResult(url, {})
            try:
                answers = await transport.publish_many(
                    mine, window=window, timeout=timeout, signers=signers
                )
            except RelayError as exc:
                logger.warning("cannot publish to %s: %s", url, exc)
                # Never sent, so certainly not stored: temporary per event, whatever
                # the connection failure was (``error`` says whether it is permanent).
                unsent = {
                    event.id: Answer(url, event.id, Outcome.TEMPORARY, "", str(exc), 0)
                    for event in mine
                }
                return PublishResult(url, unsent, exc)
            return PublishResult(url, answers)

        results = await asyncio.gather(
            *(one(u, t) for u, t in self._transports.items() if u not in self._bridged)
        )
        by_url = {result.url: result for result in results}
        for ws_url, bridge_url in self._bridged.items():
            bridge = by_url[bridge_url]
            if bridge.error is None:
                mine = [
                    e
                    for e in events
                    if not targets or e.id not in targets or ws_url in targets[e.id]
                ]
                by_url[ws_url] = PublishResult(
                    ws_url,
                    {
                        e.id: replace(answer, relay=ws_url)
                        for e in mine
                        if (answer := bridge.answers.get(e.id)) is not None
                    },
                )
            else:
                logger.info("%s: its bridge cannot be reached; writing over the websocket", ws_url)
                by_url[ws_url] = await one(ws_url, self._transports[ws_url])
        return {url: by_url[url] for url in self._transports}

    async def query(
        self,
        filters: Sequence[Mapping[str, Any]],
        *,
        timeout: float = DEFAULT_QUERY_TIMEOUT,
        reader: Signer | None = None,
    ) -> PoolQueryResult:
        """Every relay at once, read as ``reader``; the union of events (by id) and
        which relays answered."""

        async def one(transport: Transport) -> QueryResult | RelayError:
            try:
                return await transport.query(filters, timeout=timeout, reader=reader)
            except RelayError as exc:
                logger.warning("cannot query %s: %s", transport.url, exc)
                return exc

        answers = await asyncio.gather(*(one(t) for t in self._transports.values()))
        per_relay: dict[str, QueryResult] = {}
        failed: dict[str, RelayError] = {}
        seen: set[str] = set()
        events: list[Event] = []
        for url, answer in zip(self._transports, answers, strict=True):
            if isinstance(answer, RelayError):
                failed[url] = answer
                continue
            per_relay[url] = answer
            for event in answer.events:
                if event.id not in seen:
                    seen.add(event.id)
                    events.append(event)
        return PoolQueryResult(
            events=tuple(events),
            answered=tuple(url for url, result in per_relay.items() if result.complete),
            partial=tuple(url for url, result in per_relay.items() if not result.complete),
            failed=failed,
            per_relay=per_relay,
        )

    def traffic(self) -> dict[str, Traffic]:
        """What each relay's wire has cost so far, by canonical URL."""
        traffic = {url: transport.traffic() for url, transport in self._transports.items()}
        for ws_url, bridge_url in self._bridged.items():
            traffic[ws_url] = replace(traffic[ws_url], writes_via=bridge_url)
        return traffic

    async def close(self) -> None:
        await asyncio.gather(*(t.close() for t in self._transports.values()))

    async def __aenter__(self) -> RelayPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _nothing() -> None:
    pass


def _quick_acker(sock: socket.socket | None) -> Callable[[], None]:
    """Acknowledge what the relay sent right away, not when Linux's delayed ACK fires.

    A relay that leaves Nagle's algorithm on (rust-nostr's local relay does) holds
    back each small frame until its previous one is acknowledged, and Linux
    delays the acknowledgement of a socket that mostly sends, hoping to carry it
    on the next message out. A read-back whose answer spans two frames (the
    event, then EOSE) then waited for the delayed-ACK timer (TCP_DELACK_MIN, 40 ms)
    whenever we had nothing else to send:
    the end of every apply, and every small one. ``TCP_QUICKACK`` sends the
    pending acknowledgement at once; Linux keeps it only for a while, so it is
    set again after every burst of frames read. Elsewhere, nothing.
    """
    option = getattr(socket, "TCP_QUICKACK", None)
    if sock is None or option is None:
        return _nothing

    def ack_now() -> None:
        # A socket already closing raises; the reader finds out on its own.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, option, 1)

    return ack_now

"""A fake Nostr relay for fault injection: real NIP-01 text frames on a real loopback socket.

An aiohttp websocket server on ``127.0.0.1`` (a free port) whose answer to every
``EVENT``, ``REQ`` and ``AUTH`` is decided by a :class:`Behaviour`. The default
behaviour is a well-mannered relay (store, answer ``OK``, serve ``REQ`` from what it
stored, then ``EOSE``); subclasses in this module misbehave in one way each, and a
test can define its own inline (aiohttp's functional-test style).

Everything received is recorded verbatim (:attr:`FakeRelay.received`), so tests
can assert what was sent, on which connection, and that a resend is byte-for-byte
the frame sent the first time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from adapters.nostr.event import Event, InvalidEvent, why_invalid
from adapters.relay.urls import canonical_url

LOOPBACK = "127.0.0.1"
Filters = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Received:
    """One frame the relay got: which connection (1-based), when, its verb and exact text."""

    connection: int
    at: float
    verb: str
    text: str
    data: list[Any]

    @property
    def event_id(self) -> str:
        """The id of an EVENT or AUTH frame's event."""
        event = self.data[1] if len(self.data) > 1 and isinstance(self.data[1], dict) else {}
        return str(event.get("id", ""))


class FakeConnection:
    """One client socket as a behaviour sees it."""

    def __init__(
        self, relay: FakeRelay, ws: web.WebSocketResponse, request: web.Request, number: int
    ) -> None:
        self.relay = relay
        self.ws = ws
        self.request = request
        self.number = number
        self.challenge: str | None = None
        self.authenticated: set[str] = set()
        self.events_received = 0

    async def send(self, frame: list[Any]) -> None:
        await self.ws.send_str(orjson.dumps(frame).decode())

    async def send_raw(self, text: str) -> None:
        await self.ws.send_str(text)

    async def ok(self, event_id: str, accepted: bool, message: str = "") -> None:
        await self.send(["OK", event_id, accepted, message])

    async def store_and_ok(self, event: dict[str, Any], *, duplicate_accepted: bool = True) -> None:
        """Store the event and answer like a relay: true, or duplicate (true or false)."""
        event_id = str(event.get("id", ""))
        if event_id in self.relay.stored:
            await self.ok(event_id, duplicate_accepted, "duplicate: already have this event")
            return
        self.relay.stored[event_id] = event
        await self.ok(event_id, True, "")

    async def serve_stored(self, sub_id: str, filters: Filters) -> None:
        for event in self.relay.matching(filters):
            await self.send(["EVENT", sub_id, event])
        await self.send(["EOSE", sub_id])

    async def drop(self) -> None:
        """Cut the TCP connection without a websocket close (a crash, a cable pulled)."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()


class Behaviour:
    """A well-behaved relay; override the hooks to misbehave."""

    async def on_connect(self, conn: FakeConnection) -> None:
        """Called once per socket before any frame is read."""

    async def on_event(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        await conn.store_and_ok(event)

    async def on_req(
        self, conn: FakeConnection, sub_id: str, filters: list[dict[str, Any]]
    ) -> None:
        await conn.serve_stored(sub_id, filters)

    async def on_auth(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        await conn.ok(str(event.get("id", "")), False, "restricted: we do not do AUTH here")


class FakeRelay:
    """The server. ``async with FakeRelay(behaviour) as relay: ... relay.url ...``."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.received: list[Received] = []
        self.stored: dict[str, dict[str, Any]] = {}
        self.connections = 0
        self._sockets: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FakeRelay:
        app = web.Application()
        app.router.add_get("/", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"ws://{LOOPBACK}:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what tests look at ----------------------------------------------------------

    def frames(self, verb: str, connection: int | None = None) -> list[Received]:
        return [
            r
            for r in self.received
            if r.verb == verb and (connection is None or r.connection == connection)
        ]

    def event_ids(self, connection: int | None = None) -> list[str]:
        """Ids of EVENT frames received, in order (repeats included)."""
        return [r.event_id for r in self.frames("EVENT", connection)]

    def matching(self, filters: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        filters = list(filters)
        found = [e for e in self.stored.values() if any(_matches(f, e) for f in filters)]
        found.sort(key=lambda e: (-int(e.get("created_at", 0)), str(e.get("id"))))
        limits = [f["limit"] for f in filters if isinstance(f.get("limit"), int)]
        return found[: max(limits)] if limits and len(limits) == len(filters) else found

    # -- the server ------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=16 * 1024 * 1024, timeout=1.0)
        await ws.prepare(request)
        self.connections += 1
        conn = FakeConnection(self, ws, request, self.connections)
        self._sockets.add(ws)
        try:
            await self.behaviour.on_connect(conn)
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                await self._frame(conn, msg.data)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._sockets.discard(ws)
        return ws

    async def _frame(self, conn: FakeConnection, text: str) -> None:
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            await conn.send(["NOTICE", "could not parse your message"])
            return
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            await conn.send(["NOTICE", "messages are arrays"])
            return
        verb = data[0]
        self.received.append(Received(conn.number, time.monotonic(), verb, text, data))
        if verb == "EVENT" and len(data) == 2 and isinstance(data[1], dict):
            conn.events_received += 1
            await self.behaviour.on_event(conn, data[1])
        elif verb == "REQ" and len(data) >= 3 and isinstance(data[1], str):
            await self.behaviour.on_req(conn, data[1], [f for f in data[2:] if isinstance(f, dict)])
        elif verb == "AUTH" and len(data) == 2 and isinstance(data[1], dict):
            await self.behaviour.on_auth(conn, data[1])
        elif verb == "CLOSE":
            pass
        else:
            await conn.send(["NOTICE", f"unsupported: {verb}"])


def _matches(filter_: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    checks = {"ids": "id", "authors": "pubkey", "kinds": "kind"}
    for key, field in checks.items():
        if key in filter_ and event.get(field) not in filter_[key]:
            return False
    if "since" in filter_ and event.get("created_at", 0) < filter_["since"]:
        return False
    if "until" in filter_ and event.get("created_at", 0) > filter_["until"]:
        return False
    for key, wanted in filter_.items():
        if key.startswith("#") and len(key) == 2:
            values = {t[1] for t in event.get("tags", []) if len(t) >= 2 and t[0] == key[1]}
            if not values & set(wanted):
                return False
    return True


# -- misbehaviours ---------------------------------------------------------------------


class DuplicateFalse(Behaviour):
    """nostr-relay's way: a repeat is answered ``false, "duplicate: exists"``."""

    def __init__(self, *, everything: bool = False) -> None:
        self.everything = everything  # answer duplicate even for events never seen

    async def on_event(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        event_id = str(event["id"])
        if self.everything or event_id in conn.relay.stored:
            conn.relay.stored[event_id] = event
            await conn.ok(event_id, False, "duplicate: exists")
            return
        await conn.store_and_ok(event)


class Refuse(Behaviour):
    """Every EVENT refused: ``false`` and the given message (``invalid: ...``, ``error: ...``)."""

    def __init__(self, message: str) -> None:
        self.message = message

    async def on_event(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        await conn.ok(str(event["id"]), False, self.message)


class NeverAnswer(Behaviour):
    """Swallows EVENTs whose id is in ``silent`` (all of them when ``silent`` is None)."""

    def __init__(self, silent: set[str] | None = None) -> None:
        self.silent = silent

    async def on_event(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        if self.silent is None or event["id"] in self.silent:
            return
        await conn.store_and_ok(event)


class DropAfter(Behaviour):
    """On the first connection, answer ``answered`` EVENTs, then cut the socket at the next."""

    def __init__(self, answered: int) -> None:
        self.answered = answered
        self.answered_ids: list[str] = []

    async def on_event(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        if conn.number == 1 and conn.events_received > self.answered:
            await conn.drop()
            return
        if conn.number == 1:
            self.answered_ids.append(str(event["id"]))
        await conn.store_and_ok(event)


class RateLimit(Behaviour):
    """rust-nostr's limiter in miniature: ``burst`` EVENTs, then one per ``interval`` seconds.

    Like rust-nostr, *every* EVENT (refused ones too) restarts the interval, so a
    client that keeps retrying faster than the interval never gets through.
    """

    def __init__(self, *, burst: int, interval: float) -> None:
        self.burst = burst
        self.interval = interval
        self._last: float | None = None

    async def on_event(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        now = time.monotonic()
        last, self._last = self._last, now
        if self.burst > 0:
            self.burst -= 1
        elif last is not None and now - last < self.interval:
            await conn.ok(str(event["id"]), False, "rate-limited: slow down")
            return
        await conn.store_and_ok(event)


class RequireAuth(Behaviour):
    """NIP-42: sends a challenge on connect; accepts EVENTs only from authenticated authors.

    An AUTH counts when it is a kind-22242 event with a valid id and signature, this
    connection's challenge, this relay's URL (compared canonically) and a recent
    ``created_at``. ``accept_auth=False`` refuses every AUTH (``restricted:``).
    """

    def __init__(self, *, accept_auth: bool = True) -> None:
        self.accept_auth = accept_auth

    async def on_connect(self, conn: FakeConnection) -> None:
        conn.challenge = f"challenge-{conn.number}-{time.monotonic_ns()}"
        await conn.send(["AUTH", conn.challenge])

    async def on_event(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        if event.get("pubkey") not in conn.authenticated:
            await conn.ok(str(event["id"]), False, "auth-required: we only accept members")
            return
        await conn.store_and_ok(event)

    async def on_auth(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        event_id = str(event.get("id", ""))
        problem = self._problem(conn, event)
        if problem is None and self.accept_auth:
            conn.authenticated.add(str(event["pubkey"]))
            await conn.ok(event_id, True, "")
        else:
            await conn.ok(event_id, False, f"restricted: {problem or 'not a member'}")

    @staticmethod
    def _problem(conn: FakeConnection, raw: dict[str, Any]) -> str | None:
        try:
            event = Event.from_dict(raw)
        except InvalidEvent as exc:
            return str(exc)
        if why_invalid(event) is not None:
            return "bad id or signature"
        if event.kind != 22242:
            return "AUTH must be kind 22242"
        if event.tag_values("challenge") != [conn.challenge]:
            return "wrong challenge"
        relays = event.tag_values("relay")
        if len(relays) != 1 or canonical_url(relays[0]) != canonical_url(conn.relay.url):
            return "wrong relay"
        if abs(event.created_at - time.time()) > 600:
            return "stale AUTH"
        return None


GARBAGE_FRAMES: tuple[str, ...] = (
    "this is not json",
    "{}",
    "[]",
    "42",
    '"OK"',
    "[1, 2, 3]",
    '["OK"]',
    '["OK", 7, true, ""]',
    '["OK", "abc", "yes", ""]',
    '["OK", "abc", true, 5]',
    '["EOSE"]',
    '["EOSE", 5]',
    '["CLOSED", 5, "x"]',
    '["NOTICE"]',
    '["NOTICE", {"a": 1}]',
    '["AUTH", 5]',
    '["EVENT", "no-such-subscription", {"id": "x"}]',
    '["EVENT"]',
    '["WHAT", "is", "this"]',
    '["OK", "' + "f" * 64 + '", true, ""]',
    "[" * 50 + "]" * 50,
)


class Garbage(Behaviour):
    """Before every real answer, a burst of garbage: bad JSON, wrong shapes, unknown verbs."""

    async def on_connect(self, conn: FakeConnection) -> None:
        await conn.ws.send_bytes(b"\x00binary frames are not NIP-01")

    async def on_event(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        for frame in GARBAGE_FRAMES:
            await conn.send_raw(frame)
        await conn.store_and_ok(event)

    async def on_req(
        self, conn: FakeConnection, sub_id: str, filters: list[dict[str, Any]]
    ) -> None:
        for frame in GARBAGE_FRAMES:
            await conn.send_raw(frame)
        await conn.send(["EVENT", sub_id, {"id": "not an event"}])
        await conn.send(["EVENT", sub_id, "not even an object"])
        await conn.serve_stored(sub_id, filters)


class EmptyIdRefusal(Behaviour):
    """nostr-relay's way with a bad signature: ``["OK", "", false, "invalid: ..."]``."""

    def __init__(self, refused: set[str], *, delay: float = 0.0) -> None:
        self.refused = refused
        self.delay = delay

    async def on_event(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        if event["id"] in self.refused:
            await asyncio.sleep(self.delay)
            await conn.ok("", False, "invalid: Bad signature")
            return
        await conn.store_and_ok(event)


class ThrottleAfterRefusal(Behaviour):
    """nostr-relay's way, in full: refusals carry an empty id and slow the socket down.

    Messages on one connection are handled in order; after the first refusal on a
    connection every answer there waits ``throttle`` seconds (doubling with each
    further refusal), as nostr-relay does. A new connection starts unthrottled.
    """

    def __init__(self, refused: set[str], *, throttle: float) -> None:
        self.refused = refused
        self.throttle = throttle
        self._throttles: dict[int, float] = {}

    async def on_event(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        delay = self._throttles.get(conn.number, 0.0)
        if event["id"] in self.refused:
            delay = max(delay, self.throttle / 2) * 2
            self._throttles[conn.number] = delay
            await asyncio.sleep(delay)
            await conn.ok("", False, "invalid: Bad signature")
            return
        await asyncio.sleep(delay)
        await conn.store_and_ok(event)

"""The buzz relay double (tests/support/buzz_relay.py) keeps each rule of the reference.

One test per rule, named as the rule reads; each docstring names the section of
``../shared/reference/buzz-interop.md`` (or the spec) it pins. Everything runs on real
loopback sockets. AUTH and NIP-98 events are signed by nostr-sdk (rust-nostr) where
the rule is about what the relay accepts, so the double is held to a third-party
signer, and by fleetsync's own signer elsewhere.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import hashlib
import io
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import nostr_sdk as ns
import nostr_sdk.nostr_sdk as ns_bindings
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.nostr.event import Event, sign_event
from adapters.nostr.keys import SecretKey
from adapters.nostr.nip44 import conversation_key, encrypt
from tests.support.buzz_relay import (
    AUTH_ALREADY,
    AUTH_ALREADY_FAILED,
    AUTH_BANNED,
    AUTH_FAILED,
    AUTH_NOT_MEMBER,
    AUTHOR_ONLY,
    DUPLICATE,
    ENGRAM_GATED,
    KIND_ENGRAM,
    KIND_PERSONA,
    MEMBERSHIP_REQUIRED,
    NO_COMMUNITY,
    NOT_AUTHENTICATED,
    PAGE_LIMIT,
    PUBKEY_MISMATCH,
    REQ_AUTH_NOTICE,
    TOO_FAR,
    UNKNOWN_KIND,
    WS_P_GATED,
    BuzzRelay,
    HttpAnswer,
    OaInvalid,
    auth_tags,
    authorization_header,
    filter_matches,
    mint_oa_tag,
    nip98_tags,
    parse_event,
    readable_by,
    sdk_strings_copied_at_once,
    validate_persona_envelope,
    verify_oa_tag,
)
from tests.support.examples import examples
from tests.support.nip01 import RawClient, connect, fetch_nip11
from tests.support.sdk import sdk_publish, sdk_sign_event

pytestmark = pytest.mark.timeout(60)

T = TypeVar("T")
Filter = dict[str, Any]


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    """Run one async scenario with a hard bound, so no test can hang."""

    async def bounded() -> T:
        return await asyncio.wait_for(scenario(), timeout=20)

    return asyncio.run(bounded())


def now() -> int:
    return int(time.time())


# -- signing: nostr-sdk for what the relay must accept, fleetsync elsewhere -----------------


def sdk_auth_event(
    secret: SecretKey,
    relay_url: str,
    challenge: str,
    *,
    created_at: int | None = None,
    kind: int = 22242,
    extra: list[list[str]] | None = None,
) -> dict[str, Any]:
    """A NIP-42 AUTH event signed by nostr-sdk, tags in buzz's agents' order."""
    tags = auth_tags(relay_url, challenge) + (extra or [])
    text = sdk_sign_event(secret.secret_hex(), kind, tags, "", created_at or now())
    event: dict[str, Any] = json.loads(text)
    return event


def fs_auth_event(
    secret: SecretKey, tags: list[list[str]], *, created_at: int | None = None
) -> dict[str, Any]:
    """A kind-22242 event signed by fleetsync's signer with exactly these tags."""
    event = sign_event(secret, created_at=created_at or now(), kind=22242, tags=tags, content="")
    return event.to_dict()


def engram(
    agent: SecretKey,
    owner_pub: str,
    *,
    d: str | None = None,
    created_at: int | None = None,
    tags: list[list[str]] | None = None,
    content: str | None = None,
) -> Event:
    """A kind:30174 event with real NIP-44 v2 content, as buzz's envelope check wants."""
    if content is None:
        owner_key = SecretKey.generate().public_key  # content need not decrypt for the relay
        content = encrypt("engram body", conversation_key(agent, owner_key))
    return sign_event(
        agent,
        created_at=created_at or now(),
        kind=30174,
        tags=tags if tags is not None else [["d", d or os.urandom(32).hex()], ["p", owner_pub]],
        content=content,
    )


def nip98_event(
    secret: SecretKey,
    url: str,
    body: bytes,
    *,
    created_at: int | None = None,
    tags: list[list[str]] | None = None,
    kind: int = 27235,
    signer: str = "sdk",
) -> str:
    """A NIP-98 event JSON as the buzz desktop builds it (u, method, payload, nonce)."""
    tags = tags if tags is not None else nip98_tags(url, body)
    if signer == "sdk":
        return sdk_sign_event(secret.secret_hex(), kind, tags, "", created_at or now())
    return sign_event(
        secret, created_at=created_at or now(), kind=kind, tags=tags, content=""
    ).to_json()


# -- talking to the double ------------------------------------------------------------------


@asynccontextmanager
async def ws(relay: BuzzRelay, url: str | None = None) -> AsyncIterator[tuple[RawClient, str]]:
    """A raw websocket and the challenge the relay sent as its first frame."""
    async with connect(url or relay.url) as client:
        first = await client.receive(timeout=2)
        assert first[0] == "AUTH", first
        yield client, first[1]


async def login(
    client: RawClient, relay: BuzzRelay, challenge: str, secret: SecretKey, **kw: Any
) -> list[Any]:
    """AUTH as ``secret`` (nostr-sdk signed) and return the relay's OK."""
    await client.send(["AUTH", sdk_auth_event(secret, relay.url, challenge, **kw)])
    return await client.receive(timeout=2)


async def publish(client: RawClient, event: Event | dict[str, Any]) -> list[Any]:
    data = event.to_dict() if isinstance(event, Event) else event
    await client.send(["EVENT", data])
    return await client.receive(timeout=2)


async def req(client: RawClient, *filters: Filter, sub: str = "s") -> list[list[Any]]:
    """Every frame the relay sends for one REQ, up to its EOSE or CLOSED."""
    await client.send(["REQ", sub, *filters])
    frames = []
    while True:
        frame = await client.receive(timeout=2)
        frames.append(frame)
        if frame[0] in ("EOSE", "CLOSED") and frame[1] == sub:
            return frames


def served(frames: list[list[Any]]) -> list[str]:
    return [frame[2]["id"] for frame in frames if frame[0] == "EVENT"]


async def store(relay: BuzzRelay, event: Event) -> tuple[bool, str]:
    """Ingest straight into the double (for setting up reads), as its author."""
    data, sdk_event = parse_event(event.to_dict())
    return await relay.ingest(data, sdk_event, event.pubkey)


async def post(
    relay: BuzzRelay,
    path: str,
    body: bytes,
    secret: SecretKey | None,
    *,
    headers: dict[str, str] | None = None,
    auth: str | None = None,
    **kw: Any,
) -> tuple[int, Any, dict[str, str]]:
    """POST to the bridge with a fresh NIP-98 header for ``secret``; (status, JSON, headers)."""
    sent = dict(headers or {})
    if auth is not None:
        sent["Authorization"] = auth
    elif secret is not None:
        sent["Authorization"] = authorization_header(
            nip98_event(secret, relay.http_url + path, body, **kw)
        )
    sent.setdefault("Content-Type", "application/json")
    async with (
        aiohttp.ClientSession() as session,
        # aiohttp warns about large raw bytes bodies; a stream sends the same bytes.
        session.post(relay.http_url + path, data=io.BytesIO(body), headers=sent) as response,
    ):
        text = await response.text()
        try:
            parsed: Any = json.loads(text)
        except json.JSONDecodeError:
            parsed = text
        return response.status, parsed, dict(response.headers)


def keys() -> tuple[SecretKey, str]:
    secret = SecretKey.generate()
    return secret, secret.public_key.hex


# == websocket: challenge and authentication (reference §1.1-§1.3) ===========================


def test_the_first_frame_is_a_fresh_64_hex_challenge_sent_before_the_client_speaks() -> None:
    """§1.1: ``["AUTH", <32 random bytes as 64 lowercase hex>]`` first, one per connection."""

    async def scenario() -> list[str]:
        async with BuzzRelay() as relay:
            challenges = []
            for _ in range(2):
                async with ws(relay) as (_, challenge):
                    challenges.append(challenge)
            return challenges

    first, second = run(scenario)
    for challenge in (first, second):
        assert len(challenge) == 64
        assert challenge == challenge.lower()
        bytes.fromhex(challenge)
    assert first != second


def test_an_auth_event_signed_by_nostr_sdk_for_this_challenge_and_relay_is_accepted() -> None:
    """§1.2, §1.3: kind 22242, the challenge, ``relay`` = ``ws://{host}`` -> ``OK true ""``."""

    async def scenario() -> list[Any]:
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            return await login(client, relay, challenge, SecretKey.generate())

    answer = run(scenario)
    assert answer[0] == "OK"
    assert answer[2:] == [True, ""]


def test_the_auth_event_rust_nostrs_own_authenticator_builds_is_accepted() -> None:
    """§1.2: rust-nostr's NIP-42 builder (tags ``challenge`` then ``relay``) passes too."""

    async def scenario() -> list[Any]:
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            made = ns.SignerAuthenticator(ns.Keys.generate()).make_auth_event(
                ns.RelayUrl.parse(relay.url), challenge
            )
            event = await made if asyncio.iscoroutine(made) else made
            assert event is not None
            await client.send(["AUTH", json.loads(event.as_json())])
            return await client.receive(timeout=2)

    assert run(scenario)[2:] == [True, ""]


@pytest.mark.parametrize(
    "fault",
    [
        "kind 1",
        "another challenge",
        "no challenge tag",
        "another host",
        "wss instead of ws",
        "a path",
        "no relay tag",
        "a forged signature",
    ],
)
def test_an_auth_event_that_fails_a_check_is_refused_as_verification_failed(fault: str) -> None:
    """§1.2, §1.3: kind, signature, challenge and relay checks -> ``auth-required: ...``."""

    async def scenario() -> list[Any]:
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            secret = SecretKey.generate()
            url = relay.url
            tags = auth_tags(url, challenge)
            if fault == "another challenge":
                tags = auth_tags(url, "0" * 64)
            elif fault == "no challenge tag":
                tags = [["relay", url]]
            elif fault == "another host":
                tags = auth_tags(url.replace("127.0.0.1", "127.0.0.2"), challenge)
            elif fault == "wss instead of ws":
                tags = auth_tags(url.replace("ws://", "wss://"), challenge)
            elif fault == "a path":
                tags = auth_tags(url + "/nostr", challenge)
            elif fault == "no relay tag":
                tags = [["challenge", challenge]]
            kind = 1 if fault == "kind 1" else 22242
            event = json.loads(sdk_sign_event(secret.secret_hex(), kind, tags, "", now()))
            if fault == "a forged signature":
                event["sig"] = "0" * 128
            await client.send(["AUTH", event])
            return await client.receive(timeout=2)

    answer = run(scenario)
    assert answer[2:] == [False, AUTH_FAILED]


@pytest.mark.parametrize(
    ("offset", "accepted"), [(-61, False), (-59, True), (59, True), (61, False)]
)
def test_an_auth_event_is_accepted_only_within_60_seconds_of_the_relay_clock(
    offset: int, accepted: bool
) -> None:
    """§1.2: ``created_at`` within ±60 s (buzz-auth/src/nip42.rs:35)."""

    async def scenario() -> list[Any]:
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            return await login(
                client, relay, challenge, SecretKey.generate(), created_at=now() + offset
            )

    assert run(scenario)[2] is accepted


@pytest.mark.parametrize(
    "written", ["ws://localhost:{port}", "ws://127.0.0.1:{port}/", "WS://127.0.0.1:{port}"]
)
def test_the_relay_tag_is_compared_after_normalisation(written: str) -> None:
    """§1.2: ``localhost`` is ``127.0.0.1``, a trailing ``/`` and case do not matter."""

    async def scenario() -> list[Any]:
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            tag = written.format(port=relay.port)
            event = fs_auth_event(SecretKey.generate(), auth_tags(tag, challenge))
            await client.send(["AUTH", event])
            return await client.receive(timeout=2)

    assert run(scenario)[2:] == [True, ""]


def test_a_connection_keeps_its_one_identity_and_refuses_a_second_auth() -> None:
    """§1.1: one identity per connection; a second AUTH -> ``already authenticated``."""

    async def scenario() -> tuple[list[Any], list[Any], list[Any]]:
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            agent, _ = keys()
            other, _ = keys()
            await login(client, relay, challenge, agent)
            second = await login(client, relay, challenge, other)
            mine = await publish(client, engram(agent, keys()[1]))
            theirs = await publish(client, engram(other, keys()[1]))
            return second, mine, theirs

    second, mine, theirs = run(scenario)
    assert second[2:] == [False, AUTH_ALREADY]
    assert mine[2:] == [True, ""]
    assert theirs[2:] == [False, PUBKEY_MISMATCH]


def test_a_failed_auth_leaves_the_connection_unable_to_authenticate() -> None:
    """§1.1: after a failure, even a valid AUTH -> ``authentication already failed``."""

    async def scenario() -> tuple[list[Any], list[Any]]:
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            secret = SecretKey.generate()
            failed = await login(client, relay, challenge, secret, created_at=now() - 3600)
            again = await login(client, relay, challenge, secret)
            return failed, again

    failed, again = run(scenario)
    assert failed[2:] == [False, AUTH_FAILED]
    assert again[2:] == [False, AUTH_ALREADY_FAILED]


def test_a_socket_for_a_host_with_no_community_is_refused_with_404() -> None:
    """§1.1, §2.5: the ``Host`` header picks the community; unmapped -> 404."""

    async def scenario() -> tuple[int, str]:
        async with BuzzRelay() as relay, aiohttp.ClientSession() as session:
            try:
                await session.ws_connect(relay.url, headers={"Host": "elsewhere.example"})
            except aiohttp.WSServerHandshakeError as exc:
                async with session.get(
                    relay.http_url + "/", headers={"Host": "elsewhere.example"}
                ) as response:
                    return exc.status, await response.text()
            raise AssertionError("the upgrade should have been refused")

    assert run(scenario) == (404, NO_COMMUNITY)


def test_a_socket_that_does_not_authenticate_in_time_is_closed() -> None:
    """connection.rs:29,250-270: an unauthenticated socket is closed after AUTH_TIMEOUT."""

    async def scenario() -> aiohttp.WSMsgType:
        async with BuzzRelay(auth_timeout=0.2) as relay, ws(relay) as (client, _):
            message = await client.ws.receive(timeout=3)
            return message.type

    assert run(scenario) in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


def test_a_banned_pubkey_and_an_agent_of_a_banned_owner_are_blocked_and_disconnected() -> None:
    """§1.3: ban -> ``blocked: you are banned from this community``, then the socket closes."""

    async def scenario() -> list[tuple[list[Any], aiohttp.WSMsgType]]:
        owner, owner_pub = keys()
        banned, banned_pub = keys()
        agent, agent_pub = keys()
        results = []
        async with BuzzRelay(banned=[banned_pub, owner_pub]) as relay:
            for secret, extra in ((banned, None), (agent, [mint_oa_tag(owner, agent_pub)])):
                async with ws(relay) as (client, challenge):
                    answer = await login(client, relay, challenge, secret, extra=extra)
                    closed = (await client.ws.receive(timeout=2)).type
                    results.append((answer, closed))
        return results

    for answer, closed in run(scenario):
        assert answer[2:] == [False, AUTH_BANNED]
        assert closed in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


def test_a_pubkey_outside_the_allowlist_is_refused_as_verification_failed() -> None:
    """§1.3, §1.7 ``BUZZ_PUBKEY_ALLOWLIST``."""

    async def scenario() -> tuple[list[Any], list[Any]]:
        listed, listed_pub = keys()
        async with BuzzRelay(pubkey_allowlist=[listed_pub]) as relay:
            async with ws(relay) as (client, challenge):
                outsider = await login(client, relay, challenge, SecretKey.generate())
            async with ws(relay) as (client, challenge):
                member = await login(client, relay, challenge, listed)
            return outsider, member

    outsider, member = run(scenario)
    assert outsider[2:] == [False, AUTH_FAILED]
    assert member[2:] == [True, ""]


# == websocket reads (reference §1.4, §1.6) ==================================================


def test_a_req_before_auth_gets_the_notice_and_closed_auth_required() -> None:
    """§1.4: NOTICE ``auth-required: authenticate before subscribing``, then CLOSED."""

    async def scenario() -> list[list[Any]]:
        async with BuzzRelay() as relay, ws(relay) as (client, _):
            return await req(client, {"kinds": [30174]}, sub="early")

    assert run(scenario) == [
        ["NOTICE", REQ_AUTH_NOTICE],
        ["CLOSED", "early", NOT_AUTHENTICATED],
    ]


AGENT, OWNER, STRANGER = "agent", "owner", "stranger"
READ_TABLE = [
    # (filter, authenticated as, served?, CLOSED text) - the table of reference §1.4
    ({"kinds": [30174], "authors": [AGENT]}, AGENT, True, None),
    ({"kinds": [30174], "authors": [AGENT], "#p": [OWNER]}, OWNER, True, None),
    ({"kinds": [30174], "authors": [AGENT]}, OWNER, False, ENGRAM_GATED),
    ({"kinds": [30174]}, OWNER, False, ENGRAM_GATED),
    ({"kinds": [30174], "#p": [OWNER, STRANGER]}, OWNER, False, ENGRAM_GATED),
    ({"authors": [AGENT]}, OWNER, False, WS_P_GATED),  # kindless: the p-gate runs first in buzz
    ({"kinds": [30174], "#p": ["O_UPPER"]}, OWNER, False, ENGRAM_GATED),
    ({"kinds": [30174], "authors": ["A_UPPER"]}, AGENT, True, None),
    ({"ids": ["id"]}, STRANGER, True, None),
    ({"kinds": [30300]}, STRANGER, False, AUTHOR_ONLY),
]


@pytest.mark.parametrize(("template", "reader", "is_served", "closed"), READ_TABLE)
def test_engram_reads_are_served_only_to_the_agent_or_the_owner_named_in_p(
    template: Filter, reader: str, is_served: bool, closed: str | None
) -> None:
    """§1.4 (req.rs:1218-1268), §1.6: authors=[self] or #p=[self]; ids exempt."""
    people = {AGENT: keys(), OWNER: keys(), STRANGER: keys()}

    def fill(value: Any) -> Any:
        if isinstance(value, list):
            return [fill(v) for v in value]
        names = {name: pair[1] for name, pair in people.items()}
        names["O_UPPER"], names["A_UPPER"] = names[OWNER].upper(), names[AGENT].upper()
        return names.get(value, value)

    async def scenario() -> list[list[Any]]:
        async with BuzzRelay() as relay:
            event = engram(people[AGENT][0], people[OWNER][1])
            await store(relay, event)
            filter_ = {k: fill(v) for k, v in template.items()}
            if "ids" in filter_:
                filter_["ids"] = [event.id]
            async with ws(relay) as (client, challenge):
                await login(client, relay, challenge, people[reader][0])
                frames = await req(client, filter_)
                return [*frames, ["stored", event.id]]

    frames = run(scenario)
    stored_id = frames.pop()[1]
    if is_served:
        assert served(frames) == [stored_id]
        assert frames[-1][0] == "EOSE"
    else:
        assert frames == [["CLOSED", "s", closed]]


def test_one_unauthorized_filter_closes_the_whole_req() -> None:
    """§1.4: every filter must pass the engram gate, or the REQ is closed."""

    async def scenario() -> list[list[Any]]:
        agent, agent_pub = keys()
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            await login(client, relay, challenge, agent)
            return await req(client, {"kinds": [30174], "authors": [agent_pub]}, {"kinds": [30174]})

    assert run(scenario) == [["CLOSED", "s", ENGRAM_GATED]]


def test_a_req_with_more_than_ten_filters_is_refused_with_a_notice() -> None:
    """protocol.rs MAX_FILTERS_PER_REQ: 10 (NIP-11 ``max_filters``)."""

    async def scenario() -> list[Any]:
        agent, agent_pub = keys()
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            await login(client, relay, challenge, agent)
            await client.send(["REQ", "s", *[{"authors": [agent_pub]}] * 11])
            return await client.receive(timeout=2)

    assert run(scenario) == [
        "NOTICE",
        "invalid message: Invalid message format: REQ contains 11 filters, maximum is 10",
    ]


def test_a_filter_returns_at_most_1000_events_newest_first_even_when_asked_for_more() -> None:
    """buzz-db DEFAULT_MAX_PAGE_LIMIT (1,000) caps every filter; the desktop asks 5,000."""

    async def scenario() -> tuple[list[str], list[Event]]:
        agent, agent_pub = keys()
        owner_pub = keys()[1]
        content = encrypt("x", conversation_key(agent, SecretKey.generate().public_key))
        start = now() - 600
        events = [
            engram(agent, owner_pub, created_at=start + i // 3, content=content)
            for i in range(PAGE_LIMIT + 5)
        ]
        async with BuzzRelay() as relay:
            for event in events:
                await store(relay, event)
            async with ws(relay) as (client, challenge):
                await login(client, relay, challenge, agent)
                frames = await req(
                    client, {"kinds": [30174], "authors": [agent_pub], "limit": 5000}
                )
                return served(frames), events

    ids, events = run(scenario)
    newest = sorted(events, key=lambda e: (-e.created_at, e.id))[:PAGE_LIMIT]
    assert ids == [e.id for e in newest]


# == writes (reference §1.5) ===================================================================


def test_an_event_before_auth_is_refused_auth_required() -> None:
    """§1.5: ``OK false "auth-required: not authenticated"``."""

    async def scenario() -> list[Any]:
        async with BuzzRelay() as relay, ws(relay) as (client, _):
            return await publish(client, engram(SecretKey.generate(), keys()[1]))

    assert run(scenario)[2:] == [False, NOT_AUTHENTICATED]


@pytest.mark.parametrize(
    ("offset", "skew", "accepted"),
    [(-901, 0, False), (901, 0, False), (-899, 0, True), (0, 901, False)],
)
def test_an_event_more_than_900_seconds_from_the_relay_clock_is_refused(
    offset: int, skew: int, accepted: bool
) -> None:
    """§1.5: ``invalid: event timestamp too far from server time`` (ingest.rs:2224-2231)."""

    async def scenario() -> list[Any]:
        agent, _ = keys()
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            await login(client, relay, challenge, agent)
            relay.faults.clock_skew = skew  # after AUTH, so only the event is judged
            return await publish(client, engram(agent, keys()[1], created_at=now() + offset))

    answer = run(scenario)
    assert answer[2:] == ([True, ""] if accepted else [False, TOO_FAR])


def test_the_websocket_checks_the_author_before_the_signature() -> None:
    """handlers/event.rs: another identity's event is refused before it is verified."""

    async def scenario() -> list[Any]:
        agent, _ = keys()
        other, _ = keys()
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            await login(client, relay, challenge, agent)
            forged = dict(engram(other, keys()[1]).to_dict(), sig="0" * 128)
            return await publish(client, forged)

    assert run(scenario)[2:] == [False, PUBKEY_MISMATCH]


def test_an_unknown_kind_is_refused_as_restricted() -> None:
    """§1.5: kinds other than 5, 30174, 30175, 30176 -> ``restricted: unknown event kind``."""

    async def scenario() -> list[Any]:
        agent, _ = keys()
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            await login(client, relay, challenge, agent)
            note = sign_event(agent, created_at=now(), kind=1, tags=[], content="hello")
            return await publish(client, note)

    assert run(scenario)[2:] == [False, UNKNOWN_KIND]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


ENVELOPE_CASES = [
    (
        "two d tags",
        [["d", "a" * 64], ["d", "b" * 64], ["p", "P"]],
        None,
        "agent-engram event must have exactly one `d` tag (got 2)",
    ),
    (
        "no p tag",
        [["d", "a" * 64]],
        None,
        "agent-engram event must have exactly one `p` tag (got 0)",
    ),
    (
        "upper-case d",
        [["d", "A" * 64], ["p", "P"]],
        None,
        "agent-engram `d` tag must be 64 lowercase hex chars",
    ),
    (
        "upper-case p",
        [["d", "a" * 64], ["p", "P_UPPER"]],
        None,
        "agent-engram `p` tag must be 64 lowercase hex chars (pubkey)",
    ),
    ("empty content", None, "", "agent-engram content must not be empty (NIP-44 ciphertext)"),
    ("content length", None, "abcde", "agent-engram content is not valid base64 (length)"),
    ("content alphabet", None, "ab!d" * 40, "agent-engram content is not valid base64"),
    (
        "content too short",
        None,
        _b64(b"\x02" + bytes(97)),
        "agent-engram content too short for NIP-44 v2",
    ),
    (
        "content version",
        None,
        _b64(b"\x01" + bytes(120)),
        "agent-engram content is not NIP-44 v2 (expected 0x02 version prefix)",
    ),
]


@pytest.mark.parametrize(("case", "tags", "content", "message"), ENVELOPE_CASES)
def test_a_malformed_engram_envelope_is_refused_with_buzz_text(
    case: str, tags: list[list[str]] | None, content: str | None, message: str
) -> None:
    """§1.5 kind:30174 envelope (ingest.rs:1341-1395, 1817-1870), ``invalid: `` + text."""

    async def scenario() -> list[Any]:
        agent, _ = keys()
        owner_pub = keys()[1]
        filled = (
            None
            if tags is None
            else [
                [name, {"P": owner_pub, "P_UPPER": owner_pub.upper()}.get(v, v)] for name, v in tags
            ]
        )
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            await login(client, relay, challenge, agent)
            return await publish(client, engram(agent, owner_pub, tags=filled, content=content))

    assert run(scenario)[2:] == [False, f"invalid: {message}"]


def test_content_over_262144_bytes_is_refused_with_its_size() -> None:
    """§1.5: ``invalid: content exceeds maximum size of 262144 bytes (got N)``."""

    async def scenario() -> list[Any]:
        agent, _ = keys()
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            await login(client, relay, challenge, agent)
            return await publish(client, engram(agent, keys()[1], content="A" * 262148))

    assert run(scenario)[2:] == [
        False,
        "invalid: content exceeds maximum size of 262144 bytes (got 262148)",
    ]


def test_a_tampered_event_is_refused_in_buzz_words() -> None:
    """ingest.rs verify_event: ``invalid: invalid schnorr signature`` / ``invalid event id``."""

    async def scenario() -> tuple[list[Any], list[Any], str]:
        agent, _ = keys()
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            await login(client, relay, challenge, agent)
            event = engram(agent, keys()[1]).to_dict()
            bad_sig = dict(
                event, sig=event["sig"][:-2] + ("00" if event["sig"][-2:] != "00" else "11")
            )
            bad_id = dict(event, content=event["content"][:-4] + "AAA=")
            return await publish(client, bad_sig), await publish(client, bad_id), event["id"]

    bad_sig, bad_id, event_id = run(scenario)
    assert bad_sig[2:] == [False, "invalid: invalid schnorr signature"]
    assert bad_id[2] is False
    assert bad_id[3].startswith("invalid: invalid event id: computed ")
    assert bad_id[3].endswith(f", got {event_id}")


def test_an_event_older_than_the_head_is_accepted_as_duplicate_but_not_stored() -> None:
    """§1.5: a dominated write answers ``true, "duplicate:"``; only a read-back shows the head."""

    async def scenario() -> tuple[list[Any], list[Any], list[str], str]:
        agent, agent_pub = keys()
        owner_pub = keys()[1]
        d = os.urandom(32).hex()
        head = engram(agent, owner_pub, d=d, created_at=now())
        older = engram(agent, owner_pub, d=d, created_at=now() - 10)
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            await login(client, relay, challenge, agent)
            first = await publish(client, head)
            stale = await publish(client, older)
            frames = await req(client, {"kinds": [30174], "authors": [agent_pub], "#d": [d]})
            return first, stale, served(frames), head.id

    first, stale, read_back, head_id = run(scenario)
    assert first[2:] == [True, ""]
    assert stale[2:] == [True, DUPLICATE]
    assert read_back == [head_id]


def test_a_newer_event_replaces_the_head_at_its_address() -> None:
    """§1.5: addressable replacement keeps one head per (kind, author, d)."""

    async def scenario() -> tuple[list[Any], list[str], str]:
        agent, agent_pub = keys()
        owner_pub = keys()[1]
        d = os.urandom(32).hex()
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            await login(client, relay, challenge, agent)
            await publish(client, engram(agent, owner_pub, d=d, created_at=now() - 5))
            newer = engram(agent, owner_pub, d=d, created_at=now())
            answer = await publish(client, newer)
            frames = await req(client, {"kinds": [30174], "authors": [agent_pub]})
            return answer, served(frames), newer.id

    answer, read_back, newer_id = run(scenario)
    assert answer[2:] == [True, ""]
    assert read_back == [newer_id]


def test_in_the_same_second_the_lower_id_wins_and_a_repeat_is_a_duplicate() -> None:
    """§1.5: same ``created_at`` and an id not below the head's is dominated; so is a repeat."""

    async def scenario() -> tuple[list[list[Any]], list[str], str]:
        agent, agent_pub = keys()
        owner_pub = keys()[1]
        d, second = os.urandom(32).hex(), now()
        pair = sorted(
            (engram(agent, owner_pub, d=d, created_at=second) for _ in range(2)),
            key=lambda e: e.id,
        )
        low, high = pair
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            await login(client, relay, challenge, agent)
            answers = [
                await publish(client, high),
                await publish(client, low),
                await publish(client, high),
                await publish(client, low),
            ]
            frames = await req(client, {"kinds": [30174], "authors": [agent_pub]})
            return answers, served(frames), low.id

    answers, read_back, low_id = run(scenario)
    assert [a[2:] for a in answers] == [
        [True, ""],
        [True, ""],
        [True, DUPLICATE],
        [True, DUPLICATE],
    ]
    assert read_back == [low_id]


def test_an_open_subscription_receives_new_heads_but_not_dominated_writes() -> None:
    """NIP-01 live delivery after EOSE; §1.5: a dominated write is not stored, so not sent."""

    async def scenario() -> tuple[list[Any], bool, str]:
        agent, _ = keys()
        owner, owner_pub = keys()
        d = os.urandom(32).hex()
        head = engram(agent, owner_pub, d=d)
        stale = engram(agent, owner_pub, d=d, created_at=now() - 60)
        async with (
            BuzzRelay() as relay,
            ws(relay) as (reader, r_challenge),
            ws(relay) as (writer, w_challenge),
        ):
            await login(reader, relay, r_challenge, owner)
            assert await req(reader, {"kinds": [30174], "#p": [owner_pub]}) == [["EOSE", "s"]]
            await login(writer, relay, w_challenge, agent)
            await publish(writer, head)
            live = await reader.receive(timeout=2)
            await publish(writer, stale)
            try:
                await reader.receive(timeout=0.3)
                silent = False
            except TimeoutError:
                silent = True
            return live, silent, head.id

    live, silent, head_id = run(scenario)
    assert live[:2] == ["EVENT", "s"]
    assert live[2]["id"] == head_id
    assert silent


def test_a_deletion_needs_one_target_and_an_a_target_removes_the_head() -> None:
    """§7: kind:5 with exactly one ``e``/``a``; the coordinate's rows not newer are removed."""

    async def scenario() -> tuple[list[Any], list[Any], list[str], list[str]]:
        agent, agent_pub = keys()
        owner_pub = keys()[1]
        d = os.urandom(32).hex()
        coordinate = f"30174:{agent_pub}:{d}"
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            await login(client, relay, challenge, agent)
            await publish(client, engram(agent, owner_pub, d=d, created_at=now() - 5))
            two = sign_event(
                agent,
                created_at=now(),
                kind=5,
                content="",
                tags=[["a", coordinate], ["e", "0" * 64]],
            )
            refused = await publish(client, two)
            one = sign_event(agent, created_at=now(), kind=5, content="", tags=[["a", coordinate]])
            deleted = await publish(client, one)
            after = served(await req(client, {"kinds": [30174], "authors": [agent_pub]}, sub="a"))
            back = engram(agent, owner_pub, d=d, created_at=now() - 3)  # older than the tombstone
            await publish(client, back)
            again = served(await req(client, {"kinds": [30174], "authors": [agent_pub]}, sub="b"))
            return refused, deleted, after, again

    refused, deleted, after, again = run(scenario)
    assert refused[2:] == [
        False,
        "invalid: deletion events must reference exactly one target via e or a tag (got e=1, a=1)",
    ]
    assert deleted[2:] == [True, ""]
    assert after == []
    assert len(again) == 1  # "a later write brings the coordinate back"


def test_another_authors_unshared_persona_is_left_out_of_reads_and_a_bad_d_is_refused() -> None:
    """§7: the 30175 read gate and envelope (``invalid: persona event ...``)."""

    async def scenario() -> tuple[list[str], list[str], list[Any]]:
        owner, owner_pub = keys()
        reader, _ = keys()
        private = sign_event(
            owner, created_at=now(), kind=30175, tags=[["d", "mine"]], content="{}"
        )
        shared = sign_event(
            owner,
            created_at=now(),
            kind=30175,
            content="{}",
            tags=[["d", "ours"], ["shared", "true"]],
        )
        async with BuzzRelay() as relay:
            await store(relay, private)
            await store(relay, shared)
            async with ws(relay) as (client, challenge):
                await login(client, relay, challenge, reader)
                seen = served(await req(client, {"kinds": [30175], "authors": [owner_pub]}))
            async with ws(relay) as (client, challenge):
                await login(client, relay, challenge, owner)
                own = served(await req(client, {"kinds": [30175], "authors": [owner_pub]}))
                bad = sign_event(
                    owner, created_at=now(), kind=30175, tags=[["d", "Bad"]], content="{}"
                )
                refused = await publish(client, bad)
            return seen, sorted(own), refused

    seen, own, refused = run(scenario)
    assert len(seen) == 1
    assert len(own) == 2
    assert refused[2:] == [
        False,
        "invalid: persona event `d` tag must start with a lowercase letter or digit",
    ]


PERSONA_CASES = [
    ([["d", "ok-slug_1"]], None),
    ([["d", "ok"], ["shared", "true"]], None),
    (
        [["d", "ok"], ["shared", "true"], ["shared", "true"]],
        "persona event must have at most one `shared` tag (got 2)",
    ),
    (
        [["d", "ok"], ["shared", "false"]],
        'persona event `shared` tag must be exactly ["shared","true"] (got ["shared", "false"])',
    ),
    ([], "persona event must have exactly one `d` tag (got 0)"),
    ([["d"]], "persona event `d` tag must not be empty"),
    ([["d", "a" * 65]], "persona event `d` tag too long (65 chars, max 64)"),
    ([["d", "a b"]], "persona event `d` tag must not contain control characters or whitespace"),
    ([["d", "_x"]], "persona event `d` tag must start with a lowercase letter or digit"),
    ([["d", "xY"]], "persona event `d` tag must match [a-z0-9_-] after the first character"),
]


@pytest.mark.parametrize(("tags", "problem"), PERSONA_CASES)
def test_the_persona_envelope_is_checked_in_buzz_order_and_words(
    tags: list[list[str]], problem: str | None
) -> None:
    """§7: relay ingest rules for 30175 (ingest.rs:1408-1509), without the ``invalid: ``."""
    assert validate_persona_envelope({"tags": tags, "content": "{}"}) == problem


# == NIP-OA owner attestation (reference §3, specs/NIP-OA.md) ==================================

SPEC_OWNER = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
SPEC_AGENT = "c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5"
SPEC_CONDITIONS = "kind=1&created_at<1713957000"
SPEC_SIG = (
    "8b7df2575caf0a108374f8471722b233c53f9ff827a8b0f91861966c3b9dd5cb"
    "2e189eae9f49d72187674c2f5bd244145e10ff86c9f257ffe65a1ee5f108b369"
)


def test_the_nip_oa_spec_vector_verifies_and_names_its_owner() -> None:
    """specs/NIP-OA.md Test Vectors: the published tag verifies for the published agent."""
    tag = json.dumps(["auth", SPEC_OWNER, SPEC_CONDITIONS, SPEC_SIG])
    assert verify_oa_tag(tag, SPEC_AGENT) == SPEC_OWNER
    assert verify_oa_tag(tag, SPEC_AGENT, presented_at=1713956400) == SPEC_OWNER


@pytest.mark.parametrize(
    "tag",
    [
        ["auth", SPEC_OWNER, SPEC_CONDITIONS],  # three elements
        ["auth", SPEC_OWNER, SPEC_CONDITIONS, SPEC_SIG, "x"],  # five elements
        ["auth", SPEC_OWNER, "kind=1&", SPEC_SIG],  # trailing delimiter
        ["auth", SPEC_OWNER, "kind=01", SPEC_SIG],  # leading zero
        ["auth", SPEC_OWNER, "kind=1 ", SPEC_SIG],  # whitespace
        ["auth", SPEC_OWNER, "kind=70000", SPEC_SIG],  # out of range
        ["auth", SPEC_OWNER, "size=1", SPEC_SIG],  # unsupported clause
        ["auth", SPEC_AGENT, SPEC_CONDITIONS, SPEC_SIG],  # self-attestation
        ["auth", SPEC_OWNER.upper(), SPEC_CONDITIONS, SPEC_SIG],  # not lowercase hex
        ["auth", SPEC_OWNER, SPEC_CONDITIONS, SPEC_SIG.upper()],  # not lowercase hex
        ["auth", SPEC_OWNER, "kind=2&created_at<1713957000", SPEC_SIG],  # other conditions
        ["attest", SPEC_OWNER, SPEC_CONDITIONS, SPEC_SIG],  # not an auth tag
    ],
)
def test_each_invalid_attestation_is_refused(tag: list[str]) -> None:
    """specs/NIP-OA.md Invalid Test Vectors and grammar; §3 verify_auth_tag."""
    with pytest.raises(OaInvalid):
        verify_oa_tag(json.dumps(tag), SPEC_AGENT)


def test_an_agent_attesting_itself_is_refused_even_with_a_valid_signature() -> None:
    """specs/NIP-OA.md: ``<owner-pubkey-hex>`` equal to ``event.pubkey`` is invalid."""
    agent, agent_pub = keys()
    with pytest.raises(OaInvalid, match="self-attestation"):
        verify_oa_tag(json.dumps(mint_oa_tag(agent, agent_pub)), agent_pub)


def test_the_created_at_bound_is_strict_against_the_presenting_event() -> None:
    """§3 (L ``evaluate_time_bounds``): ``created_at<t`` needs ``created_at < t``, strictly."""
    tag = json.dumps(["auth", SPEC_OWNER, SPEC_CONDITIONS, SPEC_SIG])
    with pytest.raises(OaInvalid):
        verify_oa_tag(tag, SPEC_AGENT, presented_at=1713957000)


def _closed_relay(owner_pub: str, **kw: Any) -> BuzzRelay:
    return BuzzRelay(
        require_relay_membership=True, allow_nip_oa_auth=True, members=[owner_pub], **kw
    )


def test_a_closed_relay_refuses_an_agent_without_its_owners_attestation() -> None:
    """§1.3, §3: not a member and no attestation -> ``restricted: not a relay member``."""

    async def scenario() -> list[Any]:
        _, owner_pub = keys()
        async with _closed_relay(owner_pub) as relay, ws(relay) as (client, challenge):
            return await login(client, relay, challenge, SecretKey.generate())

    assert run(scenario)[2:] == [False, AUTH_NOT_MEMBER]


def test_a_closed_relay_admits_an_agent_whose_member_owner_attests_it_in_the_auth_event() -> None:
    """§1.2, §3: one ``auth`` tag in the AUTH event; the agent then reads its engrams."""

    async def scenario() -> tuple[list[Any], list[list[Any]], dict[str, str]]:
        owner, owner_pub = keys()
        agent, agent_pub = keys()
        async with _closed_relay(owner_pub) as relay, ws(relay) as (client, challenge):
            answer = await login(
                client, relay, challenge, agent, extra=[mint_oa_tag(owner, agent_pub)]
            )
            frames = await req(client, {"kinds": [30174], "authors": [agent_pub]})
            return answer, frames, {agent_pub: relay.owner_links.get(agent_pub, "")}

    answer, frames, links = run(scenario)
    assert answer[2:] == [True, ""]
    assert frames[-1][0] == "EOSE"
    assert list(links.values()) == [next(iter(links.values()))]
    assert all(links.values())


@pytest.mark.parametrize(
    "fault",
    [
        "two auth tags",
        "owner not a member",
        "tag for another agent",
        "expired bound",
        "nip-oa switched off",
    ],
)
def test_an_attestation_that_does_not_hold_does_not_admit_the_agent(fault: str) -> None:
    """§1.2 (more than one ``auth`` tag counts as none), §3 verification and switches."""

    async def scenario() -> list[Any]:
        owner, owner_pub = keys()
        agent, agent_pub = keys()
        stranger, _ = keys()
        tag = mint_oa_tag(owner, agent_pub)
        extra = [tag]
        members = [owner_pub]
        allow = True
        if fault == "two auth tags":
            extra = [tag, tag]
        elif fault == "owner not a member":
            members = []
        elif fault == "tag for another agent":
            extra = [mint_oa_tag(owner, stranger.public_key.hex)]
        elif fault == "expired bound":
            extra = [mint_oa_tag(owner, agent_pub, f"created_at<{now() - 10}")]
        elif fault == "nip-oa switched off":
            allow = False
        relay = BuzzRelay(require_relay_membership=True, allow_nip_oa_auth=allow, members=members)
        async with relay, ws(relay) as (client, challenge):
            return await login(client, relay, challenge, agent, extra=extra)

    assert run(scenario)[2:] == [False, AUTH_NOT_MEMBER]


# == HTTP bridge (reference §2) =================================================================


@pytest.mark.parametrize("signer", ["sdk", "fleetsync"])
def test_post_events_with_a_nip98_header_answers_accepted_and_the_event_reads_back(
    signer: str,
) -> None:
    """§2.1-§2.3: ``200 {"event_id","accepted":true,"message":""}``; ``/query`` returns it."""

    async def scenario() -> tuple[int, Any, int, Any, str]:
        agent, agent_pub = keys()
        event = engram(agent, keys()[1])
        body = event.to_json().encode()
        async with BuzzRelay() as relay:
            status, answer, _ = await post(relay, "/events", body, agent, signer=signer)
            query = json.dumps([{"kinds": [30174], "authors": [agent_pub]}]).encode()
            read_status, read, _ = await post(relay, "/query", query, agent, signer=signer)
            return status, answer, read_status, read, event.id

    status, answer, read_status, read, event_id = run(scenario)
    assert status == 200
    assert answer == {"event_id": event_id, "accepted": True, "message": ""}
    assert read_status == 200
    assert [e["id"] for e in read] == [event_id]


def _nip98_fault(fault: str, secret: SecretKey, url: str, body: bytes) -> str:
    """The Authorization header for one NIP-98 fault."""
    if fault == "no header":
        return ""
    if fault == "lower-case scheme":
        return "nostr " + authorization_header(nip98_event(secret, url, body))[6:]
    if fault == "not base64":
        return "Nostr ***"
    if fault == "not UTF-8":
        return "Nostr " + base64.b64encode(b"\xff\xfe").decode()
    if fault == "not an event":
        return "Nostr " + base64.b64encode(b'{"kind":27235}').decode()
    tags = nip98_tags(url, body)
    created_at = None
    kind = 27235
    if fault == "kind 1":
        kind = 1
    elif fault == "61 s old":
        created_at = now() - 61
    elif fault == "no u":
        tags = [t for t in tags if t[0] != "u"]
    elif fault == "u for /query":
        tags = nip98_tags(url.replace("/events", "/query"), body)
    elif fault == "u on localhost":
        tags = nip98_tags(url.replace("127.0.0.1", "localhost"), body)
    elif fault == "no method":
        tags = [t for t in tags if t[0] != "method"]
    elif fault == "method GET":
        tags = nip98_tags(url, body, method="GET")
    elif fault == "payload of another body":
        tags = nip98_tags(url, body + b" ")
    event = nip98_event(secret, url, body, tags=tags, created_at=created_at, kind=kind)
    if fault == "forged":
        data = json.loads(event)
        data["sig"] = "0" * 128
        event = json.dumps(data)
    return authorization_header(event)


NIP98_FAULTS = {
    "no header": "missing Nostr auth",
    "lower-case scheme": "missing Nostr auth",
    "not base64": "invalid base64 in Nostr auth",
    "not UTF-8": "invalid UTF-8 in Nostr auth",
    "not an event": "invalid NIP-98 event JSON",
    "kind 1": "NIP-98: NIP-98 HTTP Auth verification failed: expected kind 27235, got 1",
    "forged": "NIP-98: NIP-98 HTTP Auth verification failed: invalid Schnorr signature",
    "61 s old": "NIP-98: NIP-98 HTTP Auth verification failed: "
    "event timestamp outside ±60s window (delta: 61s)",
    "no u": "NIP-98: NIP-98 HTTP Auth verification failed: missing `u` tag",
    "u for /query": "NIP-98: NIP-98 HTTP Auth verification failed: URL mismatch: "
    "event has `{base}/query`, expected `{base}/events`",
    "u on localhost": "NIP-98: NIP-98 HTTP Auth verification failed: URL mismatch: "
    "event has `{local}/events`, expected `{base}/events`",
    "no method": "NIP-98: NIP-98 HTTP Auth verification failed: missing `method` tag",
    "method GET": "NIP-98: NIP-98 HTTP Auth verification failed: "
    "method mismatch: event has `GET`, expected `POST`",
    "payload of another body": "NIP-98: NIP-98 HTTP Auth verification failed: "
    "payload tag SHA-256 mismatch: request body does not match signed hash",
}


@pytest.mark.parametrize("fault", list(NIP98_FAULTS))
def test_a_nip98_header_that_fails_a_check_is_refused_401_with_buzz_text(fault: str) -> None:
    """§2.2, §2.5: header, kind, signature, 60 s, ``u`` (no loopback alias), method, payload."""

    async def scenario() -> tuple[int, Any, str, str]:
        agent, _ = keys()
        body = engram(agent, keys()[1]).to_json().encode()
        async with BuzzRelay() as relay:
            header = _nip98_fault(fault, agent, relay.http_url + "/events", body)
            headers = {"Authorization": header} if header else {}
            status, answer, _ = await post(relay, "/events", body, None, headers=headers)
            return status, answer, relay.http_url, f"http://localhost:{relay.port}"

    status, answer, base, local = run(scenario)
    assert status == 401
    assert answer == {"error": NIP98_FAULTS[fault].format(base=base, local=local)}


@pytest.mark.parametrize(
    "written", ["{base}/events/", "HTTP://127.0.0.1:{port}/events", "{base}/events"]
)
def test_the_u_tag_is_compared_after_url_normalisation(written: str) -> None:
    """§2.2 step 4: lowercase scheme and host, trailing ``/`` stripped."""

    async def scenario() -> int:
        agent, _ = keys()
        body = engram(agent, keys()[1]).to_json().encode()
        async with BuzzRelay() as relay:
            url = written.format(base=relay.http_url, port=relay.port)
            status, _, _ = await post(relay, "/events", body, agent, tags=nip98_tags(url, body))
            return status

    assert run(scenario) == 200


def test_the_payload_tag_is_optional() -> None:
    """§2.2 step 6: without ``payload`` the body is not hashed."""

    async def scenario() -> int:
        agent, _ = keys()
        body = engram(agent, keys()[1]).to_json().encode()
        async with BuzzRelay() as relay:
            url = relay.http_url + "/events"
            status, _, _ = await post(
                relay, "/events", body, agent, tags=nip98_tags(url, body, payload=False)
            )
            return status

    assert run(scenario) == 200


def test_each_nip98_auth_event_is_accepted_once() -> None:
    """§2.2 step 7: a reused auth event -> ``401 NIP-98: replay detected``."""

    async def scenario() -> tuple[tuple[int, Any], tuple[int, Any]]:
        agent, _ = keys()
        body = engram(agent, keys()[1]).to_json().encode()
        async with BuzzRelay() as relay:
            header = authorization_header(nip98_event(agent, relay.http_url + "/events", body))
            first = await post(relay, "/events", body, None, auth=header)
            second = await post(relay, "/events", body, None, auth=header)
            return first[:2], second[:2]

    first, second = run(scenario)
    assert first[0] == 200
    assert second == (401, {"error": "NIP-98: replay detected"})


def test_the_bridge_answers_duplicate_with_200_and_refusals_with_400_or_403() -> None:
    """§2.5: stale write ``200 accepted:true "duplicate:"``; ingest refusal 400; identity 403."""

    async def scenario() -> list[tuple[int, Any]]:
        agent, _ = keys()
        other, _ = keys()
        owner_pub = keys()[1]
        d = os.urandom(32).hex()
        head = engram(agent, owner_pub, d=d)
        stale = engram(agent, owner_pub, d=d, created_at=now() - 30)
        foreign = engram(other, owner_pub)
        note = sign_event(agent, created_at=now(), kind=1, tags=[], content="hi")
        async with BuzzRelay() as relay:
            results = []
            for event in (head, stale, foreign, note):
                status, answer, _ = await post(relay, "/events", event.to_json().encode(), agent)
                results.append((status, answer))
            return [*results, (0, {"stale": stale.id})]

    head, stale, foreign, note, ids = run(scenario)
    assert head[0] == 200
    assert head[1]["accepted"] is True
    assert stale == (200, {"event_id": ids[1]["stale"], "accepted": True, "message": DUPLICATE})
    assert foreign == (403, {"error": PUBKEY_MISMATCH})
    assert note == (400, {"error": UNKNOWN_KIND})


def test_a_body_that_is_not_an_event_or_not_filters_is_refused_400() -> None:
    """§2.5: ``invalid event JSON: ...`` on /events, ``invalid filters: ...`` on /query."""

    async def scenario() -> tuple[tuple[int, Any], tuple[int, Any]]:
        agent, _ = keys()
        async with BuzzRelay() as relay:
            event = await post(relay, "/events", b"[1,2,3]", agent)
            query = await post(relay, "/query", b'{"kinds":[1]}', agent)
            return event[:2], query[:2]

    (event_status, event), (query_status, query) = run(scenario)
    assert event_status == 400
    assert event["error"].startswith("invalid event JSON: ")
    assert query_status == 400
    assert query["error"].startswith("invalid filters: ")


def test_post_query_applies_the_engram_read_gate_with_403() -> None:
    """§2.5 (bridge.rs:991-1009), §1.6: the owner reads through ``#p``, not ``authors``."""

    async def scenario() -> tuple[tuple[int, Any], tuple[int, Any], str]:
        agent, agent_pub = keys()
        owner, owner_pub = keys()
        event = engram(agent, owner_pub)
        async with BuzzRelay() as relay:
            await store(relay, event)
            good = [{"kinds": [30174], "authors": [agent_pub], "#p": [owner_pub], "limit": 5000}]
            bad = [{"kinds": [30174], "authors": [agent_pub]}]
            ok = await post(relay, "/query", json.dumps(good).encode(), owner)
            refused = await post(relay, "/query", json.dumps(bad).encode(), owner)
            return ok[:2], refused[:2], event.id

    ok, refused, event_id = run(scenario)
    assert ok[0] == 200
    assert [e["id"] for e in ok[1]] == [event_id]
    assert refused == (403, {"error": ENGRAM_GATED})


def test_a_closed_bridge_admits_an_agent_by_its_x_auth_tag_header_only_when_sent_once() -> None:
    """§2.4, §2.5: ``x-auth-tag`` admits; missing or repeated -> 403 membership body."""

    async def scenario() -> list[tuple[int, Any]]:
        owner, owner_pub = keys()
        agent, agent_pub = keys()
        tag = json.dumps(mint_oa_tag(owner, agent_pub), separators=(",", ":"))
        body = engram(agent, owner_pub).to_json().encode()
        async with _closed_relay(owner_pub) as relay:
            url = relay.http_url + "/events"
            without = await post(relay, "/events", body, agent)
            async with aiohttp.ClientSession() as session:
                headers = [
                    ("Authorization", authorization_header(nip98_event(agent, url, body))),
                    ("Content-Type", "application/json"),
                    ("x-auth-tag", tag),
                    ("x-auth-tag", tag),
                ]
                async with session.post(url, data=body, headers=headers) as response:
                    repeated = (response.status, await response.json())
            with_tag = await post(relay, "/events", body, agent, headers={"x-auth-tag": tag})
            return [without[:2], repeated, with_tag[:2]]

    without, repeated, with_tag = run(scenario)
    assert without == (403, MEMBERSHIP_REQUIRED)
    assert repeated == (403, MEMBERSHIP_REQUIRED)
    assert with_tag[0] == 200
    assert with_tag[1]["accepted"] is True


def test_the_bridge_quota_answers_429_with_its_retry_delay_in_the_body_only() -> None:
    """§2.5 (bridge.rs:23-55): ``rate-limited: quota exceeded; retry in Ns``; no Retry-After."""

    async def scenario() -> list[tuple[int, Any, dict[str, str]]]:
        agent, agent_pub = keys()
        body = json.dumps([{"kinds": [30174], "authors": [agent_pub]}]).encode()
        async with BuzzRelay(api_calls_per_min=2) as relay:
            return [await post(relay, "/query", body, agent) for _ in range(3)]

    *ok, limited = run(scenario)
    assert [status for status, _, _ in ok] == [200, 200]
    assert limited[0] == 429
    assert limited[1]["error"].startswith("rate-limited: quota exceeded; retry in ")
    assert "Retry-After" not in limited[2]


def test_the_bridge_refuses_an_unmapped_host_and_an_oversized_body() -> None:
    """§2.5: 404 for a ``Host`` with no community; §2.1: bodies over 1 MiB are refused."""

    async def scenario() -> tuple[tuple[int, Any], int]:
        agent, _ = keys()
        async with BuzzRelay() as relay:
            unmapped = await post(relay, "/events", b"{}", agent, headers={"Host": "x.example"})
            big = await post(relay, "/events", b" " * (1024 * 1024 + 1), agent)
            return unmapped[:2], big[0]

    unmapped, big = run(scenario)
    assert unmapped == (404, {"error": NO_COMMUNITY})
    assert big == 413


def test_the_x_pubkey_dev_header_is_trusted_only_when_auth_tokens_are_not_required() -> None:
    """§2.2 step 8 (bridge.rs:114-125)."""

    async def scenario() -> tuple[int, int]:
        agent, agent_pub = keys()
        body = engram(agent, keys()[1]).to_json().encode()
        headers = {"X-Pubkey": agent_pub}
        async with BuzzRelay() as strict:
            refused = (await post(strict, "/events", body, None, headers=headers))[0]
        async with BuzzRelay(require_auth_token=False) as dev:
            accepted = (await post(dev, "/events", body, None, headers=headers))[0]
        return refused, accepted

    assert run(scenario) == (401, 200)


def test_count_answers_with_the_same_gates_on_both_transports() -> None:
    """§1.4 (count.rs applies the engram gate), §2.1 ``POST /count`` -> ``{"count": n}``."""

    async def scenario() -> tuple[list[Any], list[Any], tuple[int, Any], tuple[int, Any]]:
        agent, agent_pub = keys()
        owner, owner_pub = keys()
        events = [engram(agent, owner_pub) for _ in range(3)]
        mine = {"kinds": [30174], "authors": [agent_pub], "#p": [owner_pub]}
        async with BuzzRelay() as relay:
            for event in events:
                await store(relay, event)
            async with ws(relay) as (client, challenge):
                await login(client, relay, challenge, owner)
                await client.send(["COUNT", "c", mine])
                counted = await client.receive(timeout=2)
                await client.send(["COUNT", "d", {"kinds": [30174]}])
                refused = await client.receive(timeout=2)
            body = json.dumps([mine]).encode()
            http = await post(relay, "/count", body, owner)
            wrong = await post(relay, "/count", json.dumps([{"kinds": [30174]}]).encode(), owner)
            return counted, refused, http[:2], wrong[:2]

    counted, refused, http, wrong = run(scenario)
    assert counted == ["COUNT", "c", {"count": 3}]
    assert refused == ["CLOSED", "d", ENGRAM_GATED]
    assert http == (200, {"count": 3})
    assert wrong == (403, {"error": ENGRAM_GATED})


def test_the_root_serves_nip11_to_a_nostr_json_request() -> None:
    """§1.1 (router.rs nip11_or_ws_handler): ``Accept: application/nostr+json`` gets NIP-11."""

    async def scenario() -> tuple[int, Any]:
        async with BuzzRelay() as relay:
            found = await fetch_nip11(relay.url)
            assert found is not None
            return found[0], json.loads(found[1])

    status, document = run(scenario)
    assert status == 200
    assert document["limitation"]["auth_required"] is True
    assert document["limitation"]["max_limit"] == PAGE_LIMIT


def test_no_production_module_imports_the_test_double() -> None:
    """The double lives in tests/support and only tests may use it (the brief's rule)."""
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for package in ("adapters", "domain", "projections"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                offenders += [f"{path}: {n}" for n in names if n.split(".")[0] == "tests"]
    assert offenders == []


# == injected faults ==========================================================================


def test_forced_http_answers_come_first_in_order_then_the_bridge_answers_again() -> None:
    """Faults: 401, 403, 429 with Retry-After, 503, a garbage body; then a normal answer."""

    async def scenario() -> list[tuple[int, Any, str | None]]:
        agent, _ = keys()
        body = engram(agent, keys()[1]).to_json().encode()
        async with BuzzRelay() as relay:
            relay.faults.http_answers.extend(
                [
                    HttpAnswer.error(401, "NIP-98: replay check unavailable"),
                    HttpAnswer.error(403, "blocked: you are banned from this community"),
                    HttpAnswer.error(429, "rate-limited: slow down", retry_after=2),
                    HttpAnswer.error(503, "rate-limited: shared admission unavailable"),
                    HttpAnswer.garbage(),
                ]
            )
            results = []
            for _ in range(6):
                status, answer, headers = await post(relay, "/events", body, agent)
                results.append((status, answer, headers.get("Retry-After")))
            return results

    results = run(scenario)
    assert [r[0] for r in results] == [401, 403, 429, 503, 200, 200]
    assert results[2][2] == "2"
    assert results[4][1] == "<html>502 Bad Gateway</html>"
    assert results[5][1]["accepted"] is True


def test_a_forced_http_answer_for_one_path_waits_for_a_request_to_it() -> None:
    """Faults: an answer meant for ``/events`` lets reads through, then meets the write."""

    async def scenario() -> list[tuple[str, int]]:
        agent, _ = keys()
        body = engram(agent, keys()[1]).to_json().encode()
        read = json.dumps([{"kinds": [30174], "authors": [agent.public_key.hex]}]).encode()
        async with BuzzRelay() as relay:
            relay.faults.http_answers.append(
                HttpAnswer.error(403, "blocked: you are banned from this community", path="/events")
            )
            for path, payload in [("/query", read), ("/events", body), ("/events", body)]:
                await post(relay, path, payload, agent)
            return relay.http_requests

    assert run(scenario) == [("/query", 200), ("/events", 403), ("/events", 200)]


def test_an_answer_delay_slows_both_transports() -> None:
    """Faults: slow answers on the websocket and on the bridge."""

    async def scenario() -> tuple[float, float]:
        agent, agent_pub = keys()
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            relay.faults.answer_delay = 0.3
            started = time.monotonic()
            await login(client, relay, challenge, agent)
            ws_took = time.monotonic() - started
            body = json.dumps([{"authors": [agent_pub], "kinds": [30174]}]).encode()
            started = time.monotonic()
            await post(relay, "/query", body, agent)
            return ws_took, time.monotonic() - started

    ws_took, http_took = run(scenario)
    assert ws_took >= 0.3
    assert http_took >= 0.3


def test_a_challenge_mid_connection_makes_the_socket_authenticate_again() -> None:
    """Faults (NIP-42 lets a relay re-challenge): the identity is forgotten until re-AUTH."""

    async def scenario() -> tuple[list[Any], list[list[Any]], list[Any], list[list[Any]]]:
        agent, agent_pub = keys()
        filter_ = {"kinds": [30174], "authors": [agent_pub]}
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            await login(client, relay, challenge, agent)
            await relay.rechallenge()
            fresh = await client.receive(timeout=2)
            refused = await req(client, filter_, sub="a")
            again = await login(client, relay, fresh[1], agent)
            served_again = await req(client, filter_, sub="b")
            return fresh, refused, again, served_again

    fresh, refused, again, served_again = run(scenario)
    assert fresh[0] == "AUTH"
    assert len(fresh[1]) == 64
    assert refused[-1] == ["CLOSED", "a", NOT_AUTHENTICATED]
    assert again[2:] == [True, ""]
    assert served_again == [["EOSE", "b"]]


def test_a_challenge_after_n_frames_arrives_before_the_next_answer() -> None:
    """Faults: ``rechallenge_after_frames`` re-challenges once, mid-conversation."""

    async def scenario() -> list[list[Any]]:
        agent, agent_pub = keys()
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            relay.faults.rechallenge_after_frames = 1
            await login(client, relay, challenge, agent)
            return await req(client, {"kinds": [30174], "authors": [agent_pub]})

    frames = run(scenario)
    assert frames[0][0] == "AUTH"
    assert frames[-1] == ["CLOSED", "s", NOT_AUTHENTICATED]


def test_a_skewed_relay_clock_makes_fresh_auth_events_look_expired() -> None:
    """Faults (expired auth): AUTH -> verification failed; NIP-98 -> 401 with the delta."""

    async def scenario() -> tuple[list[Any], tuple[int, Any]]:
        agent, _ = keys()
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            relay.faults.clock_skew = 120
            answer = await login(client, relay, challenge, agent)
            body = engram(agent, keys()[1], created_at=now() + 120).to_json().encode()
            http = await post(relay, "/events", body, agent)
            return answer, http[:2]

    answer, (status, body) = run(scenario)
    assert answer[2:] == [False, AUTH_FAILED]
    assert status == 401
    assert "event timestamp outside ±60s window (delta: 12" in body["error"]


def test_an_internal_fault_is_reported_as_buzz_does_on_each_transport() -> None:
    """§1.5 ``error: internal server error`` (WS), §2.5 ``500 internal server error``."""

    async def scenario() -> tuple[list[Any], tuple[int, Any]]:
        agent, _ = keys()
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            await login(client, relay, challenge, agent)
            relay.faults.internal_error = True
            over_ws = await publish(client, engram(agent, keys()[1]))
            over_http = await post(
                relay, "/events", engram(agent, keys()[1]).to_json().encode(), agent
            )
            return over_ws, over_http[:2]

    over_ws, over_http = run(scenario)
    assert over_ws[2:] == [False, "error: internal server error"]
    assert over_http == (500, {"error": "internal server error"})


def test_garbage_frames_arrive_before_each_real_answer() -> None:
    """Faults: junk text frames precede the relay's answer; the answer still comes."""

    async def scenario() -> list[str]:
        agent, _ = keys()
        async with BuzzRelay() as relay, ws(relay) as (client, challenge):
            relay.faults.garbage_frames = True
            await client.send(["AUTH", sdk_auth_event(agent, relay.url, challenge)])
            return [await client.ws.receive_str(timeout=2) for _ in range(6)]

    texts = run(scenario)
    assert texts[0] == "not json"
    assert json.loads(texts[-1])[2:] == [True, ""]


# == third-party client and the threaded mode =================================================


def test_rust_nostrs_client_sees_the_refusal_of_an_unauthenticated_write() -> None:
    """§1.5 against rust-nostr's Client, with the double serving from its own thread."""
    agent, _ = keys()
    event = engram(agent, keys()[1])
    with BuzzRelay().serving() as relay:
        result = sdk_publish(relay.url, event.to_json())
        stored = relay.call(lambda: asyncio.sleep(0, result=dict(relay.events)))
    assert (result.accepted, result.message) == (False, NOT_AUTHENTICATED)
    assert stored == {}


def test_the_buzz_double_fixture_serves_both_transports_from_a_thread(
    buzz_double: BuzzRelay,
) -> None:
    """tests/integration/conftest.py ``buzz_double``: sync callers reach both doors."""
    agent, _ = keys()

    async def both() -> tuple[list[Any], int]:
        async with ws(buzz_double) as (client, challenge):
            answer = await login(client, buzz_double, challenge, agent)
        body = engram(agent, keys()[1]).to_json().encode()
        status, _, _ = await post(buzz_double, "/events", body, agent)
        return answer, status

    answer, status = run(both)
    assert answer[2:] == [True, ""]
    assert status == 200


def test_engram_content_check_accepts_what_nostr_sdk_encrypts() -> None:
    """§1.5: real NIP-44 v2 ciphertext from rust-nostr passes the content check."""
    from tests.support.buzz_relay import validate_nip44_content
    from tests.support.sdk import sdk_keys, sdk_nip44_encrypt

    sec, _ = sdk_keys()
    _, peer = sdk_keys()
    for text in ("x", "a" * 1000):
        assert validate_nip44_content(sdk_nip44_encrypt(sec, peer, text)) is None


@settings(max_examples=examples(50))
@given(text=st.text())
def test_strings_copied_at_once_reach_rust_nostr_byte_for_byte(text: str) -> None:
    """``sdk_strings_copied_at_once`` (the double in its own process): the buffer
    rust-nostr gets holds exactly the string's UTF-8 bytes."""
    converter: Any = ns_bindings._UniffiFfiConverterString
    with sdk_strings_copied_at_once():
        assert converter.lift(converter.lower(text)) == text
    assert converter.lift(converter.lower(text)) == text  # and the bindings' own way after


def test_strings_copied_at_once_leave_every_check_on_an_event_as_it_was() -> None:
    """With the one-copy strings, rust-nostr still verifies a good event and refuses a
    forged one (its id and signature are checked over the very bytes received)."""
    agent, _ = keys()
    good = engram(agent, keys()[1]).to_dict()
    forged = {**good, "created_at": good["created_at"] + 1}
    with sdk_strings_copied_at_once():
        parsed, sdk_event = parse_event(good)
        assert parsed == good
        assert sdk_event.verify()
        _, sdk_forged = parse_event(forged)
        assert not sdk_forged.verify_id()


_AUTHORS = [f"{n:064x}" for n in (1, 2, 3)]
_AUTHOR_LISTS = st.lists(st.sampled_from([*_AUTHORS, "f" * 64]), min_size=1, max_size=4)
_MORE = {
    "kinds": st.lists(st.sampled_from([1, KIND_ENGRAM, KIND_PERSONA]), max_size=2),
    "limit": st.integers(0, 8),
}


def _scan(relay: BuzzRelay, filters: list[dict[str, Any]], reader: str) -> list[dict[str, Any]]:
    """A REQ's answer as a scan of every row, newest first, without any index."""
    ordered = sorted(relay.events.values(), key=lambda e: (-e["created_at"], e["id"]))
    seen: set[str] = set()
    found = []
    for filter_ in filters:
        limit = min(int(filter_.get("limit", PAGE_LIMIT)), PAGE_LIMIT)
        matched = [e for e in ordered if filter_matches(filter_, e) and readable_by(e, reader)]
        for event in matched[:limit]:
            if event["id"] not in seen:
                seen.add(event["id"])
                found.append(event)
    return found


@settings(max_examples=examples(100))
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(_AUTHORS),
            st.sampled_from([1, KIND_ENGRAM, KIND_PERSONA]),
            st.integers(0, 4),
            st.sampled_from(["a", "b"]),
            st.booleans(),
        ),
        max_size=25,
    ),
    filters=st.lists(
        st.one_of(
            st.fixed_dictionaries({"authors": _AUTHOR_LISTS}, optional=_MORE),
            st.fixed_dictionaries(
                {"ids": st.lists(st.integers(0, 30), min_size=1, max_size=4)},
                optional={"authors": _AUTHOR_LISTS, **_MORE},
            ),
            st.fixed_dictionaries({}, optional=_MORE),
        ),
        min_size=1,
        max_size=3,
    ),
    reader=st.sampled_from(_AUTHORS),
)
def test_a_filter_naming_ids_or_authors_gets_what_a_scan_of_every_row_gets(
    rows: list[tuple[str, int, int, str, bool]],
    filters: list[dict[str, Any]],
    reader: str,
) -> None:
    """The double looks up the rows of named ids or authors (as buzz's database would):
    the answer is the one a scan of every row gives, limits and read gates included."""
    relay = BuzzRelay()
    ids = []
    for n, (author, kind, created_at, d, shared) in enumerate(rows):
        tags = [["d", d], ["shared", "true"]] if shared else [["d", d]]
        event_id = hashlib.sha256(f"{n}".encode()).hexdigest()
        ids.append(event_id)
        event = {"id": event_id, "pubkey": author, "kind": kind, "created_at": created_at}
        relay._store({**event, "tags": tags, "content": "", "sig": "0" * 128})
    asked = []
    for filter_ in filters:
        asked_for = dict(filter_)
        if "ids" in filter_:
            asked_for["ids"] = [ids[i] if i < len(ids) else "e" * 64 for i in filter_["ids"]]
        asked.append(asked_for)
    assert relay.query(asked, reader) == _scan(relay, asked, reader)

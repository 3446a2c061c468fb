"""A test double of the buzz relay: its websocket relay and its HTTP bridge on one loopback port.

buzz (block/buzz) is Rust and cannot be built here, so this double re-implements the
rules fleetsync must meet, as ``../shared/reference/buzz-interop.md`` records them
and as buzz's source at B (block/buzz ``040b203f``, read from the ``yjc801/buzz``
snapshot) and the later L files confirm. Every rule below cites its reference
section; the code cites the buzz source path it mirrors. Events are parsed and
their id and signature checked with rust-nostr (the ``nostr-sdk`` package), the
same Nostr library buzz is built on, never with fleetsync's own code, so a
fleetsync bug cannot hide behind a double that shares it.

Rules (reference section in brackets):

Websocket, NIP-42 [§1.1-§1.4]
- The first frame on every socket is ``["AUTH", <64 lowercase hex>]``, sent before
  anything is read; the challenge lives as long as the connection [§1.1].
- The socket is bound to a community by its ``Host`` header (normalised: trimmed,
  lowercased, ``:80``/``:443`` and one trailing dot stripped); an unmapped host gets
  HTTP 404 ``relay: no community is configured for this host`` [§1.1, §2.5].
- An AUTH event must be kind 22242 with a valid id and signature, the issued
  ``challenge``, a ``relay`` tag equal to ``{ws|wss}://{host}`` after URL
  normalisation (``localhost`` aliased to ``127.0.0.1``, trailing ``/`` dropped), or
  to the configured pairing URL (L), and ``created_at`` within 60 s of the relay
  clock; otherwise ``OK false "auth-required: verification failed"`` and the
  connection is ``Failed`` [§1.2, §1.3].
- One identity per connection: a second AUTH answers ``auth-required: already
  authenticated``, an AUTH after a failure ``auth-required: authentication already
  failed`` [§1.1].
- Answers after a valid signature, in order: ban (the pubkey or its NIP-OA owner) ->
  ``blocked: you are banned from this community`` and the socket closes; allowlist
  -> ``auth-required: verification failed``; closed relay without membership ->
  ``restricted: not a relay member``; else ``OK true ""`` [§1.3].
- An unauthenticated socket is closed after 5 s (``AUTH_TIMEOUT``, connection.rs).
- REQ before AUTH: ``NOTICE "auth-required: authenticate before subscribing"`` then
  ``CLOSED <sub> "auth-required: not authenticated"`` [§1.4].
- REQ gates, in buzz's order, every filter must pass: p-gated kinds need
  ``#p=[self]``; filters that can match kind 30174 need ``authors=[self]``
  (case-insensitive) or ``#p=[self]`` (byte-exact), ``ids`` exempt; author-only kinds
  need ``authors=[self]``. Refusals are ``CLOSED`` with the exact ``restricted:``
  texts [§1.4]. Filters with ``#h`` channel ids get ``restricted: not a channel
  member`` (the double has no channels).
- At most 10 filters per REQ, 1,024 subscriptions per socket, and at most 1,000
  events per filter (buzz's ``DEFAULT_MAX_PAGE_LIMIT``, also the default when a filter
  has no ``limit``). Results are newest first.

Writes, shared by both transports [§1.5]
- EVENT before AUTH: ``OK false "auth-required: not authenticated"``.
- The event's author must be the authenticated identity: ``invalid: event pubkey
  does not match authenticated identity`` (HTTP 403).
- ``created_at`` within 900 s of the relay clock, content at most 262,144 bytes,
  known kinds only (5, 30174, 30175, 30176), the kind:30174 envelope (one lowercase
  hex ``d``, one lowercase hex ``p``, NIP-44 v2 looking content) and the kind:30175
  envelope, each with buzz's exact ``invalid:``/``restricted:`` text.
- Addressable kinds keep one head per (kind, author, d): an incoming event that is
  older than the head, or as old with an id not below the head's, is *dominated*: not
  stored, answered ``accepted: true`` with message ``duplicate:``. So only a read-back
  proves a write. An exact repeat gets the same answer [§1.5].
- kind:5 needs exactly one ``e`` or ``a`` target; an ``a`` target soft-deletes the
  rows at that coordinate not newer than the deletion [§7].
- Another author's kind:30175 without ``["shared","true"]`` is silently left out of
  reads [§7].

NIP-OA membership [§3, specs/NIP-OA.md]
- On a relay with ``require_relay_membership`` and ``allow_nip_oa_auth``, an agent
  that is not a member is admitted when its owner is a member and the agent presents
  the owner's attestation: the one ``auth`` tag of its NIP-42 event (two or more
  ``auth`` tags count as none), or the ``x-auth-tag`` header on HTTP (a repeated
  header counts as none, L) [§1.2, §2.4, §3].
- The attestation is verified as the NIP-OA spec says: exactly four strings, first
  ``auth``, 64 lowercase hex owner key, the conditions grammar (canonical decimals,
  no empty clause, no whitespace), owner != agent, 128 lowercase hex BIP-340
  signature over SHA-256 of ``nostr:agent-auth:<agent>:<conditions>``.
  ``created_at<``/``created_at>`` clauses are evaluated strictly against the
  ``created_at`` of the AUTH or NIP-98 event that carried the tag (L); ``kind=``
  clauses are not evaluated at admission, as buzz does not [§3].

HTTP bridge [§2]
- ``POST /events`` (one event), ``POST /query`` (a JSON array of filters) and
  ``POST /count``; bodies over 1 MiB are refused (413) [§2.1].
- ``Authorization: Nostr <base64 event>``: the prefix is case-sensitive; then kind
  27235, valid id and signature, ``created_at`` within 60 s, ``u`` equal to
  ``{http|https}://{host}{path}`` after URL normalisation (no loopback aliasing),
  ``method`` equal to POST (case-insensitive), ``payload`` (optional) equal to the
  SHA-256 of the exact body. Every failure is 401 with buzz's text [§2.2, §2.5].
- Each auth event id is accepted once: ``401 NIP-98: replay detected`` [§2.2].
- Check order: host, NIP-98, admission quota (429 ``rate-limited: quota exceeded;
  retry in Ns``, without a ``Retry-After`` header, as buzz sends it), replay, body,
  membership (403 ``relay_membership_required``), ingest [§2.5].
- ``/events`` answers ``200 {"event_id","accepted","message"}``; an ingest refusal
  is 400 (``invalid:``/``restricted:``) or 403 (identity), an internal fault 500
  ``internal server error``; all error bodies are ``{"error": <text>}`` [§2.1, §2.5].
- ``/query`` answers ``200 [<event>, ...]`` through the same read gates, refusals
  being 403 with the bridge's texts [§2.5].
- ``X-Pubkey`` dev-mode identity only when ``require_auth_token`` is false [§2.2].

Faults a test can inject (:class:`Faults`): a fresh challenge in the middle of a
connection (the identity is forgotten), no challenge at connect (only just
before a socket's first ``auth-required:`` answer), a skewed relay clock (every auth event
looks expired), HTTP answers replaced by 401/403/429 (with ``Retry-After``)/5xx,
slow answers on both transports, garbage bodies and frames, internal errors, and
sockets cut after an authenticated EVENT arrives and before its ``OK``.

What tests count: ``auth_log`` (every AUTH decided), ``auth_refusals`` (every EVENT
refused because its socket had not authenticated as its author),
``connections_opened`` and ``most_open``, ``cut_events``, ``http_requests``.

Not modelled: channels, ephemeral kinds, NIP-50 search, buzz's extension filter
keys (``before_id``, ``feed_types``...), websocket admission quotas.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ctypes
import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import nostr_sdk as ns
import nostr_sdk.nostr_sdk as ns_bindings
from aiohttp import WSMsgType, web
from coincurve import PublicKeyXOnly

from adapters.nostr.keys import SecretKey

LOOPBACK = "127.0.0.1"
T = TypeVar("T")
Json = dict[str, Any]

# -- buzz's constants ------------------------------------------------------------------

KIND_DELETION = 5
KIND_AUTH = 22242  # buzz-core/src/kind.rs KIND_AUTH
KIND_HTTP_AUTH = 27235  # buzz-core/src/kind.rs KIND_HTTP_AUTH
KIND_ENGRAM = 30174  # buzz-core/src/kind.rs KIND_AGENT_ENGRAM
KIND_PERSONA = 30175  # buzz-core/src/kind.rs KIND_PERSONA
KIND_TEAM = 30176  # buzz-core/src/kind.rs KIND_TEAM
# The kinds fleetsync writes; buzz knows many more (ingest.rs:440-545
# required_scope_for_kind), every other one is "restricted: unknown event kind" here.
KNOWN_KINDS = frozenset({KIND_DELETION, KIND_ENGRAM, KIND_PERSONA, KIND_TEAM})
# buzz-core/src/kind.rs P_GATED_KINDS: observer frames, member notifications, gift
# wraps, DM visibility, turn metrics.
P_GATED_KINDS = frozenset({24200, 44100, 44101, 1059, 30622, 44200})
# buzz-core/src/kind.rs AUTHOR_ONLY_KINDS: reminders, push leases, private agents.
AUTHOR_ONLY_KINDS = frozenset({30300, 30350, 30179})
# buzz-core/src/kind.rs SHARED_GATED_KINDS: personas and team catalogs.
SHARED_GATED_KINDS = frozenset({KIND_PERSONA, 30178})
# buzz-core/src/kind.rs: KIND_DM_VISIBILITY and KIND_AGENT_TURN_METRIC lose the ids
# exemption of the p-gate (req.rs p_gated_filters_authorized).
NO_IDS_EXEMPTION_KINDS = frozenset({30622, 44200})

AUTH_WINDOW_SECS = 60  # buzz-auth/src/nip42.rs:35 and nip98.rs TIMESTAMP_TOLERANCE_SECS
EVENT_WINDOW_SECS = 900  # handlers/ingest.rs:2224 MAX_TIMESTAMP_DRIFT_SECS
MAX_CONTENT_BYTES = 256 * 1024  # handlers/ingest.rs:2233 MAX_EVENT_CONTENT_BYTES
MAX_FILTERS_PER_REQ = 10  # buzz-relay/src/protocol.rs MAX_FILTERS_PER_REQ
MAX_SUB_ID_LENGTH = 256  # buzz-relay/src/protocol.rs MAX_SUB_ID_LENGTH
MAX_SUBSCRIPTIONS = 1024  # handlers/req.rs MAX_SUBSCRIPTIONS
MAX_EXPLICIT_CHANNELS = 128  # handlers/req.rs MAX_EXPLICIT_CHANNEL_VALUES
PAGE_LIMIT = 1000  # buzz-db/src/event.rs DEFAULT_MAX_PAGE_LIMIT
REPLAY_TTL_SECS = 120  # buzz-auth/src/nip98_replay.rs:45 DEFAULT_REPLAY_TTL_SECS
AUTH_TIMEOUT_SECS = 5.0  # buzz-relay/src/connection.rs:29 AUTH_TIMEOUT
BODY_LIMIT_BYTES = 1024 * 1024  # buzz-relay/src/router.rs:139 RequestBodyLimitLayer
ENGRAM_MIN_DECODED = 99  # handlers/ingest.rs validate_engram_nip44_content

# -- buzz's texts ----------------------------------------------------------------------

# handlers/auth.rs:45-66, 72-296
AUTH_ALREADY = "auth-required: already authenticated"
AUTH_ALREADY_FAILED = "auth-required: authentication already failed"
AUTH_FAILED = "auth-required: verification failed"
AUTH_BANNED = "blocked: you are banned from this community"
AUTH_NOT_MEMBER = "restricted: not a relay member"
# handlers/req.rs:84-91, handlers/event.rs:644-651, handlers/count.rs
REQ_AUTH_NOTICE = "auth-required: authenticate before subscribing"
NOT_AUTHENTICATED = "auth-required: not authenticated"
# handlers/req.rs (WS texts) and api/bridge.rs:991-1009 (HTTP texts)
WS_P_GATED = "restricted: p-gated events require #p matching your pubkey"
HTTP_P_GATED = "restricted: p-gated kinds require #p tag matching your pubkey"
ENGRAM_GATED = "restricted: agent-engram reads require authors=[self] or #p=[self]"
AUTHOR_ONLY = "restricted: author-only kinds require authors=[self]"
NOT_CHANNEL_MEMBER = "restricted: not a channel member"
TOO_MANY_CHANNELS = "restricted: too many explicit channels"
TOO_MANY_SUBS = "error: too many subscriptions"
# handlers/ingest.rs and handlers/event.rs
PUBKEY_MISMATCH = "invalid: event pubkey does not match authenticated identity"
WS_AUTH_EVENT = "invalid: AUTH events cannot be submitted via EVENT"
INGEST_AUTH_EVENT = "invalid: AUTH events cannot be submitted"
TOO_FAR = "invalid: event timestamp too far from server time"
UNKNOWN_KIND = "restricted: unknown event kind"
WS_INTERNAL = "error: internal server error"
DUPLICATE = "duplicate:"
# api/mod.rs and api/bridge.rs
NO_COMMUNITY = "relay: no community is configured for this host"
HTTP_INTERNAL = "internal server error"
MEMBERSHIP_REQUIRED: Json = {
    "error": "relay_membership_required",
    "message": "You must be a relay member to access this relay",
}

_LOWER_HEX = re.compile("[0-9a-f]*")
_BASE64_BODY = re.compile("[A-Za-z0-9+/]*")


# -- pure rules (each checked by tests/integration/test_buzz_double.py) ----------------


def normalize_host(raw: str) -> str:
    """The community key of a ``Host`` header (buzz-core/src/tenant.rs:121 normalize_host)."""
    host = raw.strip().lower()
    for default_port in (":443", ":80"):
        if host.endswith(default_port):
            host = host[: -len(default_port)]
            break
    return host.removesuffix(".")


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _url_crate_form(raw: str, *, alias_loopback: bool) -> str | None:
    """``Url::parse(raw)`` then buzz's path trim, as a string; None when it does not parse.

    Mirrors what the ``url`` crate does to the URLs a client sends: lowercase scheme
    and host, default port dropped, and buzz's ``trim_end_matches('/')`` on the path
    (an empty path prints as ``/`` for these schemes, so both sides agree).
    """
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname
    host_str = f"[{host}]" if ":" in host else host
    # buzz-auth/src/nip42.rs:19-33 compares host_str() with "localhost" and "::1";
    # host_str() brackets IPv6, so in buzz only "localhost" is ever aliased.
    if alias_loopback and host_str in ("localhost", "::1"):
        host_str = "127.0.0.1"
    netloc = host_str if port is None or port == _DEFAULT_PORTS[scheme] else f"{host_str}:{port}"
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    path = parts.path.rstrip("/") or "/"
    query = f"?{parts.query}" if parts.query else ""
    fragment = f"#{parts.fragment}" if parts.fragment else ""
    return f"{scheme}://{netloc}{path}{query}{fragment}"


def nip42_relay_url_matches(tag: str, expected: str) -> bool:
    """buzz-auth/src/nip42.rs normalize_relay_url on both sides (unparseable: compared raw)."""

    def norm(raw: str) -> str:
        form = _url_crate_form(raw, alias_loopback=True)
        return raw if form is None else form

    return norm(tag) == norm(expected)


def nip98_url_matches(tag: str, expected: str) -> bool:
    """buzz-auth/src/nip98.rs normalize_url on both sides (unparseable: lowercased)."""

    def norm(raw: str) -> str:
        form = _url_crate_form(raw, alias_loopback=False)
        return raw.lower() if form is None else form

    return norm(tag) == norm(expected)


def _first_tag_value(tags: Iterable[list[str]], name: str) -> str | None:
    """rust-nostr's ``tags.find(kind).and_then(content)``: the first such tag's value."""
    for tag in tags:
        if tag and tag[0] == name:
            return tag[1] if len(tag) >= 2 else None
    return None


class OaInvalid(ValueError):
    """A NIP-OA ``auth`` tag that does not verify; the message says why."""


_CLAUSE = re.compile(r"(kind=|created_at<|created_at>)(0|[1-9][0-9]*)")
_CLAUSE_MAX = {"kind=": 65535, "created_at<": 4294967295, "created_at>": 4294967295}


def validate_conditions(conditions: str) -> None:
    """The NIP-OA conditions grammar (specs/NIP-OA.md; nip_oa.rs validate_conditions)."""
    if conditions == "":
        return
    if not conditions.isascii() or any(ch.isspace() for ch in conditions):
        raise OaInvalid("conditions must be ASCII without whitespace")
    for clause in conditions.split("&"):
        if clause == "":
            raise OaInvalid("empty clause in conditions (leading/trailing/double '&')")
        match = _CLAUSE.fullmatch(clause)
        if match is None:
            raise OaInvalid(f"unsupported or malformed clause: {clause!r}")
        if int(match.group(2)) > _CLAUSE_MAX[match.group(1)]:
            raise OaInvalid(f"clause value out of range: {clause!r}")


def oa_preimage_digest(agent_pubkey: str, conditions: str) -> bytes:
    """SHA-256 of ``nostr:agent-auth:<agent>:<conditions>`` (specs/NIP-OA.md)."""
    return hashlib.sha256(f"nostr:agent-auth:{agent_pubkey}:{conditions}".encode()).digest()


def verify_oa_tag(tag_json: str, agent_pubkey: str, presented_at: int | None = None) -> str:
    """The owner's pubkey if ``tag_json`` is a valid attestation of ``agent_pubkey``.

    Structure and signature exactly as specs/NIP-OA.md requires (lowercase hex
    included, which buzz's parser does not insist on at B); time clauses evaluated
    strictly against ``presented_at`` as L's ``verify_auth_tag_at`` does; ``kind=``
    not evaluated, as buzz does not at admission (reference §3).
    """
    try:
        tag = json.loads(tag_json)
    except (json.JSONDecodeError, TypeError) as exc:
        raise OaInvalid(f"invalid JSON: {exc}") from exc
    if not isinstance(tag, list) or len(tag) != 4:
        raise OaInvalid("auth tag must be a JSON array of 4 elements")
    if not all(isinstance(part, str) for part in tag) or tag[0] != "auth":
        raise OaInvalid('auth tag must be 4 strings starting with "auth"')
    owner, conditions, sig = str(tag[1]), str(tag[2]), str(tag[3])
    if len(owner) != 64 or _LOWER_HEX.fullmatch(owner) is None:
        raise OaInvalid("owner pubkey must be 64 lowercase hex characters")
    validate_conditions(conditions)
    if owner == agent_pubkey.lower():
        raise OaInvalid("owner and agent pubkeys must differ (self-attestation rejected)")
    if len(sig) != 128 or _LOWER_HEX.fullmatch(sig) is None:
        raise OaInvalid("signature must be 128 lowercase hex characters")
    try:
        owner_key = ns.PublicKey.parse(owner)
    except ns.NostrSdkError as exc:
        raise OaInvalid(f"invalid owner pubkey: {exc}") from exc
    if not _schnorr_ok(owner_key, oa_preimage_digest(agent_pubkey.lower(), conditions), sig):
        raise OaInvalid("signature verification failed")
    if presented_at is not None:
        for clause in conditions.split("&") if conditions else []:
            if clause.startswith("created_at<") and not presented_at < int(clause[11:]):
                raise OaInvalid(
                    f"auth tag time bound not satisfied: {presented_at} >= {clause[11:]}"
                )
            if clause.startswith("created_at>") and not presented_at > int(clause[11:]):
                raise OaInvalid(
                    f"auth tag time bound not satisfied: {presented_at} <= {clause[11:]}"
                )
    return owner


def _schnorr_ok(public: ns.PublicKey, digest: bytes, sig_hex: str) -> bool:
    # rust-nostr's Python bindings verify signatures over events only; coincurve
    # (libsecp256k1, which rust-nostr wraps too) checks this bare 32-byte digest.
    try:
        return bool(
            PublicKeyXOnly(bytes.fromhex(public.to_hex())).verify(bytes.fromhex(sig_hex), digest)
        )
    except ValueError:
        return False


def auth_tag_of(event: Json) -> str | None:
    """handlers/auth.rs:26-36 extract_auth_tag_json: the one ``auth`` tag as compact JSON."""
    found = [tag for tag in event.get("tags", []) if tag and tag[0] == "auth"]
    if len(found) != 1:
        return None
    return json.dumps(found[0], separators=(",", ":"), ensure_ascii=False)


def _authors_all_self(filter_: Json, me: str) -> bool:
    authors = filter_.get("authors") or []
    return bool(authors) and all(str(a).lower() == me.lower() for a in authors)


def _p_all_self(filter_: Json, me: str) -> bool:
    values = filter_.get("#p") or []
    return bool(values) and all(value == me for value in values)


def p_gated_filters_authorized(filters: Iterable[Json], me: str) -> bool:
    """handlers/req.rs p_gated_filters_authorized."""
    for filter_ in filters:
        kinds = filter_.get("kinds")
        if kinds is not None and not any(k in P_GATED_KINDS for k in kinds):
            continue
        no_ids_exemption = kinds is not None and any(k in NO_IDS_EXEMPTION_KINDS for k in kinds)
        if not no_ids_exemption and filter_.get("ids"):
            continue
        if not _p_all_self(filter_, me):
            return False
    return True


def engram_filters_authorized(filters: Iterable[Json], me: str) -> bool:
    """handlers/req.rs:1239-1268 engram_filters_authorized (reference §1.4)."""
    for filter_ in filters:
        if filter_.get("ids"):
            continue
        kinds = filter_.get("kinds")
        if kinds is not None and KIND_ENGRAM not in kinds:
            continue
        if _authors_all_self(filter_, me) or _p_all_self(filter_, me):
            continue
        return False
    return True


def author_only_filters_authorized(filters: Iterable[Json], me: str) -> bool:
    """handlers/req.rs:1395 author_only_filters_authorized."""
    for filter_ in filters:
        kinds = filter_.get("kinds") or []
        only_author_only = bool(kinds) and all(k in AUTHOR_ONLY_KINDS for k in kinds)
        if only_author_only and not _authors_all_self(filter_, me):
            return False
    return True


def _channel_values(filters: Iterable[Json]) -> list[str]:
    values: list[str] = []
    for filter_ in filters:
        for value in filter_.get("#h", []):
            with suppress(ValueError):
                uuid.UUID(str(value))
                values.append(str(value))
    return values


def validate_nip44_content(content: str) -> str | None:
    """handlers/ingest.rs:1817-1870 validate_engram_nip44_content: the refusal, or None."""
    if content == "":
        return "agent-engram content must not be empty (NIP-44 ciphertext)"
    if len(content) % 4 != 0:
        return "agent-engram content is not valid base64 (length)"
    pads = len(content) - len(content.rstrip("="))
    body = content[: len(content) - pads]
    if pads > 2 or _BASE64_BODY.fullmatch(body) is None:
        return "agent-engram content is not valid base64"
    if len(content) // 4 * 3 - pads < ENGRAM_MIN_DECODED:
        return "agent-engram content too short for NIP-44 v2"
    if base64.b64decode(content[:4])[0] != 0x02:
        return "agent-engram content is not NIP-44 v2 (expected 0x02 version prefix)"
    return None


def validate_engram_envelope(event: Json) -> str | None:
    """handlers/ingest.rs:1341-1395 validate_engram_envelope (without the ``invalid: ``)."""
    d_tags = [t[1] for t in event["tags"] if len(t) >= 2 and t[0] == "d"]
    p_tags = [t[1] for t in event["tags"] if len(t) >= 2 and t[0] == "p"]
    if len(d_tags) != 1:
        return f"agent-engram event must have exactly one `d` tag (got {len(d_tags)})"
    if len(p_tags) != 1:
        return f"agent-engram event must have exactly one `p` tag (got {len(p_tags)})"
    if len(d_tags[0]) != 64 or _LOWER_HEX.fullmatch(d_tags[0]) is None:
        return "agent-engram `d` tag must be 64 lowercase hex chars"
    if len(p_tags[0]) != 64 or _LOWER_HEX.fullmatch(p_tags[0]) is None:
        return "agent-engram `p` tag must be 64 lowercase hex chars (pubkey)"
    return validate_nip44_content(event["content"])


def _rust_debug(parts: list[str]) -> str:
    return "[" + ", ".join(json.dumps(p, ensure_ascii=False) for p in parts) + "]"


def validate_persona_envelope(event: Json) -> str | None:
    """handlers/ingest.rs:1408-1509 validate_persona_envelope (without the ``invalid: ``)."""
    label = "persona event"
    shared = 0
    for tag in event["tags"]:
        if tag and tag[0] == "shared":
            if tag != ["shared", "true"]:
                got = _rust_debug(tag)
                return f'{label} `shared` tag must be exactly ["shared","true"] (got {got})'
            shared += 1
    if shared > 1:
        return f"{label} must have at most one `shared` tag (got {shared})"
    d_tags = [tag[1] if len(tag) >= 2 else "" for tag in event["tags"] if tag and tag[0] == "d"]
    if len(d_tags) != 1:
        return f"{label} must have exactly one `d` tag (got {len(d_tags)})"
    d = d_tags[0]
    if d == "":
        return f"{label} `d` tag must not be empty"
    if len(d) > 64:
        return f"{label} `d` tag too long ({len(d)} chars, max 64)"
    if any(ch.isspace() or not ch.isprintable() for ch in d):
        return f"{label} `d` tag must not contain control characters or whitespace"
    if not (d[0].isascii() and (d[0].islower() or d[0].isdigit())):
        return f"{label} `d` tag must start with a lowercase letter or digit"
    if re.fullmatch("[a-z0-9_-]*", d[1:]) is None:
        return f"{label} `d` tag must match [a-z0-9_-] after the first character"
    return None


def _is_addressable(kind: int) -> bool:
    return 30000 <= kind < 40000


def _d_of(event: Json) -> str:
    return _first_tag_value(event["tags"], "d") or ""


def dominated(incoming: Json, head: Json) -> bool:
    """buzz-db/src/lib.rs replace_parameterized_event: older, or as old with an id not below."""
    return bool(incoming["created_at"] < head["created_at"]) or (
        incoming["created_at"] == head["created_at"] and incoming["id"] >= head["id"]
    )


def filter_matches(filter_: Json, event: Json) -> bool:
    """NIP-01 matching of one parsed filter against one event."""
    if "ids" in filter_ and event["id"] not in filter_["ids"]:
        return False
    if "authors" in filter_ and event["pubkey"] not in filter_["authors"]:
        return False
    if "kinds" in filter_ and event["kind"] not in filter_["kinds"]:
        return False
    if "since" in filter_ and event["created_at"] < filter_["since"]:
        return False
    if "until" in filter_ and event["created_at"] > filter_["until"]:
        return False
    for key, wanted in filter_.items():
        if len(key) == 2 and key[0] == "#":
            values = {t[1] for t in event["tags"] if len(t) >= 2 and t[0] == key[1]}
            if not values.intersection(wanted):
                return False
    return True


def _newest_first(event: Json) -> tuple[int, str]:
    return (-event["created_at"], event["id"])


def readable_by(event: Json, reader: str) -> bool:
    """Per-event read gates: buzz-core/src/kind.rs is_unshared_gated_event, author-only kinds."""
    if event["pubkey"] == reader:
        return True
    if event["kind"] in AUTHOR_ONLY_KINDS:
        return False
    if event["kind"] in SHARED_GATED_KINDS:
        shared = [t for t in event["tags"] if len(t) == 2 and t[0] == "shared"]
        return shared == [["shared", "true"]]
    return True


class EventRefused(Exception):
    """ingest.rs IngestError: ``Rejected`` (400), ``AuthFailed`` (403) or ``Internal`` (500)."""

    def __init__(self, kind: Literal["rejected", "auth", "internal"], message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class ParseError(ValueError):
    """What serde (through rust-nostr) says about JSON that is not an event or a filter."""


def parse_event(obj: Any) -> tuple[Json, ns.Event]:
    """An event as buzz's serde sees it: rust-nostr's own parse, re-serialized by rust-nostr."""
    try:
        event = ns.Event.from_json(json.dumps(obj, ensure_ascii=False))
    except (ns.NostrSdkError, TypeError, ValueError) as exc:
        raise ParseError(str(exc)) from exc
    as_dict: Json = json.loads(event.as_json())
    return as_dict, event


def parse_filter(obj: Any) -> Json:
    """A filter as ``nostr::Filter`` deserializes it (unknown keys dropped, authors lowercased)."""
    try:
        parsed: Json = json.loads(ns.Filter.from_json(json.dumps(obj)).as_json())
    except (ns.NostrSdkError, TypeError, ValueError) as exc:
        raise ParseError(str(exc)) from exc
    return parsed


def event_id_problem(event: Json, sdk_event: ns.Event) -> str | None:
    """buzz-core/src/verification.rs verify_event as buzz words it, or None."""
    if not sdk_event.verify_id():
        computed = hashlib.sha256(
            json.dumps(
                [
                    0,
                    event["pubkey"],
                    event["created_at"],
                    event["kind"],
                    event["tags"],
                    event["content"],
                ],
                separators=(",", ":"),
                ensure_ascii=False,
            ).encode()
        ).hexdigest()
        return f"invalid event id: computed {computed}, got {event['id']}"
    if not sdk_event.verify_signature():
        return "invalid schnorr signature"
    return None


@contextmanager
def sdk_strings_copied_at_once() -> Iterator[None]:
    """While inside, nostr-sdk's Python bindings copy a string into Rust in one move.

    The generated uniffi bindings copy every string handed to rust-nostr (the JSON of
    each event the double parses) one byte at a time, in Python: for an engram that
    is most of the double's CPU time on the HTTP bridge (``scripts/bench apply
    --transport http`` shows the double's CPU time per engram). This copies the same
    bytes into the same buffer with one ``memmove``; rust-nostr receives exactly what
    it did before, so every check it makes for the double is unchanged. Process-wide
    while active: ``run_buzz_relay.py`` (the double in a process of its own) uses it.
    """
    builder = ns_bindings._UniffiRustBufferBuilder
    original = builder.write

    def write(self: Any, value: bytes) -> None:
        with self._reserve(len(value)):
            if value:
                start = ctypes.cast(self.rbuf.data, ctypes.c_void_p).value
                assert start is not None, "uniffi reserved no buffer"
                ctypes.memmove(start + self.rbuf.len, value, len(value))

    builder.write = write  # type: ignore[method-assign]
    try:
        yield
    finally:
        builder.write = original  # type: ignore[method-assign]


# -- faults -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpAnswer:
    """One HTTP answer a test forces in place of the bridge's own."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"
    path: str | None = None  # only a request to this path gets it (None: any)

    @classmethod
    def error(
        cls, status: int, message: str, *, retry_after: int | None = None, path: str | None = None
    ) -> HttpAnswer:
        headers = (("Retry-After", str(retry_after)),) if retry_after is not None else ()
        return cls(status, json.dumps({"error": message}).encode(), headers, path=path)

    @classmethod
    def garbage(
        cls, status: int = 200, body: bytes = b"<html>502 Bad Gateway</html>"
    ) -> HttpAnswer:
        return cls(status, body, content_type="text/html")


@dataclass
class Faults:
    """What a test makes the double do wrong. Change fields at any time."""

    clock_skew: float = 0.0  # seconds added to the relay clock: auth events look expired
    answer_delay: float = 0.0  # seconds before every answer, both transports
    rechallenge_after_frames: int | None = None  # per socket: one new challenge after N frames
    garbage_frames: bool = False  # junk text frames before every websocket answer
    internal_error: bool = False  # every ingest fails inside: ``error: internal ...``
    # The next N EVENTs on an authenticated socket are met by cutting that socket
    # (no close frame, no OK): a relay restarting, a proxy timing out mid-write.
    cut_before_ok: int = 0
    # False: no challenge at connect; a socket gets it just before its first
    # auth-required answer, as relays that challenge only on demand do (buzz never).
    challenge_at_connect: bool = True
    # Forced, in order; an answer naming a path waits for a request to that path.
    http_answers: deque[HttpAnswer] = field(default_factory=deque)


# -- the relay ----------------------------------------------------------------------------


class _Conn:
    """One websocket: its challenge, its one identity, its subscriptions."""

    def __init__(
        self,
        number: int,
        ws: web.WebSocketResponse,
        host: str,
        transport: asyncio.Transport | None = None,
    ) -> None:
        self.number = number
        self.ws = ws
        self.transport = transport
        self.host = host
        self.challenge = secrets.token_hex(32)  # buzz-auth/src/nip42.rs:38 generate_challenge
        self.state: Literal["pending", "authenticated", "failed"] = "pending"
        self.pubkey: str | None = None
        self.subs: dict[str, list[Json]] = {}
        self.frames = 0
        self.challenged = False  # its challenge was sent

    async def send(self, frame: list[Any]) -> None:
        if not self.ws.closed:
            await self.ws.send_str(json.dumps(frame, separators=(",", ":"), ensure_ascii=False))


@dataclass(frozen=True)
class AuthRecord:
    """One authentication the relay decided: transport, who, and its answer."""

    transport: Literal["ws", "http"]
    pubkey: str
    accepted: bool
    message: str


class BuzzRelay:
    """The double. ``async with BuzzRelay() as relay`` or ``with BuzzRelay().serving() as relay``.

    ``relay.url`` is the websocket URL and ``relay.http_url`` the bridge's base URL
    (buzz serves both on one port). Settings mirror buzz's switches (reference §1.7):
    ``relay_url_scheme`` stands for ``RELAY_URL``'s scheme, ``require_relay_membership``,
    ``allow_nip_oa_auth``, ``pubkey_allowlist`` and ``require_auth_token`` for the
    ``BUZZ_*`` variables. ``members`` and ``banned`` are the relay's tables; change them
    at any time. ``require_auth_token`` defaults to True (buzz's default is the dev
    mode, which production turns off and fleetsync never relies on).
    """

    def __init__(
        self,
        *,
        relay_url_scheme: Literal["ws", "wss"] = "ws",
        require_relay_membership: bool = False,
        allow_nip_oa_auth: bool = False,
        pubkey_allowlist: Iterable[str] | None = None,
        require_auth_token: bool = True,
        members: Iterable[str] = (),
        banned: Iterable[str] = (),
        extra_hosts: Iterable[str] = (),
        pairing_relay_url: str | None = None,
        auth_timeout: float = AUTH_TIMEOUT_SECS,
        api_calls_per_min: int | None = None,
    ) -> None:
        self.relay_url_scheme = relay_url_scheme
        self.require_relay_membership = require_relay_membership
        self.allow_nip_oa_auth = allow_nip_oa_auth
        self.pubkey_allowlist = None if pubkey_allowlist is None else set(pubkey_allowlist)
        self.require_auth_token = require_auth_token
        self.members = set(members)
        self.banned = set(banned)
        self.pairing_relay_url = pairing_relay_url
        self.auth_timeout = auth_timeout
        self.api_calls_per_min = api_calls_per_min
        self.faults = Faults()
        self._extra_hosts = [normalize_host(h) for h in extra_hosts]
        self.hosts: set[str] = set()
        # Live rows (soft-deleted and superseded rows are dropped) and addressable heads;
        # tests read ``events``, only ingest writes it (it keeps the author index too).
        self.events: dict[str, Json] = {}
        self._heads: dict[tuple[int, str, str], str] = {}
        self._by_author: dict[str, set[str]] = {}  # pubkey -> ids of its live rows
        self.owner_links: dict[str, str] = {}  # agent -> owner, first write wins (api/mod.rs)
        self.auth_log: list[AuthRecord] = []
        self.connections_opened = 0
        self.most_open = 0  # the most websockets open at once
        self.cut_events: list[str] = []  # ids of EVENTs whose socket was cut before the OK
        # (event id, author, message) of every EVENT the websocket refused before ingest
        # because its socket had not authenticated (as its author)
        self.auth_refusals: list[tuple[str, str, str]] = []
        self.http_requests: list[tuple[str, int]] = []  # (path, status)
        self._replay: dict[str, float] = {}
        self._quota: dict[str, deque[float]] = {}
        self._conns: set[_Conn] = set()
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def now(self) -> float:
        return time.time() + self.faults.clock_skew

    async def start(self) -> None:
        app = web.Application(client_max_size=BODY_LIMIT_BYTES)
        app.router.add_get("/", self._root)
        app.router.add_post("/events", self._http_events)
        app.router.add_post("/query", self._http_query)
        app.router.add_post("/count", self._http_count)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.hosts = {normalize_host(f"{LOOPBACK}:{self.port}"), *self._extra_hosts}
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        for conn in list(self._conns):
            await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BuzzRelay:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @contextmanager
    def serving(self) -> Iterator[BuzzRelay]:
        """Run the relay on its own event loop in a daemon thread (for sync callers)."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="buzz-double", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=10)
            yield self
        finally:
            with suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
        """Run ``make()`` on the relay's loop from another thread (``serving()`` mode)."""
        assert self._loop is not None, "the relay is not running"

        async def wrapped() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(timeout=timeout)

    # -- what tests look at ------------------------------------------------------------

    def head(self, kind: int, pubkey: str, d: str) -> Json | None:
        """The stored head at an address, or None."""
        event_id = self._heads.get((kind, pubkey, d))
        return None if event_id is None else self.events.get(event_id)

    def open_connections(self) -> int:
        return len(self._conns)

    async def rechallenge(self) -> None:
        """A fresh ``AUTH`` challenge on every open socket; each forgets its identity.

        NIP-42 lets a relay send a new challenge at any moment; buzz never does, so
        this is a fault: every socket is back to ``Pending`` until it authenticates again.
        """
        for conn in list(self._conns):
            await self._rechallenge(conn)

    async def _challenge(self, conn: _Conn) -> None:
        conn.challenged = True
        await conn.send(["AUTH", conn.challenge])

    async def _rechallenge(self, conn: _Conn) -> None:
        conn.challenge = secrets.token_hex(32)
        conn.state, conn.pubkey = "pending", None
        await self._challenge(conn)

    async def drop_connections(self) -> None:
        """Close every socket at once with 1011 (internal error), as a relay that is
        going down does; the client sees each connection end mid-conversation."""
        for conn in list(self._conns):
            with suppress(Exception):
                await conn.ws.close(code=1011)

    # -- websocket ---------------------------------------------------------------------

    async def _root(self, request: web.Request) -> web.StreamResponse:
        # router.rs nip11_or_ws_handler: NIP-11 on Accept, else bind the host, then upgrade.
        if "application/nostr+json" in request.headers.get("Accept", ""):
            return web.json_response(self._nip11(), content_type="application/nostr+json")
        host = normalize_host(request.headers.get("Host", ""))
        if not host or host not in self.hosts:
            return web.Response(status=404, text=NO_COMMUNITY)
        ws = web.WebSocketResponse(autoping=True, max_msg_size=16 * 1024 * 1024)
        if not ws.can_prepare(request).ok:
            return web.json_response(self._nip11())
        await ws.prepare(request)
        self.connections_opened += 1
        conn = _Conn(self.connections_opened, ws, host, request.transport)
        self._conns.add(conn)
        self.most_open = max(self.most_open, len(self._conns))
        # connection.rs:167,204: the challenge is the first frame, before anything is read.
        if self.faults.challenge_at_connect:
            await self._challenge(conn)
        timeout = asyncio.get_running_loop().call_later(
            self.auth_timeout, lambda: asyncio.ensure_future(self._auth_timeout(conn))
        )
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._frame(conn, msg.data)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            timeout.cancel()
            self._conns.discard(conn)
        return ws

    async def _auth_timeout(self, conn: _Conn) -> None:
        # connection.rs:250-270: an unauthenticated socket is closed after AUTH_TIMEOUT.
        if conn.state != "authenticated" and not conn.ws.closed:
            await conn.ws.close()

    def _nip11(self) -> Json:
        # buzz-relay/src/nip11.rs relay_limitation
        return {
            "name": "buzz test double",
            "description": "tests/support/buzz_relay.py",
            "supported_nips": [1, 2, 10, 11, 16, 17, 23, 25, 29, 33, 38, 42, 50, 56],
            "software": "buzz-double",
            "version": "0",
            "limitation": {
                "max_subscriptions": MAX_SUBSCRIPTIONS,
                "max_filters": MAX_FILTERS_PER_REQ,
                "max_limit": PAGE_LIMIT,
                "max_subid_length": MAX_SUB_ID_LENGTH,
                "auth_required": True,
                "payment_required": False,
                "restricted_writes": True,
            },
        }

    async def _frame(self, conn: _Conn, text: str) -> None:
        conn.frames += 1
        if conn.frames - 1 == self.faults.rechallenge_after_frames:
            await self._rechallenge(conn)
        if self.faults.answer_delay:
            await asyncio.sleep(self.faults.answer_delay)
        if self.faults.garbage_frames:
            for junk in ("not json", "{}", '["OK"]', '["EVENT","nobody",{"id":"x"}]', "[1,2]"):
                await conn.ws.send_str(junk)
        try:
            message = self._parse_client_message(text)
        except ParseError as exc:
            # connection.rs handle_text_message: "invalid message: {RelayError}".
            await conn.send(["NOTICE", f"invalid message: Invalid message format: {exc}"])
            return
        verb = message[0]
        if verb == "AUTH":
            await self._ws_auth(conn, message[1], message[2])
        elif verb == "EVENT":
            await self._ws_event(conn, message[1], message[2])
        elif verb in ("REQ", "COUNT"):
            await self._ws_req(conn, verb, message[1], message[2])
        elif verb == "CLOSE":
            conn.subs.pop(message[1], None)

    @staticmethod
    def _parse_client_message(text: str) -> tuple[Any, ...]:
        """buzz-relay/src/protocol.rs ClientMessage::parse."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ParseError(f"JSON parse error: {exc}") from exc
        if not isinstance(data, list):
            raise ParseError("expected JSON array")
        if not data:
            raise ParseError("empty array")
        verb = data[0]
        if not isinstance(verb, str):
            raise ParseError("first element must be a string")
        if verb in ("EVENT", "AUTH"):
            if len(data) < 2:
                raise ParseError(f"{verb} requires event object")
            try:
                event, sdk_event = parse_event(data[1])
            except ParseError as exc:
                label = "invalid event" if verb == "EVENT" else "invalid auth event"
                raise ParseError(f"{label}: {exc}") from exc
            return verb, event, sdk_event
        if verb in ("REQ", "COUNT"):
            if len(data) < 2:
                raise ParseError(f"{verb} requires sub_id")
            sub_id = data[1]
            if not isinstance(sub_id, str):
                raise ParseError(f"{verb} sub_id must be a string")
            if not sub_id:
                raise ParseError(f"{verb} sub_id must not be empty")
            if len(sub_id.encode()) > MAX_SUB_ID_LENGTH:
                raise ParseError(
                    f"{verb} sub_id exceeds maximum length of {MAX_SUB_ID_LENGTH} bytes"
                )
            if len(data) - 2 > MAX_FILTERS_PER_REQ:
                raise ParseError(
                    f"{verb} contains {len(data) - 2} filters, maximum is {MAX_FILTERS_PER_REQ}"
                )
            try:
                filters = [parse_filter(f) for f in data[2:]]
            except ParseError as exc:
                raise ParseError(f"invalid filter: {exc}") from exc
            return verb, sub_id, filters
        if verb == "CLOSE":
            if len(data) < 2:
                raise ParseError("CLOSE requires sub_id")
            if not isinstance(data[1], str):
                raise ParseError("CLOSE sub_id must be a string")
            return verb, data[1]
        raise ParseError(f"unknown message type: {verb}")

    async def _ws_auth(self, conn: _Conn, event: Json, sdk_event: ns.Event) -> None:
        """handlers/auth.rs handle_auth."""
        if conn.state == "authenticated":
            await conn.send(["OK", event["id"], False, AUTH_ALREADY])
            return
        if conn.state == "failed":
            await conn.send(["OK", event["id"], False, AUTH_ALREADY_FAILED])
            return
        tag_json = auth_tag_of(event)
        pubkey = event["pubkey"]
        if not self._nip42_ok(conn, event, sdk_event):
            await self._auth_answer(conn, event, pubkey, AUTH_FAILED)
            return
        owner = _oa_owner(tag_json, pubkey, None)
        if pubkey in self.banned or (owner is not None and owner in self.banned):
            await self._auth_answer(conn, event, pubkey, AUTH_BANNED)
            await conn.ws.close()
            return
        if self.pubkey_allowlist is not None and pubkey not in self.pubkey_allowlist:
            await self._auth_answer(conn, event, pubkey, AUTH_FAILED)
            return
        admitted, via_owner = self._membership(pubkey, tag_json, event["created_at"])
        if not admitted:
            await self._auth_answer(conn, event, pubkey, AUTH_NOT_MEMBER)
            return
        link = via_owner or (owner if not self.require_relay_membership else None)
        if link is not None:
            self.owner_links.setdefault(pubkey, link)
        conn.state, conn.pubkey = "authenticated", pubkey
        await self._auth_answer(conn, event, pubkey, "")

    async def _auth_answer(self, conn: _Conn, event: Json, pubkey: str, message: str) -> None:
        accepted = message == ""
        if not accepted:
            conn.state = "failed"
        self.auth_log.append(AuthRecord("ws", pubkey, accepted, message))
        await conn.send(["OK", event["id"], accepted, message])

    def _nip42_ok(self, conn: _Conn, event: Json, sdk_event: ns.Event) -> bool:
        """buzz-auth/src/nip42.rs:47-86 verify_nip42_event, expected URL from bridge.rs:225."""
        if event["kind"] != KIND_AUTH or not sdk_event.verify():
            return False
        if _first_tag_value(event["tags"], "challenge") != conn.challenge:
            return False
        relay = _first_tag_value(event["tags"], "relay")
        if relay is None:
            return False
        expected = [f"{self.relay_url_scheme}://{conn.host}"]
        if self.pairing_relay_url is not None:  # L: handlers/auth.rs@03f76bf3
            expected.append(self.pairing_relay_url)
        if not any(nip42_relay_url_matches(relay, url) for url in expected):
            return False
        return abs(int(self.now()) - int(event["created_at"])) <= AUTH_WINDOW_SECS

    def _membership(self, pubkey: str, tag_json: str | None, at: int) -> tuple[bool, str | None]:
        """api/mod.rs:62-113 check_relay_membership, NIP-OA time bounds as in L."""
        if not self.require_relay_membership or pubkey in self.members:
            return True, None
        if self.allow_nip_oa_auth:
            owner = _oa_owner(tag_json, pubkey, at)
            if owner is not None and owner in self.members:
                return True, owner
        return False, None

    async def _ws_event(self, conn: _Conn, event: Json, sdk_event: ns.Event) -> None:
        """handlers/event.rs handle_event, then the shared ingest."""
        if conn.state != "authenticated" or conn.pubkey is None:
            if not conn.challenged:  # Faults.challenge_at_connect
                await self._challenge(conn)
            self.auth_refusals.append((event["id"], event["pubkey"], NOT_AUTHENTICATED))
            await conn.send(["OK", event["id"], False, NOT_AUTHENTICATED])
            return
        if event["pubkey"] != conn.pubkey:
            self.auth_refusals.append((event["id"], event["pubkey"], PUBKEY_MISMATCH))
            await conn.send(["OK", event["id"], False, PUBKEY_MISMATCH])
            return
        if self.faults.cut_before_ok > 0:
            self.faults.cut_before_ok -= 1
            self.cut_events.append(event["id"])
            # Faults.cut_before_ok: nothing stored, nothing answered, no close frame.
            if conn.transport is not None:
                conn.transport.abort()
            return
        if event["kind"] == KIND_AUTH:
            await conn.send(["OK", event["id"], False, WS_AUTH_EVENT])
            return
        try:
            accepted, message = await self.ingest(event, sdk_event, conn.pubkey)
        except EventRefused as refusal:
            text = WS_INTERNAL if refusal.kind == "internal" else refusal.message
            await conn.send(["OK", event["id"], False, text])
            return
        await conn.send(["OK", event["id"], accepted, message])

    async def _ws_req(self, conn: _Conn, verb: str, sub_id: str, filters: list[Json]) -> None:
        """handlers/req.rs handle_req (and handlers/count.rs for COUNT)."""
        if conn.state != "authenticated" or conn.pubkey is None:
            if not conn.challenged:  # Faults.challenge_at_connect
                await self._challenge(conn)
            if verb == "REQ":
                await conn.send(["NOTICE", REQ_AUTH_NOTICE])
            await conn.send(["CLOSED", sub_id, NOT_AUTHENTICATED])
            return
        me = conn.pubkey
        if verb == "REQ" and sub_id not in conn.subs and len(conn.subs) >= MAX_SUBSCRIPTIONS:
            await conn.send(["CLOSED", sub_id, TOO_MANY_SUBS])
            return
        refusal = self._read_refusal(filters, me, http=False, count=verb == "COUNT")
        if refusal is not None:
            await conn.send(["CLOSED", sub_id, refusal])
            return
        found = self.query(filters, me)
        if verb == "COUNT":
            await conn.send(["COUNT", sub_id, {"count": len(found)}])
            return
        conn.subs[sub_id] = filters
        for event in found:
            await conn.send(["EVENT", sub_id, event])
        await conn.send(["EOSE", sub_id])

    def _read_refusal(
        self, filters: list[Json], me: str, *, http: bool, count: bool = False
    ) -> str | None:
        """The read gates in buzz's order (req.rs:211-241; bridge.rs:966-1009; count.rs)."""
        channels = _channel_values(filters)
        if len(channels) > MAX_EXPLICIT_CHANNELS:
            return "too many explicit channels" if http else TOO_MANY_CHANNELS
        if channels and not http and not count:
            return NOT_CHANNEL_MEMBER  # the double has no channels to be a member of
        if not p_gated_filters_authorized(filters, me):
            return HTTP_P_GATED if http or count else WS_P_GATED
        if not engram_filters_authorized(filters, me):
            return ENGRAM_GATED
        if not author_only_filters_authorized(filters, me):
            return AUTHOR_ONLY
        return None

    def query(self, filters: list[Json], reader: str) -> list[Json]:
        """Stored events for a REQ: per filter newest first, at most 1,000, then de-duplicated.

        A filter naming ``ids`` or ``authors`` is matched against those rows only, as
        a database's index would look them up; any other filter against every row.
        Either way the rows are taken newest first and each is matched in full.
        """
        everything: list[Json] | None = None
        seen: set[str] = set()
        found: list[Json] = []
        for filter_ in filters:
            limit = min(int(filter_.get("limit", PAGE_LIMIT)), PAGE_LIMIT)
            rows = self._rows_for(filter_)
            if rows is None:
                if everything is None:
                    everything = sorted(self.events.values(), key=_newest_first)
                ordered = everything
            else:
                ordered = sorted(rows, key=_newest_first)
            taken = 0
            for event in ordered:
                if taken >= limit:
                    break
                if filter_matches(filter_, event) and readable_by(event, reader):
                    taken += 1
                    if event["id"] not in seen:
                        seen.add(event["id"])
                        found.append(event)
        return found

    def _rows_for(self, filter_: Json) -> list[Json] | None:
        """The only rows ``filter_`` can match when it names ids or authors, else None."""
        if "ids" in filter_:
            ids: Iterable[str] = set(filter_["ids"])
        elif "authors" in filter_:
            ids = [i for a in set(filter_["authors"]) for i in self._by_author.get(a, ())]
        else:
            return None
        return [self.events[i] for i in ids if i in self.events]

    async def _fan_out(self, event: Json) -> None:
        for conn in list(self._conns):
            if conn.pubkey is None or not readable_by(event, conn.pubkey):
                continue
            for sub_id, filters in list(conn.subs.items()):
                if any(filter_matches(f, event) for f in filters):
                    await conn.send(["EVENT", sub_id, event])

    # -- ingest (handlers/ingest.rs, shared by both transports) ------------------------

    async def ingest(self, event: Json, sdk_event: ns.Event, principal: str) -> tuple[bool, str]:
        """``(accepted, message)`` for a stored or dominated event; raises :class:`EventRefused`."""
        kind = event["kind"]
        if self.faults.internal_error:
            raise EventRefused("internal", "error: injected fault")
        if kind == KIND_AUTH:
            raise EventRefused("rejected", INGEST_AUTH_EVENT)
        problem = event_id_problem(event, sdk_event)
        if problem is not None:
            raise EventRefused("rejected", f"invalid: {problem}")
        if abs(event["created_at"] - int(self.now())) > EVENT_WINDOW_SECS:
            raise EventRefused("rejected", TOO_FAR)
        size = len(event["content"].encode())
        if size > MAX_CONTENT_BYTES:
            raise EventRefused(
                "rejected",
                f"invalid: content exceeds maximum size of {MAX_CONTENT_BYTES} bytes (got {size})",
            )
        if event["pubkey"] != principal:
            raise EventRefused("auth", PUBKEY_MISMATCH)
        if kind not in KNOWN_KINDS:
            raise EventRefused("rejected", UNKNOWN_KIND)
        if kind == KIND_DELETION:
            e_count = sum(1 for t in event["tags"] if t and t[0] == "e")
            a_count = sum(1 for t in event["tags"] if t and t[0] == "a")
            if e_count + a_count != 1:
                raise EventRefused(
                    "rejected",
                    "invalid: deletion events must reference exactly one target via e or a tag "
                    f"(got e={e_count}, a={a_count})",
                )
        validator = {KIND_ENGRAM: validate_engram_envelope, KIND_PERSONA: validate_persona_envelope}
        check = validator.get(kind)
        if check is not None:
            problem = check(event)
            if problem is not None:
                raise EventRefused("rejected", f"invalid: {problem}")
        if not self._store(event):
            return True, DUPLICATE  # ingest.rs:3192-3198
        if kind == KIND_DELETION:
            self._delete(event)
        await self._fan_out(event)
        return True, ""

    def _store(self, event: Json) -> bool:
        """True when the event was inserted (buzz-db replace_parameterized_event / insert)."""
        if event["id"] in self.events:
            return False
        if _is_addressable(event["kind"]):
            address = (event["kind"], event["pubkey"], _d_of(event))
            head = self.head(*address)
            if head is not None and dominated(event, head):
                return False
            if head is not None:
                self._drop(head)  # the old head is soft-deleted
            self._heads[address] = event["id"]
        self.events[event["id"]] = event
        self._by_author.setdefault(event["pubkey"], set()).add(event["id"])
        return True

    def _drop(self, row: Json) -> None:
        del self.events[row["id"]]
        self._by_author[row["pubkey"]].discard(row["id"])

    def _delete(self, deletion: Json) -> None:
        """handlers/side_effects.rs:2134-2257 handle_a_tag_deletion (``a`` targets only)."""
        target = _first_tag_value(deletion["tags"], "a")
        if target is None:
            return  # ``e`` deletions are not traced in the reference; stored, not applied
        kind_text, _, rest = target.partition(":")
        pubkey, _, d = rest.partition(":")
        if not kind_text.isdigit() or not _is_addressable(int(kind_text)):
            return
        address = (int(kind_text), pubkey, d)
        head = self.head(*address)
        if head is not None and head["created_at"] <= deletion["created_at"]:
            self._drop(head)
            del self._heads[address]

    # -- HTTP bridge (api/bridge.rs) ---------------------------------------------------

    async def _http_events(self, request: web.Request) -> web.StreamResponse:
        return await self._http(request, "/events")

    async def _http_query(self, request: web.Request) -> web.StreamResponse:
        return await self._http(request, "/query")

    async def _http_count(self, request: web.Request) -> web.StreamResponse:
        return await self._http(request, "/count")

    async def _http(self, request: web.Request, path: str) -> web.StreamResponse:
        response = await self._http_answer(request, path)
        self.http_requests.append((path, response.status))
        return response

    async def _http_answer(self, request: web.Request, path: str) -> web.StreamResponse:
        if self.faults.answer_delay:
            await asyncio.sleep(self.faults.answer_delay)
        host = normalize_host(request.headers.get("Host", ""))
        if not host or host not in self.hosts:
            return _error(404, NO_COMMUNITY)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            return web.Response(status=413, text=exc.text or "length limit exceeded")
        forced = _take_forced(self.faults.http_answers, path)
        if forced is not None:
            return web.Response(
                status=forced.status,
                body=forced.body,
                headers=dict(forced.headers),
                content_type=forced.content_type,
            )
        scheme = "https" if self.relay_url_scheme == "wss" else "http"
        expected_url = f"{scheme}://{host}{path}"  # bridge.rs:195-205 nip98_expected_url
        verdict = self._verify_bridge_auth(request, expected_url, body)
        if isinstance(verdict, web.Response):
            return verdict
        pubkey, auth_id, auth_created_at = verdict
        quota = self._admission(pubkey)
        if quota is not None:
            return quota
        if auth_id is not None:
            replayed = self._replayed(auth_id)
            if replayed is not None:
                return replayed
        tag_json = _single_header(request, "x-auth-tag")
        if path == "/events":
            return await self._submit(body, pubkey, tag_json, auth_created_at)
        return self._read(body, pubkey, tag_json, auth_created_at, count=path == "/count")

    def _verify_bridge_auth(
        self, request: web.Request, expected_url: str, body: bytes
    ) -> tuple[str, str | None, int | None] | web.Response:
        """bridge.rs:57-128 verify_bridge_auth and buzz-auth/src/nip98.rs:55-142."""
        header = request.headers.get("Authorization", "")
        if header.startswith("Nostr "):
            try:
                raw = base64.b64decode(header[len("Nostr ") :], validate=True)
            except (binascii.Error, ValueError):
                return _error(401, "invalid base64 in Nostr auth")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                return _error(401, "invalid UTF-8 in Nostr auth")
            try:
                auth, sdk_auth = parse_event(json.loads(text))
            except (ParseError, json.JSONDecodeError):
                return _error(401, "invalid NIP-98 event JSON")
            problem = self._nip98_problem(auth, sdk_auth, expected_url, body)
            if problem is not None:
                return _error(401, f"NIP-98: NIP-98 HTTP Auth verification failed: {problem}")
            return auth["pubkey"], auth["id"], auth["created_at"]
        if not self.require_auth_token:
            dev = request.headers.get("X-Pubkey")
            if dev is not None:
                try:
                    return ns.PublicKey.parse(dev).to_hex(), None, None
                except ns.NostrSdkError:
                    return _error(401, "invalid X-Pubkey hex")
        return _error(401, "missing Nostr auth")

    def _nip98_problem(
        self, auth: Json, sdk_auth: ns.Event, expected_url: str, body: bytes
    ) -> str | None:
        """buzz-auth/src/nip98.rs verify_nip98_event, detail texts as buzz words them."""
        if auth["kind"] != KIND_HTTP_AUTH:
            return f"expected kind {KIND_HTTP_AUTH}, got {auth['kind']}"
        if not sdk_auth.verify():
            return "invalid Schnorr signature"
        delta = abs(int(self.now()) - auth["created_at"])
        if delta > AUTH_WINDOW_SECS:
            return f"event timestamp outside ±{AUTH_WINDOW_SECS}s window (delta: {delta}s)"
        u_tag = _first_tag_value(auth["tags"], "u")
        if u_tag is None:
            return "missing `u` tag"
        if not nip98_url_matches(u_tag, expected_url):
            return f"URL mismatch: event has `{u_tag}`, expected `{expected_url}`"
        method = _first_tag_value(auth["tags"], "method")
        if method is None:
            return "missing `method` tag"
        if method.lower() != "post":
            return f"method mismatch: event has `{method}`, expected `POST`"
        payload = _first_tag_value(auth["tags"], "payload")
        if payload is not None and payload != hashlib.sha256(body).hexdigest():
            return "payload tag SHA-256 mismatch: request body does not match signed hash"
        return None

    def _admission(self, pubkey: str) -> web.Response | None:
        """bridge.rs:23-55 enforce_http_admission: a per-principal quota per 60 s."""
        if self.api_calls_per_min is None:
            return None
        now = time.monotonic()
        calls = self._quota.setdefault(pubkey, deque())
        while calls and now - calls[0] >= 60:
            calls.popleft()
        if len(calls) >= self.api_calls_per_min:
            reset = max(1, int(60 - (now - calls[0])) + 1)
            return _error(429, f"rate-limited: quota exceeded; retry in {reset}s")
        calls.append(now)
        return None

    def _replayed(self, auth_id: str) -> web.Response | None:
        """bridge.rs:144-181 check_nip98_replay: each auth event id once per community."""
        now = time.monotonic()
        # Ids are remembered in arrival order, so expiry only ever looks at the oldest.
        while self._replay:
            oldest, at = next(iter(self._replay.items()))
            if now - at <= REPLAY_TTL_SECS:
                break
            del self._replay[oldest]
        if auth_id in self._replay:
            return _error(401, "NIP-98: replay detected")
        self._replay[auth_id] = now
        return None

    async def _submit(
        self, body: bytes, pubkey: str, tag_json: str | None, auth_at: int | None
    ) -> web.Response:
        """bridge.rs submit_event_authed: body, membership, ingest."""
        try:
            event, sdk_event = parse_event(json.loads(body))
        except (ParseError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, f"invalid event JSON: {exc}")
        denied = self._http_membership(pubkey, tag_json, auth_at)
        if denied is not None:
            return denied
        try:
            accepted, message = await self.ingest(event, sdk_event, pubkey)
        except EventRefused as refusal:
            status = {"rejected": 400, "auth": 403, "internal": 500}[refusal.kind]
            return _error(status, HTTP_INTERNAL if status == 500 else refusal.message)
        return web.json_response(
            {"event_id": event["id"], "accepted": accepted, "message": message}
        )

    def _read(
        self,
        body: bytes,
        pubkey: str,
        tag_json: str | None,
        auth_at: int | None,
        *,
        count: bool,
    ) -> web.Response:
        """bridge.rs query_events_authed / count_events_authed."""
        denied = self._http_membership(pubkey, tag_json, auth_at)
        if denied is not None:
            return denied
        try:
            raw = json.loads(body)
            if not isinstance(raw, list):
                raise ParseError("invalid type: expected a sequence")
            filters = [parse_filter(f) for f in raw]
        except (ParseError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, f"invalid filters: {exc}")
        refusal = self._read_refusal(filters, pubkey, http=True)
        if refusal is not None:
            status = 400 if refusal == "too many explicit channels" else 403
            return _error(status, refusal)
        found = self.query(filters, pubkey)
        if count:
            return web.json_response({"count": len(found)})
        return web.json_response(found)

    def _http_membership(
        self, pubkey: str, tag_json: str | None, auth_at: int | None
    ) -> web.Response | None:
        """api/mod.rs enforce_relay_membership with the ``x-auth-tag`` header (§2.4)."""
        admitted, via_owner = self._membership(pubkey, tag_json, auth_at or int(self.now()))
        if not admitted:
            return web.json_response(MEMBERSHIP_REQUIRED, status=403)
        link = via_owner or (
            _oa_owner(tag_json, pubkey, None) if not self.require_relay_membership else None
        )
        if link is not None:
            self.owner_links.setdefault(pubkey, link)
        self.auth_log.append(AuthRecord("http", pubkey, True, ""))
        return None


def _oa_owner(tag_json: str | None, agent: str, at: int | None) -> str | None:
    if tag_json is None:
        return None
    try:
        return verify_oa_tag(tag_json, agent, at)
    except OaInvalid:
        return None


def _take_forced(answers: deque[HttpAnswer], path: str) -> HttpAnswer | None:
    """The first forced answer meant for ``path`` (or for any path), taken out of line."""
    for forced in answers:
        if forced.path is None or forced.path == path:
            answers.remove(forced)
            return forced
    return None


def _single_header(request: web.Request, name: str) -> str | None:
    """L's extract_auth_tag_header: a repeated header counts as absent (reference §2.4)."""
    values = request.headers.getall(name, [])
    return values[0] if len(values) == 1 else None


def _error(status: int, message: str) -> web.Response:
    """api/mod.rs:20-27 api_error: ``{"error": <message>}``."""
    return web.json_response({"error": message}, status=status)


# -- what a client sends (helpers for tests; fleetsync's own signing) ------------------


def nip98_tags(
    url: str, body: bytes, *, method: str = "POST", payload: bool = True
) -> list[list[str]]:
    """The tags the buzz desktop puts on a NIP-98 event (relay.rs:117-146), in its order."""
    tags = [["u", url], ["method", method]]
    if payload:
        tags.append(["payload", hashlib.sha256(body).hexdigest()])
    tags.append(["nonce", str(uuid.uuid4())])
    return tags


def authorization_header(event_json: str) -> str:
    """``Nostr <standard base64 of the event JSON>`` (reference §2.2)."""
    return "Nostr " + base64.b64encode(event_json.encode()).decode()


def auth_tags(relay_url: str, challenge: str, oa_tag: list[str] | None = None) -> list[list[str]]:
    """NIP-42 tags in the order buzz's agents send them (buzz-acp/src/relay.rs:3464-3488)."""
    tags = [["relay", relay_url], ["challenge", challenge]]
    if oa_tag is not None:
        tags.append(oa_tag)
    return tags


def mint_oa_tag(owner: SecretKey, agent_pubkey: str, conditions: str = "") -> list[str]:
    """A NIP-OA ``auth`` tag by which ``owner`` attests ``agent_pubkey`` (specs/NIP-OA.md)."""
    signature = owner.sign_schnorr(oa_preimage_digest(agent_pubkey, conditions))
    return ["auth", owner.public_key.hex, conditions, signature.hex()]

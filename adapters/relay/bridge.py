"""The HTTP bridge of a buzz relay as a :class:`adapters.ports.Transport`.

A relay configured by an ``http://`` or ``https://`` URL is its HTTP bridge
(``../shared/reference/buzz-interop.md`` §2): ``POST {base}/events`` with one
signed event, ``POST {base}/query`` with a JSON array of filters. Every request
carries a fresh NIP-98 ``Authorization`` header signed by the identity it acts
as (the event's author for a write, the reader for a query): buzz accepts each
auth event once, so a retry signs a new one. The ``payload`` tag is the SHA-256
of the very bytes sent.

How answers map onto the relay seam's vocabulary (:mod:`adapters.relay.answers`),
so the reconciler cannot tell this wire from a websocket:

* ``200 {"event_id", "accepted", "message"}``: ``accepted``/``message``
  classified exactly as a websocket ``OK`` (``accepted: false`` is a refusal;
  ``accepted: true`` with ``duplicate:`` is a duplicate, which only a read-back
  turns into *published*);
* ``400``/``403`` with an ``invalid:``/``restricted:``/``blocked:`` message: the
  ingest refusal, classified by its prefix (permanent);
* ``403 relay_membership_required``: the author is not a member; an agent is
  sent once more with its owner's NIP-OA attestation in ``x-auth-tag``, and a
  refusal after that is permanent, naming the agent, the relay and the reason;
* ``401``: a NIP-98 check failed. The time window is named as clock skew;
  a replay (our fresh event seen before) is retried with a new one;
* ``429``: waits the ``Retry-After`` header, else the delay in the body
  (``retry in Ns``, which is how buzz says it), then tries again;
* ``5xx``, a refused connection: temporary; a request that timed out after it
  was sent: unknown (the relay may have stored it: the read-back decides);
* a body that is not the bridge's JSON: never a success; unknown for a write
  (something answered, not the bridge), a cut-short read for a query.

Connections are aiohttp keep-alive connections of one session per relay, at
most ``window`` requests in flight (the connector's limit), not one per event.
:meth:`BridgeTransport.traffic` counts the TCP connections opened and the
requests made, for the apply report (:mod:`adapters.relay.traffic`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import orjson

from adapters.nostr.event import Event, InvalidEvent
from adapters.nostr.nip98 import authorization_header
from adapters.relay.answers import Answer, QueryResult, SubscriptionResult
from adapters.relay.errors import CannotConnect, InvalidRelayUrl, PermanentRelayError
from adapters.relay.messages import OkMessage, classify, prefix_of
from adapters.relay.traffic import HTTP_BRIDGE, Traffic, TrafficMeter
from adapters.relay.urls import canonical_url
from domain.verdict import Outcome

if TYPE_CHECKING:
    from adapters.ports import AttestationLookup, Signer, SignerLookup

logger = logging.getLogger(__name__)

BRIDGE_SCHEMES: Final = ("http", "https")
DEFAULT_CONCURRENCY: Final = 32
# Attempts per event or query for answers that may change (429, 5xx, replay, a
# dropped connection); the relay's own delay is honoured between them.
MAX_ATTEMPTS: Final = 4
MAX_DELAY: Final = 60.0
_RETRY_IN = re.compile(r"retry in (\d+(?:\.\d+)?)\s*s")
MEMBERSHIP_REQUIRED: Final = "relay_membership_required"


def is_bridge_url(url: str) -> bool:
    """Whether a configured relay URL names an HTTP bridge (``http://``/``https://``)."""
    return url.strip().lower().startswith(("http://", "https://"))


def _delay(response_headers: Mapping[str, str], message: str) -> float:
    header = response_headers.get("Retry-After")
    if header is not None:
        try:
            return min(MAX_DELAY, max(0.0, float(header)))
        except ValueError:
            pass
    found = _RETRY_IN.search(message)
    return min(MAX_DELAY, float(found.group(1))) if found else 1.0


def _error_text(body: bytes) -> str | None:
    """The bridge's error text (``{"error": ..., "message"?: ...}``), else None."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(value, dict) and isinstance(value.get("error"), str):
        text: str = value["error"]
        if isinstance(value.get("message"), str):
            text = f"{text}: {value['message']}"
        return text
    return None


def _snippet(body: bytes) -> str:
    text = body[:80].decode("utf-8", "replace")
    return "".join(ch if ch.isprintable() else "?" for ch in text)


class BridgeTransport:
    """One buzz relay over its HTTP bridge. Implements :class:`adapters.ports.Transport`.

    ``attestations`` gives an agent's NIP-OA tag when a closed relay wants it;
    ``clock`` is the ``created_at`` of NIP-98 events (a test may skew it).
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 10.0,
        concurrency: int = DEFAULT_CONCURRENCY,
        attestations: AttestationLookup | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not is_bridge_url(url):
            raise InvalidRelayUrl(f"{url!r} is not an http:// or https:// bridge URL")
        self.canonical_url = canonical_url(url)
        self._url = url.strip()
        self._base = self._url.rstrip("/")
        self._connect_timeout = connect_timeout
        self._concurrency = max(1, concurrency)
        self._attestations = attestations
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._gate: asyncio.Semaphore | None = None
        # Authors this relay refused without an attestation: sent with it from then on.
        self._needs_attestation = False
        self._signers: dict[str, Signer | None] = {}
        self.meter = TrafficMeter(HTTP_BRIDGE)

    @property
    def url(self) -> str:
        return self._url

    def traffic(self) -> Traffic:
        """TCP connections opened and requests made so far."""
        return self.meter.reading()

    # -- the session -------------------------------------------------------------------

    def _open(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        if self._session is None or self._gate is None:
            trace = aiohttp.TraceConfig()

            async def counted(*_: object) -> None:
                self.meter.connected()

            trace.on_connection_create_end.append(counted)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._concurrency, force_close=False),
                trace_configs=[trace],
                json_serialize=lambda v: orjson.dumps(v).decode(),
            )
            self._gate = asyncio.Semaphore(self._concurrency)
        return self._session, self._gate

    async def _post(
        self,
        path: str,
        body: bytes,
        signer: Signer,
        timeout: float,
        extra: Mapping[str, str] | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One POST with a fresh NIP-98 header; raises aiohttp/asyncio errors as they are."""
        session, gate = self._open()
        url = self._base + path
        async with gate:
            # Signed once its turn has come, not while it waits behind the requests in
            # flight: buzz accepts an auth event for 60 s, and a long queue to a slow
            # relay must not age it into a refusal that reads as clock skew.
            headers = {
                "Content-Type": "application/json",
                "Authorization": authorization_header(
                    signer, url, "POST", body, created_at=int(self._clock())
                ),
            }
            if extra:
                headers.update(extra)
            self.meter.request()
            async with session.post(
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout, connect=self._connect_timeout),
            ) as response:
                return response.status, dict(response.headers), await response.read()

    def _signer(self, pubkey: str, signers: SignerLookup | None) -> Signer | None:
        if pubkey not in self._signers:
            self._signers[pubkey] = signers(pubkey) if signers is not None else None
        return self._signers[pubkey]

    # -- publishing --------------------------------------------------------------------

    async def publish_many(
        self,
        events: Sequence[Event],
        *,
        window: int,
        timeout: float,
        signers: SignerLookup | None = None,
    ) -> dict[str, Answer]:
        answers = await asyncio.gather(
            *(self._publish_one(event, timeout, signers) for event in events)
        )
        if events and all(a.attempts == 0 and a.outcome is Outcome.TEMPORARY for a in answers):
            # Nothing could be sent at all: the relay is unreachable (the pool reports it).
            unreachable = [a for a in answers if a.message.startswith("cannot connect")]
            if len(unreachable) == len(answers):
                raise CannotConnect(answers[0].message, url=self._url)
        return {answer.event_id: answer for answer in answers}

    async def _publish_one(
        self, event: Event, timeout: float, signers: SignerLookup | None
    ) -> Answer:
        relay = self.canonical_url
        signer = self._signer(event.pubkey, signers)
        if signer is None:
            return Answer(
                relay,
                event.id,
                Outcome.PERMANENT,
                "",
                f"the bridge needs a NIP-98 header signed by {event.pubkey}, "
                "and its key is not held here",
            )
        body = orjson.dumps(event.to_dict())
        attempts = 0
        sent_attestation = False
        last = Answer(relay, event.id, Outcome.TEMPORARY, "", "not sent", 0)
        while attempts < MAX_ATTEMPTS:
            extra = None
            if self._needs_attestation or sent_attestation:
                tag = self._attestation(event.pubkey)
                if tag is not None:
                    extra = {"x-auth-tag": orjson.dumps(list(tag)).decode()}
                    sent_attestation = True
            try:
                status, headers, payload = await self._post("/events", body, signer, timeout, extra)
            except TimeoutError:
                attempts += 1
                return Answer(
                    relay,
                    event.id,
                    Outcome.UNKNOWN,
                    "",
                    f"no answer within {timeout:g} s",
                    attempts,
                )
            except aiohttp.ClientConnectorError as exc:
                return Answer(
                    relay, event.id, Outcome.TEMPORARY, "", f"cannot connect: {exc}", attempts
                )
            except (aiohttp.ClientError, OSError) as exc:
                attempts += 1
                # Sent, or maybe sent: the relay may hold it.
                last = Answer(
                    relay, event.id, Outcome.UNKNOWN, "", f"connection lost: {exc}", attempts
                )
                continue
            attempts += 1
            answer, retry_after = self._event_answer(event, status, headers, payload, attempts)
            if (
                status == 403
                and MEMBERSHIP_REQUIRED in answer.message
                and not sent_attestation
                and self._attestation(event.pubkey) is not None
            ):
                self._needs_attestation = True
                sent_attestation = True
                continue
            if status == 403 and MEMBERSHIP_REQUIRED in answer.message:
                why = (
                    "even with its owner's attestation (x-auth-tag)"
                    if sent_attestation
                    else "without an owner attestation (NIP-OA) to present: an agent's is "
                    "withdrawn when it is retired, and 'fleetsync agent attest AGENT' (or "
                    "--missing, for every agent without one) mints one"
                )
                return Answer(
                    relay,
                    event.id,
                    Outcome.PERMANENT,
                    answer.prefix,
                    f"{relay} refused agent {event.pubkey} {why}: {answer.message}",
                    attempts,
                )
            if retry_after is None:
                return answer
            last = answer
            await asyncio.sleep(min(retry_after, timeout))
        return last

    def _attestation(self, pubkey: str) -> Sequence[str] | None:
        return self._attestations(pubkey) if self._attestations is not None else None

    def _event_answer(
        self,
        event: Event,
        status: int,
        headers: Mapping[str, str],
        payload: bytes,
        attempts: int,
    ) -> tuple[Answer, float | None]:
        """The answer to one POST /events, and a delay when it is worth asking again."""
        relay = self.canonical_url
        if status == 200:
            try:
                value = orjson.loads(payload)
            except orjson.JSONDecodeError:
                value = None
            if (
                isinstance(value, dict)
                and isinstance(value.get("accepted"), bool)
                and isinstance(value.get("message", ""), str)
            ):
                ok = OkMessage(event.id, value["accepted"], value.get("message", ""))
                return Answer(relay, event.id, classify(ok), ok.prefix, ok.message, attempts), None
            return (
                Answer(
                    relay,
                    event.id,
                    Outcome.UNKNOWN,
                    "",
                    f"answered HTTP 200 with a body that is not the bridge's JSON: "
                    f"{_snippet(payload)!r}",
                    attempts,
                ),
                None,
            )
        text = _error_text(payload)
        shown = text if text is not None else f"HTTP {status}: {_snippet(payload)!r}"
        if status == 429:
            delay = _delay(headers, shown)
            return (
                Answer(relay, event.id, Outcome.TEMPORARY, "rate-limited", shown, attempts),
                delay,
            )
        if status == 401:
            if "replay" in shown:
                return Answer(relay, event.id, Outcome.TEMPORARY, "", shown, attempts), 0.0
            if "timestamp outside" in shown:
                return (
                    Answer(
                        relay,
                        event.id,
                        Outcome.TEMPORARY,
                        "auth-required",
                        f"the relay's clock and this machine's differ by more than its NIP-98 "
                        f"window (clock skew): {shown}",
                        attempts,
                    ),
                    None,
                )
            return Answer(
                relay, event.id, Outcome.PERMANENT, "auth-required", shown, attempts
            ), None
        if status >= 500:
            return Answer(relay, event.id, Outcome.TEMPORARY, "error", shown, attempts), 1.0
        if text is None:
            return (
                Answer(
                    relay,
                    event.id,
                    Outcome.UNKNOWN if status < 400 else Outcome.PERMANENT,
                    "",
                    f"answered HTTP {status} with a body that is not the bridge's JSON: "
                    f"{_snippet(payload)!r}",
                    attempts,
                ),
                None,
            )
        # An ingest refusal, worded as a websocket OK would be: classified the same way.
        outcome = classify(OkMessage(event.id, False, text))
        return Answer(relay, event.id, outcome, prefix_of(text), text, attempts), None

    # -- reading -----------------------------------------------------------------------

    async def query(
        self,
        filters: Sequence[Mapping[str, Any]],
        *,
        timeout: float,
        reader: Signer | None = None,
    ) -> QueryResult:
        """One ``POST /query`` per filter (so each filter's count is known, as the
        websocket reports per subscription); events de-duplicated by id."""
        if reader is None:
            raise PermanentRelayError(
                "an HTTP bridge reads only for a signed identity, and none was given",
                url=self._url,
            )
        results = await asyncio.gather(*(self._query_one(f, timeout, reader) for f in filters))
        if filters and all(isinstance(r, CannotConnect) for r in results):
            first = results[0]
            assert isinstance(first, CannotConnect)
            raise first
        seen: set[str] = set()
        events: list[Event] = []
        subs: list[SubscriptionResult] = []
        for filter_, result in zip(filters, results, strict=True):
            if isinstance(result, CannotConnect):
                subs.append(SubscriptionResult(filter_, 0, False, str(result)))
                continue
            sub, received = result
            subs.append(sub)
            for event in received:
                if event.id not in seen:
                    seen.add(event.id)
                    events.append(event)
        return QueryResult(self._url, tuple(events), tuple(subs))

    async def _query_one(
        self, filter_: Mapping[str, Any], timeout: float, reader: Signer
    ) -> tuple[SubscriptionResult, list[Event]] | CannotConnect:
        body = orjson.dumps([filter_])
        why = "not asked"
        for _ in range(MAX_ATTEMPTS):
            try:
                status, headers, payload = await self._post("/query", body, reader, timeout)
            except aiohttp.ClientConnectorError as exc:
                return CannotConnect(str(exc), url=self._url)
            except TimeoutError:
                return SubscriptionResult(filter_, 0, False, f"no answer within {timeout:g} s"), []
            except (aiohttp.ClientError, OSError) as exc:
                why = f"connection lost: {exc}"
                continue
            if status == 200:
                return self._query_answer(filter_, payload)
            text = _error_text(payload)
            why = text if text is not None else f"HTTP {status}: {_snippet(payload)!r}"
            if status == 429:
                await asyncio.sleep(min(_delay(headers, why), timeout))
                continue
            if status >= 500 or (status == 401 and "replay" in why):
                await asyncio.sleep(0.2)
                continue
            if status == 401 and "timestamp outside" in why:
                why = f"clock skew (the relay's NIP-98 window): {why}"
            break
        return SubscriptionResult(filter_, 0, False, why), []

    def _query_answer(
        self, filter_: Mapping[str, Any], payload: bytes
    ) -> tuple[SubscriptionResult, list[Event]]:
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError:
            value = None
        if not isinstance(value, list):
            why = f"answered HTTP 200 with a body that is not a JSON array: {_snippet(payload)!r}"
            return SubscriptionResult(filter_, 0, False, why), []
        events: list[Event] = []
        skipped = 0
        for item in value:
            try:
                events.append(Event.from_dict(item))
            except InvalidEvent:
                skipped += 1
        return SubscriptionResult(filter_, len(events), True, None, skipped), events

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

"""Pipelined publishing of signed events to one relay: the state machine of one batch.

:class:`adapters.relay.client.RelayConnection` runs a :class:`PublishRun` per
``publish_many`` call over a :class:`adapters.ports.Channel` (its websocket). The
run keeps at most ``window`` EVENTs awaiting their ``OK``, matches answers by
event id, and decides per answer (see :class:`adapters.relay.answers.Outcome`);
each event ends with one :class:`adapters.relay.answers.Answer`:

* ``accepted`` / ``duplicate:`` (whatever the boolean): done, the relay holds it;
* ``invalid:``, ``blocked:``, ``restricted:``, ``pow:``, ``mute:``, unknown: done, refused;
* ``rate-limited:``: back off (exponential, jittered, bounded), halve the window
  and space out sends on this connection, then resend, a bounded number of times;
* ``error:``: back off and resend, fewer times (rust-nostr answers ``error: unknown``
  for a stale addressable version, which no retry fixes), then report ``temporary``;
* ``auth-required:``: NIP-42 AUTH as the event's author (its signer from
  ``signers``, with its owner's NIP-OA attestation from ``attestations`` when
  it has one) on the challenge the relay sent, then one resend; refused again
  on the same socket (or no challenge, no signer): ``permanent``. A fresh
  socket is a fresh session: AUTH again there, and so is a fresh challenge on
  the same socket (NIP-42 lets a relay send one at any time, and the identity
  is forgotten): an author refused after it authenticates again under the new
  challenge, a bounded number of times per event; an AUTH the relay refused
  because a new challenge replaced the one it answered is no refusal of the
  author: the events go again on a fresh socket. An AUTH the relay refuses
  fails that author's events with a message naming the relay, the author and
  the relay's reason: for good when the relay refused the author
  (``restricted: not a relay member``: a closed relay that wants the owner's
  attestation, or refused it), ``temporary`` for ``auth-required:`` (buzz's
  "verification failed", which an AUTH outside its 60 s clock window earns);
* authenticating first: on a socket meant for its authors' events on a relay
  that binds one identity per socket (``authenticate_first``), the run waits
  for the challenge the relay sends at connect and authenticates as each
  author before sending its EVENTs, on every fresh socket: no refusal, no
  resend. Everything above still holds: an ``auth-required:`` answer after
  that is met as above, and a relay that sends no challenge at connect gets
  the EVENTs as they are. When no challenge comes, or a new challenge crosses
  that first AUTH (a relay re-challenging every socket at once would refuse
  every first AUTH), the run goes back to sending first, on this socket and
  the next (:attr:`PublishRun.authenticates_first` says so to its caller);
* no answer in time: ``unknown``. The clock of an EVENT starts at its send or at
  the last frame the relay sent, whichever is later: relays work through a
  socket's messages in order (nostr-relay even sleeps 2 s per refusal), so an
  EVENT queued behind others is not late while answers keep coming. A relay
  silent that long is given up: EVENTs it has are ``unknown``, those never
  sent ``temporary``, and the run ends at once (:attr:`PublishRun.silenced`)
  rather than waiting again for every window's worth.

A dropped connection puts every EVENT still awaiting an answer back in line;
after a reconnect (bounded attempts, with backoff, all within ``timeout`` of the
loss) exactly those are resent.
Events are never altered or re-signed: each one's ``["EVENT", ...]`` frame is
built once and the same text is sent on every attempt.

An ``OK`` with an *empty* event id (nostr-relay's answer to a bad signature and
other refusals) cannot be matched directly. It is kept with the set of EVENTs
that were awaiting an answer on that socket when it arrived; those answered by id
since are struck off, and once one candidate is left the answer is its. If the
candidates left are exactly as many as such answers and the answers are
identical, each candidate gets it. A refusal of that kind also makes nostr-relay
delay every later message on the socket (2 s, doubling per refusal), so the run
moves to a fresh socket (at most ``RetryPolicy.socket_rotations`` times per call)
and resends the unresolved candidates one at a time, which makes the next such
answer attributable. Candidates never resolved time out as ``unknown``.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from adapters.nostr.event import Event
from adapters.nostr.nip42 import auth_event
from adapters.relay.answers import Answer
from adapters.relay.errors import (
    ConnectionLost,
    PermanentRelayError,
    RelayError,
    TemporaryRelayError,
)
from adapters.relay.messages import (
    OkMessage,
    asks_for_auth,
    auth_frame,
    classify,
    event_frame,
    prefix_of,
)
from adapters.relay.traffic import TrafficMeter
from domain.verdict import Outcome

if TYPE_CHECKING:
    from adapters.ports import AttestationLookup, Channel, Signer, SignerLookup

logger = logging.getLogger(__name__)

DEFAULT_WINDOW: Final = 64
DEFAULT_TIMEOUT: Final = 10.0
# Spacing between EVENTs after the first rate-limited answer, doubled on each further
# one up to the maximum: rust-nostr's limiter refills whole tokens per whole second
# elapsed since the previous EVENT, so anything faster than 1/s starves for good.
FIRST_GAP: Final = 0.5
MAX_GAP: Final = 10.0
# Consecutive acceptances after which the pace is eased again (gap x0.8, window x2).
RECOVER_AFTER: Final = 20
# Fresh challenges on one socket after which an event's author stops authenticating
# again for it: a relay that forgets every identity at once is not worth chasing.
MAX_RECHALLENGES: Final = 3
# Why an AUTH the relay refused is no refusal of its identity.
STALE_CHALLENGE: Final = "the relay replaced its AUTH challenge while our AUTH was on its way"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: resends of temporarily refused events, and reconnects.

    Delays grow as ``base_delay * 2**(n-1)`` up to ``max_delay``; ``jitter`` is the
    fraction of each delay drawn at random, so many clients do not retry in step.
    After a failure to connect, :meth:`pause_after` reads the failure: a
    permanent one is not retried, a temporary one waits at least as long as the
    relay asked (its ``delay``); callers give up rather than wait past their
    deadline.
    ``max_send_gap`` bounds how far apart a rate-limited connection spaces its EVENTs.
    ``socket_rotations`` bounds the fresh sockets opened per call to escape a relay
    that throttles a socket after refusing an event without naming it.
    """

    rate_limited_retries: int = 8
    error_retries: int = 2
    reconnects: int = 4
    socket_rotations: int = 16
    connect_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.5
    max_send_gap: float = MAX_GAP

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        full: float = min(self.max_delay, self.base_delay * 2.0 ** max(0, attempt - 1))
        return full * (1 - self.jitter) + random.uniform(0, full * self.jitter)

    def pause_after(self, error: RelayError, attempt: int) -> float | None:
        """Seconds to wait before retry number ``attempt`` (1-based) after ``error``,
        or ``None``: retrying is pointless (a permanent error)."""
        if isinstance(error, PermanentRelayError):
            return None
        pause = self.delay(attempt)
        asked = error.delay if isinstance(error, TemporaryRelayError) else None
        return pause if asked is None else max(pause, asked)


@dataclass(frozen=True, slots=True)
class Heard:
    """An ``OK`` that arrived on the socket of connection ``generation``."""

    generation: int
    ok: OkMessage


@dataclass(frozen=True, slots=True)
class Lost:
    """The websocket of connection ``generation`` closed or failed."""

    generation: int
    reason: str


@dataclass(slots=True)
class _Job:
    event: Event
    frame: str
    seq: int
    attempts: int = 0
    temporary_answers: int = 0
    auth_resent: bool = False
    rechallenges: int = 0  # fresh challenges its author authenticated again for
    sent_at: float = 0.0
    answer: Answer | None = None


@dataclass(slots=True)
class _Auth:
    pubkey: str
    event_id: str
    sent_at: float
    waiting: list[_Job] = field(default_factory=list)
    attested: bool = False  # the AUTH event carried the owner's NIP-OA attestation
    challenge: str = ""  # the challenge the AUTH event answers
    first: bool = False  # sent before the author's EVENTs, not after a refusal


@dataclass(slots=True)
class _Anonymous:
    """An ``OK`` with an empty id and the ids it may belong to."""

    answer: OkMessage
    candidates: set[str]


@dataclass(slots=True)
class Pace:
    """How fast one connection may send: window of EVENTs in flight and gap between sends.

    Kept on the connection across calls, so a relay that said "slow down" is not
    hammered again by the next batch.
    """

    window: int = DEFAULT_WINDOW
    gap: float = 0.0
    slowed_at: float = float("-inf")
    successes: int = 0

    def slow_down(self, sent_at: float, now: float, max_gap: float = MAX_GAP) -> None:
        # One reduction per round trip: answers to EVENTs sent before the last
        # reduction say nothing about the pace since.
        if sent_at < self.slowed_at:
            return
        self.window = max(1, self.window // 2)
        self.gap = min(max_gap, max(FIRST_GAP, self.gap * 2))
        self.slowed_at = now
        self.successes = 0
        logger.info("slowing down: window %d, %.2f s between EVENTs", self.window, self.gap)

    def succeeded(self, sent_at: float, limit: int) -> None:
        if sent_at < self.slowed_at or (self.gap == 0.0 and self.window >= limit):
            return
        self.successes += 1
        if self.successes >= RECOVER_AFTER:
            self.successes = 0
            self.gap = 0.0 if self.gap * 0.8 < FIRST_GAP / 4 else self.gap * 0.8
            self.window = min(limit, self.window * 2)


def auth_refusal(relay: str, pubkey: str, ok: OkMessage, attested: bool) -> str:
    """Why an event went unsent because the relay refused our NIP-42 AUTH as its
    author ``pubkey``, for people: the relay, the identity, the relay's own answer
    (``restricted: not a relay member``: a closed relay that wants the owner's
    attestation, or did not take it) and whether the attestation was presented.
    The event's prefix stays ``auth-required``: it was refused for want of
    authentication, whatever the AUTH's own answer was."""
    presented = (
        "with its owner's attestation (NIP-OA) in the AUTH event"
        if attested
        else "without an owner attestation (NIP-OA): an agent's is withdrawn when it "
        "is retired, and 'fleetsync agent attest AGENT' (or --missing, for every agent "
        "without one) mints one"
    )
    answer = with_clock_hint(ok.message or "no reason given")
    return f"auth-required: AUTH refused: {relay} refused {pubkey} {presented}: {answer}"


def with_clock_hint(answer: str) -> str:
    """A relay's refusal of our AUTH, with the clock named when it may be the cause.

    buzz words every failed check of the AUTH event alike (``auth-required:
    verification failed``), its 60 s window included: a signature and tags made
    here are right, a clock may not be."""
    if prefix_of(answer) != "auth-required":
        return answer
    return (
        f"{answer} (buzz answers so to an AUTH event more than 60 s from its clock: "
        "check this machine's clock)"
    )


def auth_refusal_outcome(ok: OkMessage) -> Outcome:
    """What a refused AUTH makes of the events that waited for it: ``auth-required:``
    (buzz's "verification failed", which a skewed clock also earns) may pass once the
    clocks agree, so the same events go again next time; any other refusal
    (``restricted: not a relay member``, ``blocked:``) is the relay's word on the
    author, for good."""
    return Outcome.TEMPORARY if ok.prefix == "auth-required" else Outcome.PERMANENT


class PublishRun:
    """One ``publish_many`` call on one connection (see the module docstring)."""

    def __init__(
        self,
        channel: Channel,
        events: Sequence[Event],
        *,
        window: int,
        timeout: float,
        signers: SignerLookup | None,
        retry: RetryPolicy,
        pace: Pace,
        attestations: AttestationLookup | None = None,
        meter: TrafficMeter | None = None,
        authenticate_first: bool = False,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._channel = channel
        self._relay = channel.canonical_url  # what answers are reported under
        self._timeout = timeout
        self._signers = signers
        self._attestations = attestations
        self._meter = meter
        self._authenticate_first = authenticate_first
        self._first_auth_on: int | None = None  # the socket generation it was done on
        self._retry = retry
        self._pace = pace
        self._limit = window
        pace.window = min(pace.window, window) if pace.gap > 0 else window
        self._loop = asyncio.get_running_loop()
        self._jobs: dict[str, _Job] = {}
        for event in events:
            if event.id not in self._jobs:  # the same event twice is sent once
                self._jobs[event.id] = _Job(event, event_frame(event), len(self._jobs))
        self._unfinished = len(self._jobs)
        self._ready: deque[_Job] = deque(self._jobs.values())
        self._delayed: list[tuple[float, int, _Job]] = []
        self._in_flight: dict[str, _Job] = {}
        self._auths: dict[str, _Auth] = {}
        self._auth_by_pubkey: dict[str, _Auth] = {}
        # Each author authenticated on this socket, and the challenge it answered.
        self._authed: dict[str, str] = {}
        self._anonymous: list[_Anonymous] = []
        self._generation = channel.generation
        self._lost: str | None = None
        self._rotate: str | None = None
        self._rotations = 0
        self._suspects: set[str] = set()
        self._reconnects = 0
        self._last_progress = float("-inf")
        self._next_send_at = 0.0
        self._last_sent_at = float("-inf")
        self._auth_frames: list[str] = []
        # Why the run stopped early: the relay could not be reached again after a
        # loss (``gave_up``), or it left EVENTs unanswered for the timeout (``silenced``).
        self.gave_up: RelayError | None = None
        self.silenced: RelayError | None = None

    @property
    def authenticates_first(self) -> bool:
        """Whether the run still authenticates before sending (see the module
        docstring): False once a socket sent no challenge at connect or one crossed
        the first AUTH."""
        return self._authenticate_first

    async def run(self) -> dict[str, Answer]:
        """Publish every event; return each one's answer (keyed by event id, in input order)."""
        self._channel.discard_answers()
        while self._unfinished:
            now = self._loop.time()
            self._expire(now)
            self._release_delayed(now)
            if (self._lost or self._rotate) is not None and not await self._recover():
                break
            if self._authenticate_first and self._first_auth_on != self._generation:
                await self._authenticate_authors()
            await self._send_auth_frames()
            await self._send_ready()
            if self._lost is not None or not self._unfinished:
                continue
            item = await self._channel.next_answer(self._seconds_to_wake())
            while item is not None:
                self._handle(item)
                item = self._channel.next_answer_nowait()
        return {
            job.event.id: job.answer
            for job in self._jobs.values()
            if job.answer is not None  # every job has one here; filtered for the type
        }

    # -- sending ------------------------------------------------------------------

    async def _send_ready(self) -> None:
        while (
            self._ready
            and self._lost is None
            and len(self._in_flight) < self._window()
            and self._loop.time() >= self._next_send_at
        ):
            job = self._ready.popleft()
            if job.answer is not None:
                continue
            now = self._loop.time()
            job.attempts += 1
            job.sent_at = now
            self._in_flight[job.event.id] = job
            self._last_sent_at = now
            self._next_send_at = now + self._pace.gap
            await self._send(job.frame)

    async def _authenticate_authors(self) -> None:
        """AUTH as every author with EVENTs waiting, on the challenge this socket was
        given at connect, before any of their EVENTs goes out (once per socket)."""
        self._first_auth_on = self._generation
        challenge = await self._channel.challenged(self._timeout)
        if self._channel.generation != self._generation:
            return  # the socket is gone already: on the next one
        if challenge is None:
            # The EVENTs go out as they are, and a refusal asks for AUTH the usual
            # way; no socket waits for a challenge again.
            logger.info("%s sent no AUTH challenge at connect", self._url)
            self._authenticate_first = False
            return
        by_author: dict[str, list[_Job]] = {}
        for job in self._ready:
            if job.answer is None:
                by_author.setdefault(job.event.pubkey, []).append(job)
        now = self._loop.time()
        waiting: set[str] = set()
        for pubkey, jobs in by_author.items():
            if pubkey in self._authed or pubkey in self._auth_by_pubkey:
                continue
            signer = self._signers(pubkey) if self._signers is not None else None
            if signer is None or signer.public_key.hex != pubkey:
                continue  # sent as they are; a refusal says why
            self._authenticate(signer, challenge, jobs, now, first=True)
            waiting.update(job.event.id for job in jobs)
        if waiting:
            self._ready = deque(job for job in self._ready if job.event.id not in waiting)

    def _authenticate(
        self, signer: Signer, challenge: str, jobs: list[_Job], now: float, *, first: bool
    ) -> None:
        """Queue a NIP-42 AUTH as ``signer`` on ``challenge``; ``jobs`` wait for its answer."""
        pubkey = signer.public_key.hex
        # The owner's attestation rides in every agent's AUTH, as buzz's own agents
        # send it: a relay that admits members' agents reads it there (and only
        # there: a refused AUTH leaves the socket unable to authenticate again).
        attestation = self._attestations(pubkey) if self._attestations is not None else None
        auth = auth_event(signer, self._url, challenge, int(time.time()), attestation)
        pending = _Auth(pubkey, auth.id, now, jobs, attestation is not None, challenge, first)
        if self._meter is not None:
            self._meter.handshake()
        self._auths[pending.event_id] = pending
        self._auth_by_pubkey[pubkey] = pending
        logger.info("authenticating to %s as %s (NIP-42)", self._url, pubkey)
        # Queued rather than sent here: answers are handled synchronously.
        self._auth_frames.append(auth_frame(auth))

    async def _send_auth_frames(self) -> None:
        # AUTH is sent outside the window: the events waiting for it are the window.
        while self._auth_frames and self._lost is None:
            await self._send(self._auth_frames.pop(0))

    async def _send(self, frame: str) -> None:
        try:
            await self._channel.send_text(frame)
        except RelayError as exc:
            self._lost = str(exc)

    def _window(self) -> int:
        # While an anonymous refusal is unresolved, one EVENT at a time makes the
        # next such answer attributable.
        if self._suspects:
            self._suspects = {
                s for s in self._suspects if s in self._jobs and self._jobs[s].answer is None
            }
        return 1 if self._suspects else self._pace.window

    def _seconds_to_wake(self) -> float:
        now = self._loop.time()
        wakes: list[float] = []
        if self._in_flight:
            first = next(iter(self._in_flight.values()))
            wakes.append(self._quiet_since(first.sent_at) + self._timeout)
        for auth in self._auths.values():
            wakes.append(self._quiet_since(auth.sent_at) + self._timeout)
        if self._delayed:
            wakes.append(self._delayed[0][0])
        if self._ready and len(self._in_flight) < self._window():
            wakes.append(self._next_send_at)
        if not wakes:  # pragma: no cover - every unfinished job is in one of the above
            raise AssertionError("publish run has unfinished events but nothing to wait for")
        return max(0.0, min(wakes) - now)

    # -- answers ------------------------------------------------------------------

    def _handle(self, answer: Heard | Lost) -> None:
        if isinstance(answer, Lost):
            if answer.generation == self._generation and self._lost is None:
                self._lost = answer.reason
            return
        item = answer.ok
        if not item.event_id:
            # Its candidates are the EVENTs in flight on *that* socket: one from a
            # socket we already left cannot be attributed.
            if answer.generation == self._generation:
                self._last_progress = self._loop.time()
                self._anonymous_answer(item)
            return
        self._last_progress = self._loop.time()
        if item.event_id in self._in_flight:
            self._answer(self._in_flight[item.event_id], item)
        elif item.event_id in self._auths:
            self._auth_answered(self._auths[item.event_id], item)
        else:
            self._late(item)
        self._resolve_anonymous()

    def _anonymous_answer(self, ok: OkMessage) -> None:
        anonymous = _Anonymous(ok, set(self._in_flight) | set(self._auths))
        self._anonymous.append(anonymous)
        self._resolve_anonymous()
        if classify(ok).stored or self._rotations >= self._retry.socket_rotations:
            return
        # nostr-relay answers a refusal without the event id and then delays every
        # later message on the socket (2 s, doubling with each refusal, never reset):
        # a fresh socket is cheaper. Unresolved candidates are resent one at a time.
        if any(a is anonymous for a in self._anonymous):
            self._suspects |= anonymous.candidates
        self._rotate = "an event was refused without its id; opening a fresh socket"

    def _answer(self, job: _Job, ok: OkMessage) -> None:
        del self._in_flight[job.event.id]
        for anonymous in self._anonymous:
            anonymous.candidates.discard(job.event.id)
        outcome = classify(ok)
        now = self._loop.time()
        if outcome.stored:
            self._pace.succeeded(job.sent_at, self._limit)
            self._finish(job, outcome, ok)
        elif outcome is Outcome.TEMPORARY:
            self._temporary(job, ok, now)
        elif asks_for_auth(ok):
            self._auth_required(job, ok, now)
        else:
            self._finish(job, outcome, ok)

    def _temporary(self, job: _Job, ok: OkMessage, now: float) -> None:
        job.temporary_answers += 1
        rate_limited = ok.prefix == "rate-limited"
        if rate_limited:
            self._pace.slow_down(job.sent_at, now, self._retry.max_send_gap)
            # The new spacing counts from the last EVENT sent, not from the next one.
            self._next_send_at = max(self._next_send_at, self._last_sent_at + self._pace.gap)
        allowed = self._retry.rate_limited_retries if rate_limited else self._retry.error_retries
        if job.temporary_answers > allowed:
            self._finish(job, Outcome.TEMPORARY, ok)
            return
        ready_at = now + self._retry.delay(job.temporary_answers)
        heapq.heappush(self._delayed, (ready_at, job.seq, job))
        logger.debug(
            "%s answered %s for %s; retry in %.2f s",
            self._url,
            ok.prefix,
            job.event.id,
            ready_at - now,
        )

    def _auth_required(self, job: _Job, ok: OkMessage, now: float) -> None:
        pubkey = job.event.pubkey
        challenge = self._channel.challenge
        under = self._authed.get(pubkey)
        if under is not None and challenge is not None and under != challenge:
            # The relay sent a fresh challenge since our AUTH and forgot who we are
            # (NIP-42): the refusal asks for AUTH again, under the new challenge.
            del self._authed[pubkey]
            if job.rechallenges < MAX_RECHALLENGES:
                job.rechallenges += 1
                job.auth_resent = False
        if job.auth_resent:
            self._finish(job, Outcome.PERMANENT, ok)
            return
        if pubkey in self._authed:
            # Sent before our AUTH was accepted; NIP-42 sessions last the whole socket.
            job.auth_resent = True
            self._ready.appendleft(job)
            return
        pending = self._auth_by_pubkey.get(pubkey)
        if pending is not None:
            pending.waiting.append(job)
            return
        signer = self._signers(pubkey) if self._signers is not None else None
        if challenge is None or signer is None or signer.public_key.hex != pubkey:
            why = (
                "the relay sent no AUTH challenge" if challenge is None else "no key for the author"
            )
            logger.info("%s requires AUTH for %s but %s", self._url, job.event.id, why)
            self._finish(job, Outcome.PERMANENT, ok)
            return
        self._authenticate(signer, challenge, [job], now, first=False)

    def _auth_answered(self, auth: _Auth, ok: OkMessage) -> None:
        self._drop_auth(auth)
        for anonymous in self._anonymous:
            anonymous.candidates.discard(auth.event_id)
        if classify(ok).stored:
            self._authed[auth.pubkey] = auth.challenge
            for job in reversed(auth.waiting):
                # Refused once for want of AUTH, now resent: asked again, it is final.
                # One sent after a first AUTH was never refused.
                job.auth_resent = job.auth_resent or not auth.first
                self._ready.appendleft(job)
            return
        if auth.challenge != self._channel.challenge:
            # The relay replaced the challenge while our AUTH was on its way: it refused
            # an answer to an old challenge, not the author. buzz takes one AUTH per
            # socket, refused or not, so the events go again on a fresh socket.
            logger.info("%s: %s", self._url, STALE_CHALLENGE)
            if self._rotations >= self._retry.socket_rotations:
                stale = OkMessage("", False, f"auth-required: {STALE_CHALLENGE}")
                for job in auth.waiting:
                    self._finish(job, Outcome.TEMPORARY, stale)
                return
            for job in reversed(auth.waiting):
                job.auth_resent = False
                self._ready.appendleft(job)
            # A relay that re-challenges every fresh socket at once would cross every
            # first AUTH: from now on the EVENTs go first and a refusal asks for AUTH.
            self._authenticate_first = False
            self._rotate = STALE_CHALLENGE
            return
        logger.info("%s refused our AUTH as %s: %s", self._url, auth.pubkey, ok.prefix)
        refused = OkMessage("", False, auth_refusal(self._relay, auth.pubkey, ok, auth.attested))
        for job in auth.waiting:
            self._finish(job, auth_refusal_outcome(ok), refused)

    def _drop_auth(self, auth: _Auth) -> None:
        self._auths.pop(auth.event_id, None)
        self._auth_by_pubkey.pop(auth.pubkey, None)

    def _late(self, ok: OkMessage) -> None:
        job = self._jobs.get(ok.event_id)
        outcome = classify(ok)
        if (
            job is not None
            and job.answer is not None
            and job.answer.outcome is Outcome.UNKNOWN
            and (outcome.stored or outcome is Outcome.PERMANENT)
            and not asks_for_auth(ok)
        ):
            # A definitive answer after the timeout still beats "unknown".
            job.answer = self._final_answer(job, outcome, ok)
            return
        logger.debug("%s answered %s for an event not awaiting an answer", self._url, ok.event_id)

    def _resolve_anonymous(self) -> None:
        changed = True
        while changed and self._anonymous:
            changed = False
            for anonymous in list(self._anonymous):
                if not anonymous.candidates:
                    self._anonymous.remove(anonymous)
                    logger.debug("%s: an OK without id could not be attributed", self._url)
                elif len(anonymous.candidates) == 1:
                    self._anonymous.remove(anonymous)
                    self._attribute(anonymous.candidates.pop(), anonymous.answer)
                    changed = True
            if not changed and self._anonymous:
                changed = self._attribute_all_alike()

    def _attribute_all_alike(self) -> bool:
        union = set().union(*(a.candidates for a in self._anonymous))
        first = self._anonymous[0].answer
        alike = all(
            (a.answer.accepted, a.answer.message) == (first.accepted, first.message)
            for a in self._anonymous
        )
        if len(union) != len(self._anonymous) or not alike:
            return False
        self._anonymous.clear()
        for event_id in sorted(union):
            self._attribute(event_id, first)
        return True

    def _attribute(self, event_id: str, answer: OkMessage) -> None:
        for anonymous in self._anonymous:
            anonymous.candidates.discard(event_id)
        matched = OkMessage(event_id, answer.accepted, answer.message)
        if event_id in self._in_flight:
            logger.debug("%s: OK without id attributed to %s", self._url, event_id)
            self._answer(self._in_flight[event_id], matched)
        elif event_id in self._auths:
            self._auth_answered(self._auths[event_id], matched)

    # -- time ---------------------------------------------------------------------

    def _quiet_since(self, sent_at: float) -> float:
        """Since when the relay has been silent about something sent at ``sent_at``."""
        return max(sent_at, self._last_progress, self._channel.last_heard)

    def _expire(self, now: float) -> None:
        silent = False
        for job in list(self._in_flight.values()):
            if self._quiet_since(job.sent_at) + self._timeout <= now:
                del self._in_flight[job.event.id]
                logger.info(
                    "%s: no answer for %s within %.1f s", self._url, job.event.id, self._timeout
                )
                self._finish(job, Outcome.UNKNOWN, None)
                silent = True
        for auth in list(self._auths.values()):
            if self._quiet_since(auth.sent_at) + self._timeout <= now:
                self._drop_auth(auth)
                # Never sent with the AUTH it waited for: the relay holds none of them,
                # and a relay that is silent now may answer next time.
                no_answer = OkMessage("", False, "auth-required: no answer to our AUTH")
                for job in auth.waiting:
                    self._finish(job, Outcome.TEMPORARY, no_answer)
                silent = True
        if silent:
            self._silenced()

    def _silenced(self) -> None:
        """The relay said nothing for ``timeout``: stop waiting for it, in this run and after.

        Waiting again for each window's worth of EVENTs would cost the timeout over
        and over; what it has is ``unknown``, what it never got ``temporary``.
        """
        error = TemporaryRelayError(f"no answer for {self._timeout:g} s", url=self._url)
        self.silenced = error
        unsent = OkMessage("", False, f"not sent: {error}")
        for job in self._jobs.values():
            if job.answer is None:
                self._finish(
                    job,
                    Outcome.UNKNOWN if job.attempts else Outcome.TEMPORARY,
                    None if job.attempts else unsent,
                )
        self._in_flight.clear()

    def _release_delayed(self, now: float) -> None:
        while self._delayed and self._delayed[0][0] <= now:
            _, _, job = heapq.heappop(self._delayed)
            self._ready.append(job)

    # -- connection loss ------------------------------------------------------------

    async def _recover(self) -> bool:
        """Reconnect after a loss or to rotate; False (all finished) when it cannot."""
        rotating = self._lost is None
        reason = self._lost or self._rotate or "connection lost"
        self._rotate = None
        # Whatever was awaiting an answer goes back in line, in its original order;
        # what the relay already answered is never sent again.
        returning = sorted(self._in_flight.values(), key=lambda job: job.seq)
        for auth in list(self._auths.values()):
            returning.extend(auth.waiting)
            self._drop_auth(auth)
        self._in_flight.clear()
        self._auth_frames.clear()
        # Unresolved anonymous answers go with the socket; their candidates are resent.
        self._anonymous.clear()
        self._authed.clear()
        # A NIP-42 session lasts one socket: an event sent after our AUTH on the old one
        # may be asked for AUTH again on the new one, and that is no refusal.
        for job in self._jobs.values():
            job.auth_resent = False
        self._ready.extendleft(sorted(returning, key=lambda job: job.seq, reverse=True))
        logger.info("%s: %s; %d events to resend", self._url, reason, len(returning))
        if self._channel.given_up is not None:
            self._give_up(str(self._channel.given_up))
            return False
        # Reconnecting, pauses included, fits in one timeout from here.
        deadline = self._loop.time() + self._timeout
        error: RelayError | None = None  # the last failure to reconnect, if any
        if rotating:
            self._rotations += 1
            try:
                await self._channel.reconnect()
            except RelayError as exc:
                reason, error = str(exc), exc
            else:
                self._connected()
                return True
        while self._reconnects < self._retry.reconnects:
            attempt = self._reconnects + 1
            pause = (
                self._retry.delay(attempt)
                if error is None
                else self._retry.pause_after(error, attempt)
            )
            # Permanent, or the relay asked for a wait past the deadline: give up now.
            if pause is None or self._loop.time() + pause >= deadline:
                break
            self._reconnects += 1
            await asyncio.sleep(pause)
            try:
                await self._channel.reconnect(max(0.0, deadline - self._loop.time()))
            except RelayError as exc:
                reason, error = str(exc), exc
                continue
            self._connected()
            return True
        self._give_up(reason)
        return False

    def _connected(self) -> None:
        self._generation = self._channel.generation
        self._lost = None
        self._last_progress = float("-inf")
        self._next_send_at = 0.0

    def _give_up(self, reason: str) -> None:
        logger.warning("%s: giving up after %d reconnects: %s", self._url, self._reconnects, reason)
        if self.gave_up is None:
            self.gave_up = ConnectionLost(
                f"connection lost, not restored ({reason})", url=self._url
            )
        for job in self._jobs.values():
            if job.answer is None:
                # Sent at least once: the relay may have stored it before the socket died.
                outcome = Outcome.UNKNOWN if job.attempts else Outcome.TEMPORARY
                self._finish(job, outcome, OkMessage("", False, f"connection lost ({reason})"))

    # -- final answers ------------------------------------------------------------

    def _finish(self, job: _Job, outcome: Outcome, ok: OkMessage | None) -> None:
        if job.answer is not None:
            return
        job.answer = self._final_answer(job, outcome, ok)
        self._unfinished -= 1

    def _final_answer(self, job: _Job, outcome: Outcome, ok: OkMessage | None) -> Answer:
        if ok is None:
            return Answer(self._relay, job.event.id, outcome, "", "", job.attempts)
        return Answer(self._relay, job.event.id, outcome, ok.prefix, ok.message, job.attempts)

    @property
    def _url(self) -> str:
        return self._channel.url

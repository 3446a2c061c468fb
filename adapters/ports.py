"""Ports of the adapters layer: what the reconciler and the relay client need from
the parts that touch the world, as Protocols the real parts implement.

One module for the whole layer, as :mod:`domain.ports` is for the domain: the
seams a new capability plugs into (a second transport, another signer, another
store writer) are read in one place, and each implementation names the port it
implements. The values the ports exchange live beside the code that makes them
(:mod:`adapters.relay.answers`, :mod:`adapters.sync.gateway`).

* :class:`Signer` - one identity's key: every signature goes through one
  (engrams, deletion requests, persona events, NIP-42 AUTH, NIP-98 headers,
  NIP-OA attestations);
* :class:`Transport` - one relay, over whatever wire reaches it: the websocket
  client (:class:`adapters.relay.client.RelayConnection`) and the HTTP bridge
  are its implementations; :class:`adapters.relay.client.RelayPool` drives
  several;
* :class:`Channel` - the socket a websocket publishing run drives (inside the
  websocket client);
* :class:`RelayGateway` - what the reconciler needs from all the relays at
  once: publish, and fetch engrams;
* :class:`AgentSource`, :class:`EventWriter`, :class:`KeySource` - the
  reconciler's reading and writing of the event store and the key store;
* :data:`Progress` - what the reconciler tells of an apply's progress, and
  :class:`ProgressDisplay` - what the use cases are given to show it (the
  command line's progress bar, :class:`adapters.cli.publish.ProgressBar`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from eventsourcing.domain import Aggregate

    from adapters.nostr.event import Event, UnsignedEvent
    from adapters.nostr.keys import PublicKey, SecretKey
    from adapters.relay.answers import Answer, QueryResult
    from adapters.relay.errors import RelayError
    from adapters.relay.publishing import Heard, Lost
    from adapters.relay.traffic import Traffic
    from adapters.sync.gateway import FetchResult
    from domain.aggregates import Agent


class Signer(Protocol):
    """Holds one identity's key and signs as it; the secret never leaves it."""

    @property
    def public_key(self) -> PublicKey: ...

    def sign(self, unsigned: UnsignedEvent, *, aux: bytes | None = None) -> Event:
        """``unsigned`` signed as this identity. ``aux`` is BIP-340 auxiliary
        randomness, for reproducible tests; a signer may draw its own."""
        ...

    def sign_digest(self, digest: bytes, *, aux: bytes | None = None) -> bytes:
        """The BIP-340 signature of a 32-byte digest that is not an event id (a
        NIP-OA attestation signs one)."""
        ...


SignerLookup = Callable[[str], "Signer | None"]
"""The signer of an identity (public key, hex) whose key is held here, else ``None``."""

AttestationLookup = Callable[[str], "Sequence[str] | None"]
"""An agent's owner attestation (its NIP-OA ``auth`` tag) as the log holds it, else
``None`` (no attestation, a withdrawn one, or not an agent): what a membership
relay admits the agent by (the NIP-42 AUTH event's ``auth`` tag, the HTTP
bridge's ``x-auth-tag``)."""


class Transport(Protocol):
    """One relay, over whatever wire reaches it (websocket, HTTP bridge).

    Publishing and reading report in the relay seam's one vocabulary
    (:mod:`adapters.relay.answers`), so nothing above a transport knows which
    wire was used. Where the relay wants to know who asks, the transport signs
    as the identity the call names: an event's author for a publish (NIP-42
    AUTH on a websocket, a NIP-98 header per request over HTTP), ``reader`` for
    a query.
    """

    @property
    def url(self) -> str:
        """The relay URL as written (connections go to this form)."""
        ...

    @property
    def canonical_url(self) -> str:
        """Its NIP-AE canonical form: the key results are reported under."""
        ...

    async def publish_many(
        self,
        events: Sequence[Event],
        *,
        window: int,
        timeout: float,
        signers: SignerLookup | None = None,
    ) -> dict[str, Answer]:
        """Send ``events`` exactly as given; each event's :class:`Answer` by id.

        At most ``window`` events await an answer at once; ``timeout`` bounds the
        wait for each. ``signers`` gives an author's signer when the relay wants
        the sender authenticated. Raises :class:`RelayError` only when the relay
        could not be reached at all; failures after that are answers (``unknown``
        if an event was sent, ``temporary`` if it never was).
        """
        ...

    async def query(
        self,
        filters: Sequence[Mapping[str, Any]],
        *,
        timeout: float,
        reader: Signer | None = None,
    ) -> QueryResult:
        """Stored events matching any filter, with how each filter fared.

        ``reader`` is the identity to read as on a relay that gates reads.
        Raises :class:`RelayError` only when the relay could not be reached.
        """
        ...

    def traffic(self) -> Traffic:
        """What this relay's wire has cost so far: connections opened, the most open
        at once, NIP-42 handshakes, HTTP requests (:mod:`adapters.relay.traffic`)."""
        ...

    async def close(self) -> None: ...


class Channel(Protocol):
    """One relay's websocket as a publishing run drives it (see
    :class:`adapters.relay.publishing.PublishRun`): frames out, ``OK``s in,
    reconnects."""

    @property
    def url(self) -> str:
        """The URL connected to (as written): the NIP-42 ``relay`` tag."""
        ...

    @property
    def canonical_url(self) -> str:
        """What answers are reported under."""
        ...

    @property
    def generation(self) -> int:
        """Changes on every (re)connect; answers and losses carry the one they came from."""
        ...

    @property
    def challenge(self) -> str | None:
        """The latest NIP-42 challenge on the current socket, if the relay sent one."""
        ...

    async def challenged(self, timeout: float) -> str | None:
        """The current socket's challenge, waiting up to ``timeout`` seconds for it
        (a relay may send it at connect, before anything is asked); None if none came."""
        ...

    @property
    def last_heard(self) -> float:
        """Event-loop time of the relay's latest frame (on any socket; 0: none yet)."""
        ...

    @property
    def given_up(self) -> RelayError | None:
        """Set once the relay is given up: reconnecting is pointless."""
        ...

    async def send_text(self, text: str) -> None:
        """Send one text frame; raises :class:`RelayError` if the socket is gone."""
        ...

    async def next_answer(self, timeout: float) -> Heard | Lost | None:
        """The next ``OK`` (or loss) within ``timeout`` seconds, else ``None``."""
        ...

    def next_answer_nowait(self) -> Heard | Lost | None: ...

    def discard_answers(self) -> None:
        """Forget answers left over from earlier calls (late ``OK``s)."""
        ...

    async def reconnect(self, timeout: float | None = None) -> None:
        """One attempt to open a fresh socket within ``timeout``; raises :class:`RelayError`."""
        ...


class RelayGateway(Protocol):
    """What the reconciler needs from the configured relays, all at once."""

    @property
    def urls(self) -> list[str]: ...

    async def publish(
        self,
        events: Sequence[Event],
        only: Mapping[str, Sequence[str]] | None = None,
        signers: Mapping[str, Signer] | None = None,
    ) -> dict[str, list[Answer]]:
        """Send every event to every relay (or, for an event id in ``only``, to the
        relays named there); answers per event id, one per relay it went to.

        ``signers`` are authors' signers the caller already holds (the sealer's, for
        the batch it sealed): a relay that wants each request signed by its author
        (the HTTP bridge) uses them rather than opening each key again."""
        ...

    async def fetch_engrams(
        self, authors: Sequence[str], owner: str, d_tags: Sequence[str] = ()
    ) -> FetchResult:
        """Every ``kind:30174`` event by ``authors`` tagged ``["p", owner]`` (and one of
        ``d_tags`` when given), from all relays."""
        ...

    def traffic(self) -> Mapping[str, Traffic]:
        """What each relay's wire has cost so far (canonical URL -> :class:`Traffic`)."""
        ...

    async def close(self) -> None: ...


class AgentSource(Protocol):
    """Loads the aggregates of many agents at once (see :mod:`adapters.store.loader`)."""

    def load(self, pubkeys: Sequence[str]) -> dict[str, Agent]: ...


class EventWriter(Protocol):
    """Stores aggregates' pending events in one durable transaction (see
    :mod:`adapters.store.writer`); returns once they are stored."""

    async def save(self, aggregates: Iterable[Aggregate]) -> None: ...


class KeySource(Protocol):
    """Where agents' secret keys come from (the key store), in two halves."""

    def sealed_many(self, pubkeys: Sequence[str]) -> dict[str, str]:
        """The stored (encrypted) keys of ``pubkeys`` that exist; this thread only."""
        ...

    def open_many(self, sealed: Mapping[str, str]) -> dict[str, SecretKey]:
        """Decrypt them; any thread. Each comes back as a :class:`SecretKey`, whose
        ``repr`` hides the key; the reconciler keeps each in a signer."""
        ...

    def persona_d_tags(self, pubkeys: Sequence[str]) -> dict[str, str]:
        """The ``mem/persona`` d tags kept for those agents that have one."""
        ...

    def remember_persona_d_tags(self, d_tags: Mapping[str, str]) -> None:
        """Keep d tags derived for agents that had none."""
        ...


Progress = Callable[[int, int], None]
"""Told ``(done, total)`` as an apply's batches are confirmed; ``(0, total)`` once the
reading is over and publishing starts."""


class ProgressDisplay(Protocol):
    """Shows an apply's progress: a :data:`Progress` that is also kept alive (redrawn)
    while :meth:`running`'s block runs."""

    def __call__(self, done: int, total: int) -> None: ...

    def running(self) -> AbstractAsyncContextManager[object]: ...

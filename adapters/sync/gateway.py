"""The reconciler's gateway to the relays: :class:`adapters.ports.RelayGateway`
over a :class:`adapters.relay.RelayPool`, whatever transport reaches each relay.

It turns the reconciler's two needs into relay requests: publish a batch of
signed events (each relay's :class:`adapters.relay.answers.Answer` per event),
and fetch the ``mem/persona`` engrams of a set of agents as :class:`FetchResult`
(filters sized for relays' caps; a relay that answered a filter with as many
events as relays commonly cap it at counts as not read in full).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from adapters.nostr.engram import ENGRAM_KIND
from adapters.nostr.event import Event
from adapters.relay import Answer, RelayPool
from adapters.relay.traffic import Traffic
from domain.verdict import Outcome

if TYPE_CHECKING:
    from adapters.ports import Signer, SignerLookup

# rust-nostr's relay returns at most 500 events per filter; nostr-relay may return
# several versions per author. 200 authors per filter keeps well under the cap.
AUTHORS_PER_FILTER = 200
RELAY_RESULT_CAP = 500


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What a read of every relay brought back, and which relays were read."""

    events: list[Event]  # the union over every relay, one of each id
    answered: list[str]  # relays that answered the whole query (reached EOSE)
    failed: list[str]  # relays that could not be queried, or not in full
    # Why each failed relay could not be read, for the user.
    errors: Mapping[str, str] = field(default_factory=dict)
    # Event id -> the relays that returned it: sync state is per agent and relay.
    # None when the gateway cannot tell (every event then counts as held by every
    # relay that answered).
    held: Mapping[str, Sequence[str]] | None = None


class PoolGateway:
    """Implements :class:`adapters.ports.RelayGateway`.

    ``signers`` gives the signer of an event's author (NIP-42 AUTH, NIP-98 per
    request); ``reader`` is the identity engrams are read as (the owner).
    """

    def __init__(
        self,
        pool: RelayPool,
        *,
        window: int,
        timeout: float,
        query_timeout: float,
        signers: SignerLookup | None = None,
        reader: Signer | None = None,
    ) -> None:
        self.pool = pool
        self.window = window
        self.timeout = timeout
        self.query_timeout = query_timeout
        self.signers = signers
        self.reader = reader

    @property
    def urls(self) -> list[str]:
        return self.pool.urls

    async def publish(
        self,
        events: Sequence[Event],
        only: Mapping[str, Sequence[str]] | None = None,
        signers: Mapping[str, Signer] | None = None,
    ) -> dict[str, list[Answer]]:
        results = await self.pool.publish_many(
            events,
            window=self.window,
            timeout=self.timeout,
            signers=self._signers(signers),
            only=only,
        )
        answers: dict[str, list[Answer]] = {event.id: [] for event in events}
        for url, result in results.items():
            for event in events:
                if only and event.id in only and url not in only[event.id]:
                    continue  # not sent there
                answer = result.answers.get(event.id)
                if answer is None:
                    answer = Answer(url, event.id, Outcome.UNKNOWN)
                elif answer.outcome is Outcome.UNKNOWN and not answer.message:
                    answer = Answer(
                        url,
                        event.id,
                        Outcome.UNKNOWN,
                        answer.prefix,
                        f"no answer within {self.timeout:g} s",
                        answer.attempts,
                    )
                answers[event.id].append(answer)
        return answers

    def _signers(self, held: Mapping[str, Signer] | None) -> SignerLookup | None:
        """The caller's signers first, then the gateway's own lookup (the key store)."""
        if not held:
            return self.signers
        fallback = self.signers

        def lookup(pubkey: str) -> Signer | None:
            signer = held.get(pubkey)
            if signer is None and fallback is not None:
                return fallback(pubkey)
            return signer

        return lookup

    async def fetch_engrams(
        self, authors: Sequence[str], owner: str, d_tags: Sequence[str] = ()
    ) -> FetchResult:
        filters: list[dict[str, object]] = []
        for start in range(0, len(authors), AUTHORS_PER_FILTER):
            filter_: dict[str, object] = {
                "kinds": [ENGRAM_KIND],
                "authors": list(authors[start : start + AUTHORS_PER_FILTER]),
                "#p": [owner],
            }
            if d_tags:
                filter_["#d"] = list(d_tags[start : start + AUTHORS_PER_FILTER])
            filters.append(filter_)
        result = await self.pool.query(filters, timeout=self.query_timeout, reader=self.reader)
        answered = []
        errors: dict[str, str] = {}
        for url in result.answered:
            # A subscription that returned as many events as relays commonly cap a
            # filter at may have been cut short: what it lacks cannot be known.
            subs = result.per_relay[url].subscriptions
            if any(sub.count >= RELAY_RESULT_CAP for sub in subs):
                errors[url] = f"answered {RELAY_RESULT_CAP} events to one filter: maybe cut short"
            else:
                answered.append(url)
        for url in result.partial:
            closed = [s.closed for s in result.per_relay[url].subscriptions if s.closed]
            errors[url] = (
                f"closed the request: {closed[0]}" if closed else "did not finish answering in time"
            )
        for url, exc in result.failed.items():
            errors[url] = str(exc) or type(exc).__name__
        held: dict[str, list[str]] = {}
        for url, answer in result.per_relay.items():
            for event in answer.events:
                relays = held.get(event.id)
                if relays is None:
                    held[event.id] = [url]
                else:
                    relays.append(url)
        return FetchResult(
            events=list(result.events),
            answered=answered,
            failed=list(errors),
            errors=errors,
            held=held,
        )

    def traffic(self) -> Mapping[str, Traffic]:
        return self.pool.traffic()

    async def close(self) -> None:
        await self.pool.close()

"""The reconciler's relay port over :class:`adapters.relay.RelayPool`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from adapters.nostr.engram import ENGRAM_KIND
from adapters.nostr.event import Event
from adapters.relay import Outcome as WireOutcome
from adapters.relay import RelayPool, Signer
from adapters.sync.gateway import Answer, Fetched, Outcome

# rust-nostr's relay returns at most 500 events per filter; nostr-relay may return
# several versions per author. 200 authors per filter keeps well under the cap.
AUTHORS_PER_FILTER = 200
RELAY_RESULT_CAP = 500

# An AUTH the relay still refused is a policy answer: permanent, like restricted:.
_OUTCOMES = {
    WireOutcome.ACCEPTED: Outcome.ACCEPTED,
    WireOutcome.DUPLICATE: Outcome.DUPLICATE,
    WireOutcome.TEMPORARY: Outcome.TEMPORARY,
    WireOutcome.PERMANENT: Outcome.PERMANENT,
    WireOutcome.AUTH_REQUIRED: Outcome.PERMANENT,
    WireOutcome.UNKNOWN: Outcome.UNKNOWN,
}


class PoolGateway:
    def __init__(
        self,
        pool: RelayPool,
        *,
        window: int,
        timeout: float,
        query_timeout: float,
        signer: Signer | None = None,
    ) -> None:
        self.pool = pool
        self.window = window
        self.timeout = timeout
        self.query_timeout = query_timeout
        self.signer = signer

    @property
    def urls(self) -> list[str]:
        return self.pool.urls

    async def publish(
        self, events: Sequence[Event], only: Mapping[str, Sequence[str]] | None = None
    ) -> dict[str, list[Answer]]:
        reports = await self.pool.publish_many(
            events, window=self.window, timeout=self.timeout, signer=self.signer, only=only
        )
        answers: dict[str, list[Answer]] = {event.id: [] for event in events}
        for url, report in reports.items():
            for event in events:
                if only and event.id in only and url not in only[event.id]:
                    continue  # not sent there
                result = report.results.get(event.id)
                if result is None:
                    answers[event.id].append(Answer(url, Outcome.UNKNOWN))
                    continue
                outcome = _OUTCOMES[result.outcome]
                message = result.message
                if outcome is Outcome.UNKNOWN and not message:
                    message = f"no answer within {self.timeout:g} s"
                answers[event.id].append(Answer(url, outcome, result.prefix, message))
        return answers

    async def fetch_engrams(
        self, authors: Sequence[str], owner: str, d_tags: Sequence[str] = ()
    ) -> Fetched:
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
        result = await self.pool.query(filters, timeout=self.query_timeout)
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
        return Fetched(
            events=list(result.events),
            answered=answered,
            failed=list(errors),
            errors=errors,
            held=held,
        )

    async def close(self) -> None:
        await self.pool.close()

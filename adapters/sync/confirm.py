"""Confirming: read back what a batch sent, judge it, and record the verdict.

Not only what the ack policy accepted is read back: an OK can be lost on its
way back (the relay stored the event, the answer timed out), and our own event
read back as the head is proof that it landed. Only what every relay refused
for good is not asked for. The verdict itself is the domain's
(:func:`domain.verdict.judge`); this room gathers its inputs and records what
it decides on the agent:

* published - ``Published`` (with how it was confirmed and the relays holding it);
* tombstoned - ``Tombstoned`` (with the deletion request's answers);
* conflict - the relays' answers, then ``HeadObserved`` for the head it lost
  to (with who wrote it: the planner's policy for another writer's head reads
  it), then ``ConflictDetected``;
* failed - the answers, and ``PublishFailed`` when no relay will ever take it;
* unknown - the answers (``RelaysAnswered``): the next apply resends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from adapters.ports import EventWriter
from adapters.sync.heads import HeadReader, RelayHead
from adapters.sync.report import AgentVerdict
from adapters.sync.sealing import Work
from domain.aggregates import Agent
from domain.planner import HeadOrigin
from domain.verdict import Outcome, ReadBack, Sent, Verdict, judge, outranks, refused_by_all


async def confirm(
    work: Sequence[Work],
    reader: HeadReader,
    load: Callable[[Sequence[str]], dict[str, Agent]],
    writer: EventWriter,
    *,
    ack_all: bool = False,
) -> list[AgentVerdict]:
    """Read back the heads of everything some relay may hold, record each verdict,
    and store the agents' new events."""
    ours = {
        w.command.pubkey: w.event for w in work if not refused_by_all(a.outcome for a in w.answers)
    }
    heads = await reader.read_heads(list(ours), ours) if ours else {}
    # Who wrote a head that beat ours is judged from the agent's history, which
    # the handle the seal was recorded on does not hold: load the few that lost.
    lost = [
        w.command.pubkey
        for w in work
        if (head := heads.get(w.command.pubkey)) is not None
        and head.event_id not in (None, w.event.id)
        and outranks(head.created_at or 0, head.event_id or "", w.event.created_at, w.event.id)
    ]
    histories = load(lost) if lost else {}
    verdicts = [
        record_verdict(
            w, heads.get(w.command.pubkey), histories.get(w.command.pubkey), ack_all=ack_all
        )
        for w in work
    ]
    await writer.save(w.agent for w in work)
    return verdicts


def record_verdict(
    w: Work, head: RelayHead | None, history: Agent | None, *, ack_all: bool = False
) -> AgentVerdict:
    """Judge one item of work and record the verdict on its agent (see the module
    docstring); ``history`` is the agent's history when another head beat ours."""
    command, agent, event = w.command, w.agent, w.event
    sent = Sent(event.id, event.created_at, w.deletion is not None, not command.relays)
    read_back = None if head is None else ReadBack(head.event_id, head.created_at, head.relays)
    judgement = judge(sent, [(a.relay, a.outcome) for a in w.answers], read_back, ack_all=ack_all)
    verdict = judgement.verdict
    records = [a.as_dict() for a in w.answers]
    acked = [a.relay for a in w.answers if a.outcome.stored]
    slug = command.persona_slug
    if verdict is Verdict.TOMBSTONED:
        assert w.deletion is not None
        agent.record_tombstoned(
            event.id,
            w.deletion.id,
            acked,
            records,
            [a.as_dict() for a in w.deletion_answers],
        )
        return AgentVerdict(command.pubkey, slug, verdict, event.id)
    if verdict is Verdict.PUBLISHED:
        assert head is not None
        agent.record_published(
            event.id,
            command.digest,
            command.secrets_digest,
            acked,
            records,
            judgement.confirmed_by,
            list(head.relays),
        )
        # Published by the relays that hold it; one that refused it, or neither
        # answered nor returned it, is named (the next apply sends it there again).
        lacking = [a for a in w.answers if not a.outcome.stored and a.relay not in head.relays]
        detail = "; ".join(a.describe() for a in lacking)
        return AgentVerdict(
            command.pubkey,
            slug,
            verdict,
            event.id,
            f"not held by every relay: {detail}" if detail else "",
            tuple(a.relay for a in lacking if a.outcome is Outcome.PERMANENT),
        )
    agent.record_answers(event.id, records)
    if verdict is Verdict.CONFLICT:
        assert head is not None
        assert head.event_id is not None
        # The head it lost to, and who wrote it: the planner's policy for another
        # writer's head reads it (see domain.planner.assess).
        origin = (
            history.origin_of(head.event_id, head.digest, head.created_at)
            if history is not None
            else HeadOrigin.FOREIGN.value
        )
        agent.record_observed(
            head.event_id,
            head.created_at,
            head.digest,
            head.secrets_digest,
            head.state,
            list(head.read),
            origin,
            list(head.relays),
        )
        agent.record_conflict(
            event.id,
            command.digest,
            head.event_id,
            head.created_at,
            "another writer's engram is the head",
        )
        return AgentVerdict(
            command.pubkey,
            slug,
            verdict,
            event.id,
            f"another writer's engram is the head ({head.event_id})",
        )
    detail = "; ".join(a.describe() for a in w.answers)
    if verdict is Verdict.FAILED:
        if judgement.final:
            # Sent everywhere and refused everywhere: it will never land.
            agent.record_failed(event.id, f"refused by every relay: {detail}")
        # A resend to the relays that lack it was refused there, while others
        # hold it: it stays the agent's current engram (never sealed anew for
        # this), and the next apply asks those relays again.
        return AgentVerdict(command.pubkey, slug, verdict, event.id, detail)
    if judgement.note:
        # Acknowledged, yet not confirmed: say which half of the confirmation failed.
        detail += f"; {judgement.note}"
    return AgentVerdict(command.pubkey, slug, verdict, event.id, detail or "no relay")

"""Random histories of personas, agents and publications, checked against a model.

The model is a dictionary of what each agent carries, on which relays, and
what its persona now is; an agent needs a command exactly when the two differ,
unless what it carries is another writer's new content (a conflict: by default
it waits for a person, with the self-heal policy it is planned too), or when
it carries its persona's version but a configured relay lacks it. A retired
agent, or one whose persona is deleted, gets no new engram, but its engram is
due a tombstone while the head is still the one we published (or a tombstone
of ours awaits confirmation) and its key is still here. After every step the
engine's plan must name exactly those agents, the incremental view must equal
a full replay, planning twice must agree, and retired agents and deleted
personas must get no command.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from domain.aggregates import Agent
from domain.application import FleetApplication, NewAgent
from domain.planner import Action, ForeignHeads, HeadOrigin, PublishCommand
from projections.view import FleetView
from tests.fleet_support import definition, make_fleet, pubkey, replayed, snapshot
from tests.support.examples import examples

SLUGS = ("alpha", "beta", "gamma")
PROMPTS = ("be brief", "be kind", "be precise")
SECRETS = (None, "s1", "s2")
RELAYS = ("ws://relay", "ws://other", "ws://third")


@dataclass
class ModelPersona:
    version: tuple[str, str]  # (digest, secrets digest)
    deleted: bool = False


@dataclass
class ModelAgent:
    slug: str
    retired: bool = False
    carries: tuple[str, str] | None = None
    pending: tuple[str, str] | None = None
    foreign: bool = False  # what it carries is another writer's new content
    held: frozenset[str] = frozenset()  # the relays holding what it carries
    ours: bool = False  # what it carries is our own published event
    tombstone_pending: str | None = None  # a sealed tombstone's event id
    key_destroyed: bool = False


@dataclass
class Model:
    personas: dict[str, ModelPersona] = field(default_factory=dict)
    agents: dict[str, ModelAgent] = field(default_factory=dict)
    relays: list[str] = field(default_factory=list)

    def out_of_date(self, self_heal: bool = False) -> set[str]:
        due = set()
        for key, agent in self.agents.items():
            persona = self.personas.get(agent.slug)
            if agent.retired or persona is None or persona.deleted:
                continue
            # A seal for the wanted version is resent whoever holds the head.
            held = agent.foreign and not self_heal and agent.pending != persona.version
            if agent.carries != persona.version:
                if not held:
                    due.add(key)
            elif self.lacking(agent):
                due.add(key)
        return due

    def lacking(self, agent: ModelAgent) -> list[str]:
        return [r for r in self.relays if r not in agent.held]

    def tombstones_due(self) -> set[str]:
        due = set()
        for key, agent in self.agents.items():
            persona = self.personas.get(agent.slug)
            laid_to_rest = agent.retired or persona is None or persona.deleted
            if (
                laid_to_rest
                and not agent.key_destroyed
                and agent.carries is not None
                and (agent.ours or agent.tombstone_pending is not None)
            ):
                due.add(key)
        return due


class FleetMachine(RuleBasedStateMachine):
    kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.next_agent = 1
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @initialize()
    def start(self) -> None:
        tmp = None
        if self.kind == "sqlite":
            self._tmp = tempfile.TemporaryDirectory()
            tmp = Path(self._tmp.name)
        self.app: FleetApplication
        self.view: FleetView
        self.app, self.view = make_fleet(self.kind, tmp)

    def teardown(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    def _agent(self, key: str) -> Agent:
        return self.app.get_agent(key)

    def _draw_command(self, data: st.DataObject) -> PublishCommand | None:
        """One of the commands the engine plans right now, if there are any."""
        self.view.catch_up()
        commands = self.view.plan()
        return data.draw(st.sampled_from(commands)) if commands else None

    def _handle(self, command: PublishCommand) -> Agent:
        return Agent.at_version(
            UUID(command.agent_id), command.pubkey, command.persona_slug, command.agent_version
        )

    def _new_event_id(self) -> str:
        self.next_agent += 1
        return f"{self.next_agent:064x}"

    def _live_personas(self) -> list[str]:
        return [s for s, p in self.model.personas.items() if not p.deleted]

    def _live_agents(self) -> list[str]:
        return [k for k, a in self.model.agents.items() if not a.retired]

    @rule(
        slug=st.sampled_from(SLUGS),
        prompt=st.sampled_from(PROMPTS),
        secret=st.sampled_from(SECRETS),
    )
    def save_persona(self, slug: str, prompt: str, secret: str | None) -> None:
        saved = self.app.save_persona(slug, definition(prompt, secret), "tester")
        old = self.model.personas.get(slug)
        version = (saved.digest, saved.secrets_digest)
        assert saved.changed == (old is None or old.deleted or old.version != version)
        self.model.personas[slug] = ModelPersona(version)

    @precondition(lambda self: self._live_personas())
    @rule(data=st.data())
    def delete_persona(self, data: st.DataObject) -> None:
        slug = data.draw(st.sampled_from(self._live_personas()))
        self.app.delete_persona(slug, "tester")
        self.model.personas[slug].deleted = True

    @precondition(lambda self: self._live_personas())
    @rule(data=st.data(), count=st.integers(1, 3))
    def create_agents(self, data: st.DataObject, count: int) -> None:
        slug = data.draw(st.sampled_from(self._live_personas()))
        new = []
        for _ in range(count):
            key = pubkey(self.next_agent)
            self.next_agent += 1
            new.append(NewAgent(key, slug, key[-4:]))
            self.model.agents[key] = ModelAgent(slug)
        self.app.create_agents(new, "tester")

    @precondition(lambda self: self._live_agents() and len(self._live_personas()) > 1)
    @rule(data=st.data())
    def move_agent(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(self._live_agents()))
        agent = self.model.agents[key]
        target = data.draw(st.sampled_from([s for s in self._live_personas() if s != agent.slug]))
        self.app.move_agent(key, target, "tester")
        agent.slug = target

    @precondition(lambda self: self._live_agents())
    @rule(data=st.data())
    def retire_agent(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(self._live_agents()))
        self.app.retire_agent(key, "tester")
        self.model.agents[key].retired = True

    @precondition(
        lambda self: any(a.retired and not a.key_destroyed for a in self.model.agents.values())
    )
    @rule(data=st.data())
    def destroy_a_retired_agents_key(self, data: st.DataObject) -> None:
        keys = [k for k, a in self.model.agents.items() if a.retired and not a.key_destroyed]
        key = data.draw(st.sampled_from(keys))
        self.app.record_key_destroyed(key, "tester")
        self.model.agents[key].key_destroyed = True

    @rule(data=st.data())
    def seal_without_confirmation(self, data: st.DataObject) -> None:
        """A crash after sealing: the command stays, and becomes a resend."""
        command = self._draw_command(data)
        if command is None:
            return
        agent = self._agent(command.pubkey)
        event_id = self._new_event_id()
        if command.action is Action.TOMBSTONE:
            deletion = {"id": self._new_event_id(), "pubkey": command.pubkey}
            agent.record_tombstone_sealed(
                {"id": event_id, "pubkey": command.pubkey},
                deletion,
                [r.value for r in command.reasons],
                list(command.causes),
            )
            self.app.save(agent)
            self.model.agents[command.pubkey].tombstone_pending = event_id
            self.view.catch_up()
            again = {c.pubkey: c for c in self.view.plan()}
            assert again[command.pubkey].resend_event_id == event_id
            return
        agent.record_sealed(
            {"id": event_id, "pubkey": command.pubkey},
            command.persona_slug,
            command.digest,
            command.secrets_digest,
            [r.value for r in command.reasons],
            list(command.causes),
        )
        self.app.save(agent)
        self.model.agents[command.pubkey].pending = (command.digest, command.secrets_digest)
        self.view.catch_up()
        again = {c.pubkey: c for c in self.view.plan()}
        assert again[command.pubkey].resend_event_id == event_id

    @rule(url=st.sampled_from(RELAYS))
    def add_relay(self, url: str) -> None:
        added = self.app.add_relay(url, "tester")
        assert added == (url not in self.model.relays)
        if added:
            self.model.relays.append(url)

    @precondition(lambda self: self.model.relays)
    @rule(data=st.data())
    def remove_relay(self, data: st.DataObject) -> None:
        url = data.draw(st.sampled_from(self.model.relays))
        self.app.remove_relay(url, "tester")
        self.model.relays.remove(url)

    @rule(data=st.data())
    def apply_one_command(self, data: st.DataObject) -> None:
        command = self._draw_command(data)
        if command is None:
            return
        # As apply does: recorded at the version the plan was made at, unreplayed.
        agent = self._handle(command)
        model = self.model.agents[command.pubkey]
        if command.action is Action.TOMBSTONE:
            agent.record_tombstoned(
                self._new_event_id(), self._new_event_id(), ["ws://relay"], [], []
            )
            self.app.save(agent)
            model.carries, model.ours, model.tombstone_pending = None, False, None
            model.foreign = False
            self.view.catch_up()
            assert command.key not in {c.key for c in self.view.plan()}
            return
        # The read-back found it on some of the relays (all of them, when it worked).
        held = (
            data.draw(st.sets(st.sampled_from(self.model.relays))) if self.model.relays else set()
        )
        event_id = command.resend_event_id or self._new_event_id()
        agent.record_published(
            event_id,
            command.digest,
            command.secrets_digest,
            sorted(held),
            [],
            held_by=sorted(held),
        )
        self.app.save(agent)
        model = self.model.agents[command.pubkey]
        model.carries = (command.digest, command.secrets_digest)
        model.pending = None
        model.foreign = False
        model.held = frozenset(held)
        model.tombstone_pending = None
        model.ours = True
        self.view.catch_up()
        if not self.model.lacking(model):
            assert command.key not in {c.key for c in self.view.plan()}

    @rule(data=st.data())
    def relays_answer_without_a_verdict(self, data: st.DataObject) -> None:
        """A send nobody confirmed: recorded, and the plan stays as it was."""
        command = self._draw_command(data)
        if command is None:
            return
        agent = self._handle(command)
        agent.record_answers(self._new_event_id(), [{"relay": "ws://relay", "outcome": "unknown"}])
        self.app.save(agent)

    @precondition(lambda self: self._live_agents())
    @rule(
        data=st.data(),
        prompt=st.sampled_from(PROMPTS),
        origin=st.sampled_from([o.value for o in HeadOrigin if o is not HeadOrigin.OURS]),
    )
    def observe_a_relay_head(self, data: st.DataObject, prompt: str, origin: str) -> None:
        """Refresh found some engram on the relays, written by someone else: new
        content, a stale copy, or (in history recorded before heads were judged)
        nobody knows."""
        key = data.draw(st.sampled_from(self._live_agents()))
        content = definition(prompt).content
        digest, secrets = content.digest(), data.draw(st.sampled_from(["x" * 64, "y" * 64]))
        agent = self._agent(key)
        held = data.draw(st.sets(st.sampled_from(RELAYS)))
        agent.record_observed(
            "e" * 64, 1, digest, secrets, "valid", list(RELAYS), origin, sorted(held)
        )
        self.app.save(agent)
        model = self.model.agents[key]
        model.carries = (digest, secrets)
        model.foreign = origin == HeadOrigin.FOREIGN
        model.held = frozenset(held)
        model.ours = False

    @invariant()
    def the_plan_names_exactly_the_out_of_date_agents(self) -> None:
        if not hasattr(self, "view"):
            return
        self.view.catch_up()
        first = self.view.plan()
        publish = [c for c in first if c.action is Action.PUBLISH]
        tombstones = [c for c in first if c.action is Action.TOMBSTONE]
        assert {c.pubkey for c in publish} == self.model.out_of_date()
        assert {c.pubkey for c in tombstones} == self.model.tombstones_due()
        assert self.view.plan() == first, "planning twice must give the same commands"
        healing = self.view.plan(foreign_heads=ForeignHeads.SELF_HEAL)
        assert {c.pubkey for c in healing if c.action is Action.PUBLISH} == (
            self.model.out_of_date(self_heal=True)
        )
        for command in tombstones:
            agent = self.model.agents[command.pubkey]
            assert command.resend_event_id == agent.tombstone_pending
            assert (command.digest, command.secrets_digest) == agent.carries
            assert command.agent_version == self._agent(command.pubkey).version
        for command in publish:
            agent = self.model.agents[command.pubkey]
            assert not agent.retired
            assert not self.model.personas[agent.slug].deleted
            assert (command.digest, command.secrets_digest) == self.model.personas[
                agent.slug
            ].version
            version = (command.digest, command.secrets_digest)
            lacking = self.model.lacking(agent)
            # A sealed event for this version goes out again, never a second seal; so
            # does our own published event, to the relays that lack it.
            partial = agent.carries == version and agent.ours and bool(lacking)
            expect_resend = agent.pending == version or partial
            assert (command.resend_event_id is not None) == expect_resend
            if partial and agent.pending != version:
                assert list(command.relays) == lacking
            else:
                assert command.relays == ()
            # What apply records its events at (see Agent.at_version).
            assert command.agent_version == self._agent(command.pubkey).version

    @rule()
    def rebuild_the_view(self) -> None:
        self.view.catch_up()
        before = snapshot(self.view)
        self.view.rebuild()
        assert snapshot(self.view) == before, "a rebuild must give what the increments gave"

    @invariant()
    def the_incremental_view_equals_a_full_replay(self) -> None:
        if not hasattr(self, "view"):
            return
        self.view.catch_up()
        assert snapshot(self.view) == replayed(self.view)


class SQLiteFleetMachine(FleetMachine):
    kind = "sqlite"


TestFleetOnMemory = FleetMachine.TestCase
TestFleetOnMemory.settings = settings(
    max_examples=examples(200),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestFleetOnSQLite = SQLiteFleetMachine.TestCase
TestFleetOnSQLite.settings = settings(
    max_examples=examples(40),
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

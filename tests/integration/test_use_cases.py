"""The use cases, called as a library (no argparse, no printing) against a real relay."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.bootstrap import Fleet, bootstrap, init
from adapters.cli.main import main
from adapters.locking import apply_lock
from adapters.nostr.keys import SecretKey
from adapters.settings import Settings
from adapters.usecases.agents import create_agents, list_agents, move_agent, retire_agent
from adapters.usecases.apply import (
    NO_RELAYS,
    ApplyRequest,
    Publication,
    apply,
    publish,
    refresh,
)
from adapters.usecases.filters import Filters
from adapters.usecases.keys import BackupLine, export_keys, import_keys
from adapters.usecases.personas import (
    delete_persona,
    list_personas,
    save_persona,
    show_persona,
)
from adapters.usecases.relays import add_relay, list_relays, remove_relay
from adapters.usecases.reports import audit as audit_of
from adapters.usecases.reports import plan, status
from domain.application import NewAgent, UnknownPersona
from domain.persona import PersonaContent, PersonaDefinition
from domain.planner import Status
from projections.audit import AgentAudit, PersonaAudit
from projections.view import FleetView
from tests.e2e.harness import base_environ

pytestmark = pytest.mark.timeout(120)

WRITER = PersonaDefinition(
    PersonaContent(display_name="Writer", system_prompt="Write."), {"KEY": "one"}
)
AGENTS = 3


def environ(tmp_path: Path) -> dict[str, str]:
    return base_environ(FLEETSYNC_HOME=str(tmp_path / "home"), FLEETSYNC_RELAY_TIMEOUT="5")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings.load(environ=environ(tmp_path))
    init(settings)
    return settings


@pytest.fixture
def fleet(settings: Settings, nostr_relay_url: str) -> Iterator[Fleet]:
    """A home with one relay, a persona and its agents, none of them published yet."""
    with bootstrap(settings) as fleet:
        fleet.app.add_relay(nostr_relay_url, "test")
        fleet.app.save_persona("writer", WRITER, "test")
        keys = [SecretKey.generate() for _ in range(AGENTS)]
        fleet.keystore.put_many(keys)
        fleet.app.create_agents(
            [NewAgent(k.public_key.hex, "writer", f"w{i}") for i, k in enumerate(keys)], "test"
        )
        yield fleet


@pytest.fixture
def catch_ups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each FleetView.catch_up call, as the number of records it folded."""
    calls: list[int] = []
    original = FleetView.catch_up

    def counted(view: FleetView, attempts: int = 5) -> int:
        folded = original(view, attempts)
        calls.append(folded)
        return folded

    monkeypatch.setattr(FleetView, "catch_up", counted)
    return calls


def test_apply_publishes_every_agent_and_a_second_apply_finds_nothing_to_do(fleet: Fleet) -> None:
    report = apply(fleet, ApplyRequest())
    assert report.summary()["published"] == AGENTS
    assert report.converged
    assert report.verified
    again = apply(fleet, ApplyRequest())
    assert again.summary()["unchanged"] == AGENTS
    assert again.verdicts == ()


def test_an_apply_catches_the_view_up_once_and_again_only_to_fold_what_its_refresh_recorded(
    fleet: Fleet, catch_ups: list[int]
) -> None:
    apply(fleet, ApplyRequest(filters=Filters(persona="writer")))
    assert len(catch_ups) == 2
    assert catch_ups[1] > 0, "the second one folds the refresh's records"
    catch_ups.clear()
    apply(fleet, ApplyRequest(refresh=False))
    assert len(catch_ups) == 1


def test_the_apply_command_catches_the_view_up_once_before_it_plans(
    fleet: Fleet, catch_ups: list[int], tmp_path: Path
) -> None:
    out = io.StringIO()
    code = main(
        ["apply", "--json", "--no-refresh"],
        stdin=io.BytesIO(),
        stdout=out,
        stderr=io.StringIO(),
        environ=environ(tmp_path),
    )
    assert code == 0, out.getvalue()
    assert len(catch_ups) == 1


def test_an_apply_resolves_its_filters_and_refuses_one_naming_nothing(fleet: Fleet) -> None:
    report = apply(fleet, ApplyRequest(filters=Filters(agent="w1")))
    assert [o.verdict for o in report.verdicts] == ["published"]
    with pytest.raises(UnknownPersona):
        apply(fleet, ApplyRequest(filters=Filters(persona="nobody")))


def test_publish_after_a_change_is_an_apply_of_just_those_agents(fleet: Fleet) -> None:
    one = fleet.view().agents()[0].pubkey
    publication = publish(fleet, only=[one])
    assert publication.report is not None
    assert [(o.pubkey, o.verdict) for o in publication.report.verdicts] == [(one, "published")]
    rest = apply(fleet, ApplyRequest())
    assert rest.summary()["published"] == AGENTS - 1


def test_publish_while_another_apply_holds_the_home_reports_the_error_and_raises_nothing(
    fleet: Fleet, settings: Settings
) -> None:
    with apply_lock(settings.home):
        publication = publish(fleet, persona="writer")
    assert publication.report is None
    assert publication.error is not None
    assert "another fleetsync apply" in publication.error


def test_publish_without_relays_is_skipped_not_failed(settings: Settings) -> None:
    with bootstrap(settings) as fleet:
        assert publish(fleet, persona="writer") == Publication(skipped=NO_RELAYS)


def test_refresh_reads_every_live_agent_and_counts_what_it_confirmed(fleet: Fleet) -> None:
    apply(fleet, ApplyRequest())
    result = refresh(fleet)
    assert (result.agents, result.observed, result.verified) == (AGENTS, 0, True)
    assert result.read == tuple(fleet.app.relay_urls())


# -- personas, agents, relays and the read side, as a library --------------------------


class Refused(Exception):
    """What a confirm callback raises to refuse."""


def refuse(what: str) -> None:
    raise Refused(what)


def test_a_saved_persona_is_published_to_its_agents_at_once(fleet: Fleet) -> None:
    apply(fleet, ApplyRequest())
    edited = PersonaDefinition(WRITER.content, {"KEY": "two"})
    result = save_persona(fleet, "writer", edited)
    assert result.saved.changed
    assert result.saved.revision == 2
    assert result.agents == AGENTS
    assert result.publication.report is not None
    assert result.publication.report.summary()["published"] == AGENTS
    again = save_persona(fleet, "writer", edited)
    assert not again.saved.changed
    assert again.publication == Publication(skipped="persona unchanged")


def test_a_save_asked_not_to_publish_leaves_the_plan_to_apply(fleet: Fleet) -> None:
    result = save_persona(fleet, "writer", PersonaDefinition(WRITER.content, {}), publish_now=False)
    assert result.publication.skipped == "--no-apply"
    assert len(plan(fleet).commands) == AGENTS


def test_a_shown_persona_names_its_secrets_and_never_holds_their_values(fleet: Fleet) -> None:
    save_persona(fleet, "writer", PersonaDefinition(WRITER.content, {"KEY": "s3cret-v4lue"}))
    shown = show_persona(fleet, "writer", history=True)
    assert shown.env_names == ("KEY",)
    assert "s3cret-v4lue" not in repr(shown)
    assert shown.history is not None
    assert [v.change for v in shown.history] == ["created", "secrets"]
    assert [p.slug for p in list_personas(fleet)] == ["writer"]


def test_deleting_a_persona_with_live_agents_asks_first_and_a_refusal_changes_nothing(
    fleet: Fleet,
) -> None:
    with pytest.raises(Refused):
        delete_persona(fleet, "writer", confirm=refuse)
    assert not show_persona(fleet, "writer").deleted
    asked: list[str] = []
    result = delete_persona(fleet, "writer", confirm=asked.append, publish_now=False)
    assert result.live == AGENTS
    assert result.publication is None
    assert "3 live agent(s)" in asked[0]
    assert list_personas(fleet) == ()
    assert [p.slug for p in list_personas(fleet, include_deleted=True)] == ["writer"]


def test_created_agents_are_published_and_only_they(fleet: Fleet) -> None:
    added = create_agents(fleet, "writer", 2, name="scout")
    assert [a.name for a in added.agents] == ["scout-1", "scout-2"]
    assert all(a.npub.startswith("npub1") for a in added.agents)
    report = added.publication.report
    assert report is not None
    assert sorted(o.pubkey for o in report.verdicts) == sorted(a.pubkey for a in added.agents)
    assert len(plan(fleet).commands) == AGENTS  # the others wait for an apply
    assert len(list_agents(fleet, "writer")) == AGENTS + 2


def test_a_moved_agent_follows_its_new_persona(fleet: Fleet) -> None:
    save_persona(fleet, "reader", PersonaDefinition(WRITER.content, {}))
    moved = move_agent(fleet, "w0", "reader")
    assert [a.pubkey for a in list_agents(fleet, "reader")] == [moved.pubkey]


def test_retiring_with_the_key_destroyed_tombstones_first_then_destroys_the_key(
    fleet: Fleet,
) -> None:
    apply(fleet, ApplyRequest())
    with pytest.raises(Refused):
        retire_agent(fleet, "w1", destroy_key=True, confirm=refuse)
    result = retire_agent(fleet, "w1", destroy_key=True, confirm=lambda what: None)
    assert (result.key_destroyed, result.tombstone_due) == (True, False)
    assert fleet.keystore.get_many([result.pubkey]) == {}
    rows = {a.pubkey: a for a in list_agents(fleet, include_retired=True)}
    assert rows[result.pubkey].retired


def test_relays_are_kept_in_canonical_form_and_an_added_one_counts_the_agents_it_lacks(
    fleet: Fleet,
) -> None:
    added = add_relay(fleet, "WSS://Relay.Example.com:443/")
    assert added.url == "wss://relay.example.com"
    assert (added.added, added.lacking) == (True, AGENTS)
    assert add_relay(fleet, "wss://relay.example.com").added is False
    remove_relay(fleet, "wss://relay.example.com/")
    assert "wss://relay.example.com" not in list_relays(fleet)


def test_plan_and_status_agree_with_what_an_apply_then_does(fleet: Fleet) -> None:
    before = plan(fleet, Filters(persona="writer"))
    assert len(before.commands) == AGENTS
    assert set(before.rows) == {c.pubkey for c in before.commands}
    assert before.unverified == before.relays  # never read yet
    apply(fleet, ApplyRequest())
    after = plan(fleet)
    assert after.commands == ()
    assert after.unverified == ()
    counts = status(fleet)
    assert counts.totals == {Status.IN_SYNC.value: AGENTS}
    assert counts.counts["writer"] == counts.totals


def test_an_audit_is_of_the_agent_or_the_persona_the_filters_name(fleet: Fleet) -> None:
    apply(fleet, ApplyRequest())
    agent = audit_of(fleet, Filters(agent="w2"))
    assert isinstance(agent, AgentAudit)
    # The apply that published it, and what it cost each relay's wire.
    assert [e.what for e in agent.entries][-2:] == ["published", "relay traffic"]
    persona = audit_of(fleet, Filters(persona="writer"), as_of=1)
    assert isinstance(persona, PersonaAudit)
    assert [v.revision for v in persona.versions] == []  # position 1 is the relay added


def test_an_exported_backup_imported_again_changes_nothing(fleet: Fleet) -> None:
    asked: list[int] = []

    def password() -> str:
        asked.append(1)
        return "backup password"

    exported = export_keys(fleet, password=password, persona="writer", log_n=4)
    assert asked == [1]
    assert [k.role for k in exported.keys] == ["owner"] + ["agent"] * AGENTS
    assert all(k.secret.startswith("ncryptsec1") for k in exported.keys)
    plain = export_keys(fleet, password=None, owner=False)
    lines = [
        BackupLine(n, k.role, SecretKey.parse(k.secret), k.persona, k.name)
        for n, k in enumerate(plain.keys, 1)
    ]
    result = import_keys(fleet, lines)
    assert (result.restored, result.created, result.unchanged) == ((), (), AGENTS)

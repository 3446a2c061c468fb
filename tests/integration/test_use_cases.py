"""The use cases, called as a library (no argparse, no printing) against a real relay."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.bootstrap import Fleet, apply_lock, bootstrap, init
from adapters.cli.main import main
from adapters.nostr.keys import SecretKey
from adapters.settings import Settings
from adapters.usecases.apply import (
    NO_RELAYS,
    ApplyRequest,
    Publication,
    apply,
    publish,
    refresh,
)
from adapters.usecases.filters import Filters
from domain.application import NewAgent, UnknownPersona
from domain.persona import PersonaContent, PersonaDefinition
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
    assert again.outcomes == []


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
    assert [o.result for o in report.outcomes] == ["published"]
    with pytest.raises(UnknownPersona):
        apply(fleet, ApplyRequest(filters=Filters(persona="nobody")))


def test_publish_after_a_change_is_an_apply_of_just_those_agents(fleet: Fleet) -> None:
    one = fleet.view().agents()[0].pubkey
    publication = publish(fleet, only=[one])
    assert publication.report is not None
    assert [(o.pubkey, o.result) for o in publication.report.outcomes] == [(one, "published")]
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

"""Owner attestations in the log: kept per agent, replaced on rotation, withdrawn on retire."""

from __future__ import annotations

import pytest

from adapters.attestation import Attestations, checked_import, mint_tag
from adapters.nostr.keys import SecretKey
from adapters.nostr.nip_oa import Attestation
from domain.aggregates import Agent, AgentRetired
from domain.application import UnknownAgent
from domain.errors import InvalidInput

OWNER = SecretKey.generate()


def _agent() -> tuple[Agent, SecretKey]:
    key = SecretKey.generate()
    return Agent(key.public_key.hex, "writer", OWNER.public_key.hex, "Ann", "created", "me"), key


def test_an_attestation_is_kept_and_the_same_one_again_records_nothing() -> None:
    agent, key = _agent()
    tag = list(mint_tag(OWNER, key.public_key.hex))
    assert agent.attest(tag, "minted", "me") is True
    assert agent.attestation == tag
    assert agent.attest(tag, "minted", "me") is False
    names = [type(e).__name__ for e in agent.collect_events()]
    assert names == ["Created", "Attested"]


def test_a_fresh_attestation_replaces_the_old_one() -> None:
    agent, key = _agent()
    first = list(mint_tag(OWNER, key.public_key.hex))
    second = list(mint_tag(OWNER, key.public_key.hex))
    agent.attest(first, "minted", "me")
    agent.attest(second, "minted", "me")
    assert agent.attestation == second != first


def test_retiring_an_agent_withdraws_its_attestation() -> None:
    agent, key = _agent()
    agent.attest(list(mint_tag(OWNER, key.public_key.hex)), "imported", "me")
    agent.retire("me")
    assert agent.attestation is None
    last = agent.collect_events()[-1]
    assert isinstance(last, Agent.Attested)
    assert last.tag is None
    assert last.origin == "withdrawn"
    with pytest.raises(AgentRetired):
        agent.attest(list(mint_tag(OWNER, key.public_key.hex)), "minted", "me")


def test_a_retired_agent_without_an_attestation_records_no_withdrawal() -> None:
    agent, _ = _agent()
    agent.retire("me")
    assert [type(e).__name__ for e in agent.collect_events()] == ["Created", "Retired"]


@pytest.mark.parametrize(
    "tag",
    [["auth", "a" * 64, ""], ["nope", "a" * 64, "", "b" * 128], ["auth", 1, "", "b" * 128]],
)
def test_the_log_refuses_what_is_not_an_auth_tag(tag: list[object]) -> None:
    agent, _ = _agent()
    with pytest.raises(InvalidInput):
        agent.attest(tag, "minted", "me")  # type: ignore[arg-type]


def test_the_log_refuses_a_self_attestation_and_an_unknown_origin() -> None:
    agent, key = _agent()
    with pytest.raises(InvalidInput, match="itself"):
        agent.attest(["auth", key.public_key.hex, "", "b" * 128], "minted", "me")
    with pytest.raises(InvalidInput, match="minted or imported"):
        agent.attest(list(mint_tag(OWNER, key.public_key.hex)), "found", "me")


def test_an_imported_attestation_must_verify_and_be_this_owners() -> None:
    key = SecretKey.generate()
    agent = key.public_key.hex
    good = Attestation.from_tag(mint_tag(OWNER, agent)).to_json()
    assert checked_import(good, agent, OWNER.public_key.hex)[1] == OWNER.public_key.hex
    with pytest.raises(InvalidInput, match="not valid"):
        checked_import(good, SecretKey.generate().public_key.hex, OWNER.public_key.hex)
    with pytest.raises(InvalidInput, match="not by this fleet's owner"):
        checked_import(good, agent, SecretKey.generate().public_key.hex)
    with pytest.raises(InvalidInput, match="not JSON"):
        checked_import("[auth", agent, OWNER.public_key.hex)
    with pytest.raises(InvalidInput, match="not valid"):
        checked_import(good.replace('"auth"', '"AUTH"'), agent, OWNER.public_key.hex)


class _App:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.loads = 0

    def get_agent(self, pubkey: str) -> Agent:
        self.loads += 1
        if pubkey != self.agent.pubkey:
            raise UnknownAgent(f"no agent {pubkey}")
        return self.agent


def test_the_lookup_gives_only_what_the_log_holds_once_per_command() -> None:
    agent, key = _agent()
    app = _App(agent)
    lookup = Attestations(app)  # type: ignore[arg-type]
    # An agent older than attestations has none, and none is minted behind the log.
    assert lookup.for_agent(key.public_key.hex) is None
    assert lookup.for_agent(key.public_key.hex) is None
    assert app.loads == 1
    recorded = list(mint_tag(OWNER, key.public_key.hex))
    agent.attest(recorded, "minted", "me")
    assert Attestations(app).for_agent(key.public_key.hex) == tuple(recorded)  # type: ignore[arg-type]
    agent.retire("me")
    assert Attestations(app).for_agent(key.public_key.hex) is None  # type: ignore[arg-type]


def test_the_lookup_has_nothing_for_an_identity_that_is_not_an_agent() -> None:
    agent, _ = _agent()
    assert Attestations(_App(agent)).for_agent(OWNER.public_key.hex) is None  # type: ignore[arg-type]

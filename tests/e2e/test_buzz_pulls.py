"""``persona pull`` and ``team pull`` against a buzz relay (the double in
``tests/support/buzz_relay.py``), over its websocket and over its HTTP bridge, each
command its own ``fleetsync`` process.

buzz serves nothing to a reader that has not authenticated (a ``REQ`` is closed
``auth-required:``, a ``/query`` without NIP-98 gets 401), so every pull here is a
proof that the owner authenticated: NIP-42 on the websocket, a NIP-98 header signed by
the owner on the bridge. What "buzz" writes (the owner's persona and team events, and
their NIP-09 deletions) goes through the double's own ingest, signed by nostr-sdk.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.bootstrap import bootstrap
from adapters.settings import Settings
from tests.e2e.harness import Cli
from tests.support.buzz_relay import BuzzRelay, parse_event
from tests.support.sdk import sdk_nip44_decrypt, sdk_public_key, sdk_sign_event

pytestmark = pytest.mark.timeout(120)

TEAM = "6f1c2a9e-5b7d-4e3f-9a1b-0c2d3e4f5a6b"


@pytest.fixture
def relay() -> Iterator[BuzzRelay]:
    with BuzzRelay().serving() as served:
        yield served


class Buzz:
    """The buzz desktop of the home's owner: it signs as the owner and writes to the relay."""

    def __init__(self, relay: BuzzRelay, secret: str) -> None:
        self.relay = relay
        self.secret = secret
        self.owner = sdk_public_key(secret)

    def write(self, kind: int, tags: list[list[str]], content: str, at: int) -> str:
        event, sdk_event = parse_event(
            json.loads(sdk_sign_event(self.secret, kind, tags, content, at))
        )
        accepted, message = self.relay.call(lambda: self.relay.ingest(event, sdk_event, self.owner))
        assert (accepted, message) == (True, "")
        return str(event["id"])

    def persona(self, slug: str, content: dict[str, Any], at: int) -> str:
        return self.write(30175, [["d", slug]], json.dumps(content, separators=(",", ":")), at)

    def team(self, team: str, content: dict[str, Any], at: int) -> str:
        return self.write(30176, [["d", team]], json.dumps(content, separators=(",", ":")), at)

    def delete(self, kind: int, d: str, at: int) -> str:
        """buzz's deletion: kind 5, one ``a`` tag, empty content (reference §6.4, §7)."""
        return self.write(5, [["a", f"{kind}:{self.owner}:{d}"]], "", at)


def owner_secret(cli: Cli) -> str:
    """The owner's key, read from the home as any command does (buzz holds the same)."""
    with bootstrap(Settings.load(home=cli.home, environ=cli.environ)) as fleet:
        return fleet.owner.secret_hex()


def run_json(cli: Cli, *args: str, expect: int = 0) -> Any:
    result = cli("--json", *args)
    assert result.code == expect, result
    assert "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("wire", ["websocket", "http", "both"])
def test_persona_and_team_pull_read_a_buzz_relay_as_the_owner_and_follow_edits_and_deletions(
    relay: BuzzRelay, cli: Cli, wire: str
) -> None:
    if wire in ("websocket", "both"):
        assert cli("relay", "add", relay.url).code == 0
    if wire in ("http", "both"):
        assert cli("relay", "add", relay.http_url).code == 0
    buzz = Buzz(relay, owner_secret(cli))
    now = int(time.time())
    writer = {"display_name": "Writer", "system_prompt": "Write."}
    buzz.persona("writer", writer, now - 20)
    buzz.persona("reviewer", {"display_name": "Reviewer", "system_prompt": "Review."}, now - 20)
    buzz.team(
        TEAM,
        {"name": "Crew", "instructions": "Be brief.", "persona_ids": ["writer", "reviewer"]},
        now - 20,
    )

    pulled = run_json(cli, "persona", "pull")
    assert sorted(t["slug"] for t in pulled["taken"]) == ["reviewer", "writer"]
    assert pulled["verified"]
    assert pulled["unreadable"] == {}
    teams = run_json(cli, "team", "pull")
    assert [(t["team"], t["personas"]) for t in teams["teams"]] == [(TEAM, ["writer", "reviewer"])]
    assert teams["verified"]
    # The relay served those reads only because the owner authenticated for them.
    if wire in ("websocket", "both"):
        assert {(a.pubkey, a.accepted) for a in relay.auth_log if a.transport == "ws"} >= {
            (buzz.owner, True)
        }
    if wire in ("http", "both"):
        assert {status for path, status in relay.http_requests if path == "/query"} == {200}
    assert cli("agent", "create", "--persona", "writer", "--count", "2").code == 0
    agents = run_json(cli, "agent", "list")
    assert {a["status"] for a in agents} == {"in-sync"}

    # Edited and deleted in buzz: the pull moves the writer's agents, deletes the
    # reviewer, removes the team; each recorded with the relay event as its cause.
    edit = buzz.persona("writer", {**writer, "system_prompt": "Write, says buzz."}, now - 10)
    gone = buzz.delete(30175, "reviewer", now - 5)
    removed = buzz.delete(30176, TEAM, now - 5)
    pulled = run_json(cli, "persona", "pull")
    assert [(t["slug"], t["event_id"]) for t in pulled["taken"]] == [("writer", edit)]
    assert [(d["slug"], d["event_id"]) for d in pulled["deleted"]] == [("reviewer", gone)]
    assert pulled["publish"]["summary"]["published"] == 2
    teams = run_json(cli, "team", "pull")
    assert [(r["team"], r["event_id"]) for r in teams["removed"]] == [(TEAM, removed)]
    assert run_json(cli, "team", "list") == []
    assert [p["slug"] for p in run_json(cli, "persona", "list")] == ["writer"]
    audit = run_json(cli, "audit", "--persona", "reviewer")
    assert audit["versions"][-1]["deleted"]
    assert audit["versions"][-1]["cause"]["event_id"] == gone
    current = run_json(cli, "persona", "show", "writer")["digest"]
    for agent in run_json(cli, "agent", "list"):
        # The double keeps heads only: each agent's one engram carries the edit.
        (head,) = [
            e
            for e in list(relay.events.values())
            if e["kind"] == 30174 and e["pubkey"] == agent["pubkey"]
        ]
        body = json.loads(sdk_nip44_decrypt(buzz.secret, agent["pubkey"], head["content"]))
        assert json.loads(body["value"])["provenance"]["source_version"] == current

    # Pulling again records nothing, over either command.
    again = run_json(cli, "persona", "pull")
    assert again["taken"] == again["deleted"] == []
    assert run_json(cli, "team", "pull")["removed"] == []
    assert cli("plan").code == 0


def test_a_pull_from_a_buzz_relay_that_refuses_the_owner_reads_nothing_and_exits_3(
    cli: Cli,
) -> None:
    with BuzzRelay(require_relay_membership=True).serving() as relay:
        assert cli("relay", "add", relay.http_url).code == 0
        assert cli("relay", "add", relay.url).code == 0
        buzz = Buzz(relay, owner_secret(cli))
        buzz.persona("writer", {"display_name": "W", "system_prompt": "w"}, int(time.time()))
        # Not a member: the relay refuses the owner on both wires; nothing is taken in,
        # and the pull says it could not verify rather than "nothing there".
        pulled = run_json(cli, "persona", "pull", expect=3)
        assert pulled["taken"] == []
        assert not pulled["verified"]
        assert set(pulled["unreadable"]) == {relay.http_url, relay.url}
        assert run_json(cli, "team", "pull", expect=3)["verified"] is False
        assert run_json(cli, "persona", "list") == []


@pytest.mark.parametrize("wire", ["websocket", "http"])
def test_persona_save_and_delete_reach_a_buzz_relay_as_the_owners_events(
    relay: BuzzRelay, cli: Cli, tmp_path: Path, wire: str
) -> None:
    url = relay.url if wire == "websocket" else relay.http_url
    assert cli("relay", "add", url).code == 0
    owner = sdk_public_key(owner_secret(cli))
    env = {"FLEETSYNC_PUBLISH_PERSONAS": "1"}
    definition = tmp_path / "writer.json"
    secret = "sk-buzz-publish-secret-value"
    definition.write_text(
        json.dumps({"display_name": "Writer", "system_prompt": "W.", "env_vars": {"K": secret}})
    )
    saved = cli("--json", "persona", "save", "writer", str(definition), env=env)
    assert saved.code == 0, saved
    event = json.loads(saved.stdout)["persona_event"]
    assert event["published"] is True
    # buzz's ingest took it (d tag grammar, envelope) as the owner's head of the address.
    head = relay.head(30175, owner, "writer")
    assert head is not None
    assert head["id"] == event["event_id"]
    assert head["tags"] == [["d", "writer"]]
    assert secret not in head["content"]
    assert "env_vars" not in head["content"]

    deleted = cli("--json", "persona", "delete", "writer", "--yes", env=env)
    assert deleted.code == 0, deleted
    deletion = json.loads(deleted.stdout)["persona_event"]
    assert deletion["published"] is True
    # buzz took the NIP-09 request (exactly one a target) and soft-deleted the head.
    assert relay.events[deletion["event_id"]]["kind"] == 5
    assert relay.head(30175, owner, "writer") is None

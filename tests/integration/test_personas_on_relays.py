"""Personas on real relays: ``persona save|delete`` publishing the owner's ``kind:30175``
(and its NIP-09 deletion) with ``FLEETSYNC_PUBLISH_PERSONAS``, and ``persona pull``
taking in what buzz (here: nostr-sdk, signing as the owner) wrote on the relay.

What is on the relay is checked with nostr-sdk, not with our own client.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from adapters.nostr.keys import SecretKey
from adapters.store.eventlog import SQLiteEventLog
from tests.integration.harness import Fleetsync
from tests.support.buzz_relay import BuzzRelay, parse_event
from tests.support.relays import start_nostr_relay, start_rust_relay
from tests.support.sdk import sdk_fetch_events, sdk_public_key, sdk_publish, sdk_sign_event

pytestmark = pytest.mark.integration

SECRET = "sk-persona-relay-secret-value"
WRITER = {
    "display_name": "Writer",
    "system_prompt": "Write.",
    "model": "gpt-x",
    "env_vars": {"OPENAI_API_KEY": SECRET},
}
# Other writers' versions of the persona (buzz, another machine), dated in the future.
NEAR = {"display_name": "Writer", "system_prompt": "from 600 s ahead"}
FAR = {"display_name": "Writer", "system_prompt": "from 870 s ahead"}


@pytest.fixture(params=["nostr-relay", "rust-relay"])
def relay_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    relay = start_nostr_relay(tmp_path) if request.param == "nostr-relay" else start_rust_relay()
    with relay:
        yield relay.url


def home(tmp_path: Path, url: str, *, publish: bool) -> Fleetsync:
    fs = Fleetsync(tmp_path / "home")
    if publish:
        fs.environ["FLEETSYNC_PUBLISH_PERSONAS"] = "1"
    fs("init")
    fs("relay", "add", url)
    return fs


def personas_on(url: str, owner: str) -> list[dict[str, Any]]:
    found = sdk_fetch_events(url, {"kinds": [30175], "authors": [owner]})
    return [json.loads(e) for e in found]


def relay_edit(url: str, secret: str, slug: str, content: dict[str, Any], at: int) -> str:
    """What buzz does when the persona is edited there: the owner signs a new head."""
    event = sdk_sign_event(secret, 30175, [["d", slug]], json.dumps(content), at)
    assert sdk_publish(url, event).accepted
    return str(json.loads(event)["id"])


def test_saving_publishes_the_public_persona_as_the_owner_without_env_vars(
    relay_url: str, tmp_path: Path
) -> None:
    fs = home(tmp_path, relay_url, publish=True)
    saved = fs.save("writer", WRITER, tmp_path)
    owner = sdk_public_key(fs.owner_secret())
    event = saved["persona_event"]
    assert event["published"] is True
    assert [r["read_back"] for r in event["relays"]] == [True]
    (on_relay,) = personas_on(relay_url, owner)
    assert on_relay["id"] == event["event_id"]
    assert on_relay["tags"] == [["d", "writer"]]
    assert "env_vars" not in on_relay["content"]
    assert SECRET not in on_relay["content"]
    assert json.loads(on_relay["content"])["display_name"] == "Writer"
    # Saving the same definition again sends nothing: the head carries it already.
    again = fs.save("writer", WRITER, tmp_path)
    assert again["persona_event"]["event_id"] is None
    assert again["persona_event"]["published"] is True
    assert len(personas_on(relay_url, owner)) == 1


def test_an_edit_is_dated_after_the_relays_head_even_when_that_is_in_the_future(
    relay_url: str, tmp_path: Path
) -> None:
    fs = home(tmp_path, relay_url, publish=True)
    secret = fs.owner_secret()
    future = int(time.time()) + 300
    relay_edit(relay_url, secret, "writer", {"display_name": "W", "system_prompt": "x"}, future)
    saved = fs.save("writer", WRITER, tmp_path)
    assert saved["persona_event"]["created_at"] == future + 1
    assert saved["persona_event"]["published"] is True


def test_without_the_setting_nothing_is_published(relay_url: str, tmp_path: Path) -> None:
    fs = home(tmp_path, relay_url, publish=False)
    assert fs.save("writer", WRITER, tmp_path)["persona_event"] is None
    assert personas_on(relay_url, sdk_public_key(fs.owner_secret())) == []


def test_deleting_publishes_a_nip09_deletion_read_back_from_the_relay(
    relay_url: str, tmp_path: Path
) -> None:
    fs = home(tmp_path, relay_url, publish=True)
    fs.save("writer", WRITER, tmp_path)
    owner = sdk_public_key(fs.owner_secret())
    deleted = fs.json("persona", "delete", "writer", "--yes")
    event = deleted["persona_event"]
    assert event["published"] is True
    (deletion,) = [json.loads(e) for e in sdk_fetch_events(relay_url, {"kinds": [5]})]
    assert deletion["id"] == event["event_id"]
    assert deletion["pubkey"] == owner
    assert deletion["tags"] == [["a", f"30175:{owner}:writer"], ["k", "30175"]]


def test_persona_pull_after_a_kind_30175_edit_on_the_relay_moves_its_agents(
    relay_url: str, tmp_path: Path
) -> None:
    fs = home(tmp_path, relay_url, publish=True)
    fs.save("writer", WRITER, tmp_path)
    fs.save("reviewer", {"display_name": "Rev", "system_prompt": "Review."}, tmp_path)
    fs("agent", "create", "--persona", "writer", "--count", "2")
    fs("agent", "create", "--persona", "reviewer")
    assert fs("plan").startswith("nothing to do")
    secret = fs.owner_secret()
    edited = {"display_name": "Writer", "system_prompt": "Write, as buzz says.", "model": "gpt-y"}
    event_id = relay_edit(relay_url, secret, "writer", edited, int(time.time()) + 2)

    pulled = fs.json("persona", "pull")
    assert [(t["slug"], t["event_id"]) for t in pulled["taken"]] == [("writer", event_id)]
    assert pulled["publish"]["summary"]["published"] == 2  # only the writer's agents move
    shown = fs.json("persona", "show", "writer")
    assert shown["content"]["system_prompt"] == "Write, as buzz says."
    assert shown["env_vars"] == ["OPENAI_API_KEY"]  # the secrets stay as saved here
    audit = fs.json("audit", "--persona", "writer")
    cause = audit["versions"][-1]["cause"]
    assert cause["kind"] == "relay"
    assert cause["event_id"] == event_id
    assert cause["relay"] == relay_url.rstrip("/")
    assert event_id in fs("audit", "--persona", "writer")
    statuses = {a["persona"]: a["status"] for a in fs.json("agent", "list")}
    assert statuses == {"writer": "in-sync", "reviewer": "in-sync"}

    # Pulling again records nothing.
    again = fs.json("persona", "pull")
    assert again["taken"] == []
    assert {s["reason"] for s in again["skipped"]} == {"already this version"}


def test_pull_takes_in_a_persona_new_here_and_skips_a_malformed_one(
    relay_url: str, tmp_path: Path
) -> None:
    fs = home(tmp_path, relay_url, publish=False)
    secret = fs.owner_secret()
    now = int(time.time())
    relay_edit(relay_url, secret, "fresh", {"display_name": "F", "system_prompt": "Hi."}, now)
    relay_edit(relay_url, secret, "broken", {"system_prompt": "no name"}, now)
    leaky = {"display_name": "L", "system_prompt": "x", "env_vars": {"K": "v"}}
    relay_edit(relay_url, secret, "leaky", leaky, now)
    pulled = fs.json("persona", "pull")
    assert [t["slug"] for t in pulled["taken"]] == ["fresh"]
    reasons = {s["slug"]: s["reason"] for s in pulled["skipped"]}
    assert "display_name" in reasons["broken"]
    assert "env_vars" in reasons["leaky"]
    assert [p["slug"] for p in fs.json("persona", "list")] == ["fresh"]


def test_pull_never_undoes_a_newer_local_edit(relay_url: str, tmp_path: Path) -> None:
    fs = home(tmp_path, relay_url, publish=False)
    secret = fs.owner_secret()
    old = int(time.time()) - 600
    relay_edit(relay_url, secret, "writer", {"display_name": "Old", "system_prompt": "o"}, old)
    fs.save("writer", WRITER, tmp_path)
    pulled = fs.json("persona", "pull")
    assert pulled["taken"] == []
    assert "older than the version saved here" in pulled["skipped"][0]["reason"]
    assert fs.json("persona", "show", "writer")["content"]["display_name"] == "Writer"


def test_pull_with_an_unreachable_relay_exits_3_and_says_so(tmp_path: Path) -> None:
    fs = home(tmp_path, "ws://127.0.0.1:9", publish=False)
    fs.environ["FLEETSYNC_RELAY_TIMEOUT"] = "1"
    code, out, _ = fs.run("persona", "pull")
    assert code == 3, out
    assert "could not be read" in out


def team_event(url: str, secret: str, d: str, content: dict[str, Any] | str, at: int) -> str:
    """A buzz team event (kind:30176) as the owner signs it."""
    text = content if isinstance(content, str) else json.dumps(content, separators=(",", ":"))
    event = sdk_sign_event(secret, 30176, [["d", d]], text, at)
    assert sdk_publish(url, event).accepted
    return str(json.loads(event)["id"])


UUID = "0b9f3f0e-3c1a-4d1e-8f3a-2b1c0d9e8f7a"


def test_team_pull_records_the_newest_team_event_and_pulling_again_records_nothing(
    relay_url: str, tmp_path: Path
) -> None:
    fs = home(tmp_path, relay_url, publish=False)
    fs.save("writer", WRITER, tmp_path)
    fs.save(UUID, {"display_name": "U", "system_prompt": "u"}, tmp_path)
    secret = fs.owner_secret()
    now = int(time.time())
    team_event(
        relay_url,
        secret,
        UUID,
        {"name": "Old", "instructions": None, "persona_ids": ["writer"]},
        now - 10,
    )
    newest = team_event(
        relay_url,
        secret,
        UUID,
        {
            "name": "Crew",
            "instructions": "Be brief.",
            "persona_ids": ["writer", UUID.upper(), "ghost"],
        },
        now,
    )
    team_event(relay_url, secret, "builtin-team:welcome", "{not json", now)

    pulled = fs.json("team", "pull")
    (crew,) = pulled["teams"]
    assert (crew["team"], crew["event_id"], crew["changed"]) == (UUID, newest, True)
    assert crew["personas"] == ["writer", UUID]
    assert crew["left_out"] == ["ghost"]
    assert [s["team"] for s in pulled["skipped"]] == ["builtin-team:welcome"]
    shown = fs.json("team", "show", UUID)
    assert shown["name"] == "Crew"
    assert shown["instructions"] == "Be brief."
    assert shown["source"] == f"relay:{newest}"
    assert [a["slug"] for a in fs.json("status", "--team", UUID)["personas"]] == [UUID, "writer"]

    again = fs.json("team", "pull")
    assert [t["changed"] for t in again["teams"]] == [False]


def test_an_older_clients_team_event_keeps_the_members_and_instructions_recorded_here(
    relay_url: str, tmp_path: Path
) -> None:
    fs = home(tmp_path, relay_url, publish=False)
    fs.save("writer", WRITER, tmp_path)
    secret = fs.owner_secret()
    now = int(time.time())
    team_event(
        relay_url,
        secret,
        "crew",
        {"name": "Crew", "instructions": "Keep.", "persona_ids": ["writer"]},
        now - 5,
    )
    fs("team", "pull")
    team_event(relay_url, secret, "crew", {"name": "Crew Renamed"}, now)
    (crew,) = fs.json("team", "pull")["teams"]
    assert crew["personas"] == ["writer"]
    shown = fs.json("team", "show", "crew")
    assert (shown["name"], shown["instructions"]) == ("Crew Renamed", "Keep.")


def test_pull_does_not_take_in_a_persona_the_owner_asked_to_delete(
    relay_url: str, tmp_path: Path
) -> None:
    fs = home(tmp_path, relay_url, publish=False)
    secret = fs.owner_secret()
    owner = sdk_public_key(secret)
    now = int(time.time())
    head = relay_edit(relay_url, secret, "gone", {"display_name": "G", "system_prompt": "g"}, now)
    tags = [["a", f"30175:{owner}:gone"], ["k", "30175"]]
    request = sdk_sign_event(secret, 5, tags, "", now)
    assert sdk_publish(relay_url, request).accepted
    pulled = fs.json("persona", "pull")
    assert pulled["taken"] == pulled["deleted"] == []
    reasons = {s["event_id"]: s["reason"] for s in pulled["skipped"]}
    if personas_on(relay_url, owner):  # a relay that keeps serving it: we still do not take it
        assert "NIP-09" in reasons[head]
    assert reasons[json.loads(request)["id"]].endswith("; not here")
    assert fs.json("persona", "list") == []


def deletion(
    url: str, secret: str, tags: list[list[str]], at: int, *, foreign: bool = False
) -> str:
    """A NIP-09 request (kind:5) signed by ``secret``, as buzz sends one. A ``foreign``
    one (naming another author's address) the relay may refuse or keep: either way it
    must change nothing."""
    event = sdk_sign_event(secret, 5, tags, "", at)
    accepted = sdk_publish(url, event).accepted
    assert accepted or foreign
    return str(json.loads(event)["id"])


def removals(fs: Fleetsync, topic: str) -> list[dict[str, Any]]:
    """The states of the log's events of ``topic`` (``Teams.Removed``...), oldest first."""
    log = SQLiteEventLog(fs.home / "events.sqlite")
    try:
        return [r.state for r in log.read(0, 1_000_000) if r.topic.endswith(topic)]
    finally:
        log.close()


def test_a_persona_deleted_in_buzz_is_deleted_on_pull_with_the_request_as_its_cause(
    relay_url: str, tmp_path: Path
) -> None:
    fs = home(tmp_path, relay_url, publish=False)
    secret = fs.owner_secret()
    owner = sdk_public_key(secret)
    now = int(time.time())
    relay_edit(relay_url, secret, "writer", {"display_name": "W", "system_prompt": "w"}, now - 5)
    relay_edit(relay_url, secret, "keeper", {"display_name": "K", "system_prompt": "k"}, now - 5)
    fs("persona", "pull")
    fs("agent", "create", "--persona", "writer", "--count", "2")
    # Someone else's request for the owner's address is no request at all.
    stranger = SecretKey.generate().secret_hex()
    deletion(relay_url, stranger, [["a", f"30175:{owner}:keeper"]], now, foreign=True)
    request = deletion(relay_url, secret, [["a", f"30175:{owner}:writer"]], now)

    pulled = fs.json("persona", "pull")
    assert [(d["slug"], d["event_id"], d["agents"]) for d in pulled["deleted"]] == [
        ("writer", request, 2)
    ]
    assert pulled["publish"]["summary"]["tombstoned"] == 2  # the agents' engrams
    assert [p["slug"] for p in fs.json("persona", "list")] == ["keeper"]
    (version,) = [v for v in fs.json("audit", "--persona", "writer")["versions"] if v["deleted"]]
    assert version["cause"]["event_id"] == request
    assert version["cause"]["event_kind"] == 5
    assert f"kind:5 event {request}" in fs("audit", "--persona", "writer")
    assert {a["status"] for a in fs.json("agent", "list")} == {"persona-deleted"}
    fs("plan")  # exit 0: the tombstones are the heads, nothing left to do

    again = fs.json("persona", "pull")
    assert again["taken"] == again["deleted"] == []
    assert len(removals(fs, "Persona.Deleted")) == 1


def test_team_pull_removes_a_team_the_owner_deleted_by_address_or_by_id_and_no_other(
    relay_url: str, tmp_path: Path
) -> None:
    fs = home(tmp_path, relay_url, publish=False)
    fs.save("writer", WRITER, tmp_path)
    secret = fs.owner_secret()
    owner = sdk_public_key(secret)
    now = int(time.time())
    content = {"name": "T", "instructions": None, "persona_ids": ["writer"]}
    team_event(relay_url, secret, UUID, content, now - 5)
    by_id = team_event(relay_url, secret, "builtin-team:welcome", content, now - 5)
    team_event(relay_url, secret, "kept", content, now - 5)
    assert {t["team"] for t in fs.json("team", "pull")["teams"]} == {
        UUID,
        "builtin-team:welcome",
        "kept",
    }
    by_address = deletion(relay_url, secret, [["a", f"30176:{owner}:{UUID}"]], now)
    by_event = deletion(relay_url, secret, [["e", by_id], ["k", "30176"]], now)
    stranger = SecretKey.generate().secret_hex()
    deletion(relay_url, stranger, [["a", f"30176:{owner}:kept"]], now, foreign=True)

    pulled = fs.json("team", "pull")
    assert sorted((r["team"], r["event_id"]) for r in pulled["removed"]) == sorted(
        [(UUID, by_address), ("builtin-team:welcome", by_event)]
    )
    assert [t["team"] for t in fs.json("team", "list")] == ["kept"]
    causes = {s["team"]: s["cause"] for s in removals(fs, "Teams.Removed")}
    assert causes[UUID]["event_id"] == by_address
    assert causes["builtin-team:welcome"]["event_id"] == by_event
    assert causes[UUID]["relay"] == relay_url.rstrip("/")

    again = fs.json("team", "pull")
    assert again["removed"] == []
    assert len(removals(fs, "Teams.Removed")) == 2
    # A newer version written after the request brings the team back.
    team_event(relay_url, secret, UUID, {**content, "name": "Back"}, now + 1)
    (back,) = [t for t in fs.json("team", "pull")["teams"] if t["team"] == UUID]
    assert back["changed"]
    assert fs.json("team", "show", UUID)["name"] == "Back"


def test_a_persona_event_no_relay_holds_is_never_called_published(tmp_path: Path) -> None:
    fs = home(tmp_path, "ws://127.0.0.1:9", publish=True)
    fs.environ["FLEETSYNC_RELAY_TIMEOUT"] = "1"
    path = tmp_path / "writer.json"
    path.write_text(json.dumps(WRITER), encoding="utf-8")
    code, out, err = fs.run("persona", "save", "writer", str(path))
    assert code == 2, out + err
    assert "saved persona 'writer'" in out  # the save stands
    assert "published on" not in out
    assert "fleetsync: warning: the persona event (kind:30175) " in err
    assert fs.json("persona", "show", "writer")["revision"] == 1


# -- the owner's events over a head from the future ----------------------------------


@dataclass
class OwnerRelay:
    """A relay the owner's persona events go to, and how a test puts another writer's
    event there and sees what it holds."""

    url: str
    put: Callable[[str], None]  # an event's JSON, stored as the relay takes it
    held: Callable[[str, int], list[dict[str, Any]]]  # the owner's events of a kind


@pytest.fixture(params=["nostr-relay", "rust-relay", "buzz-websocket", "buzz-http"])
def owner_relay(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OwnerRelay]:
    if not request.param.startswith("buzz"):
        generic = (
            start_nostr_relay(tmp_path) if request.param == "nostr-relay" else start_rust_relay()
        )
        with generic:

            def publish(event: str) -> None:
                assert sdk_publish(generic.url, event).accepted

            def fetched(owner: str, kind: int) -> list[dict[str, Any]]:
                found = sdk_fetch_events(generic.url, {"kinds": [kind], "authors": [owner]})
                return [json.loads(e) for e in found]

            yield OwnerRelay(generic.url, publish, fetched)
        return
    with BuzzRelay().serving() as buzz:

        def ingest(event: str) -> None:
            parsed, sdk_event = parse_event(json.loads(event))
            taken = buzz.call(partial(buzz.ingest, parsed, sdk_event, parsed["pubkey"]))
            assert taken == (True, "")

        def stored(owner: str, kind: int) -> list[dict[str, Any]]:
            events = list(buzz.events.values())
            return [e for e in events if e["kind"] == kind and e["pubkey"] == owner]

        url = buzz.url if request.param == "buzz-websocket" else buzz.http_url
        yield OwnerRelay(url, ingest, stored)


def _ids(events: list[dict[str, Any]]) -> set[str]:
    return {e["id"] for e in events}


def test_an_owner_event_after_a_future_head_stays_inside_buzzs_window_and_one_past_it_is_a_conflict(
    owner_relay: OwnerRelay, tmp_path: Path
) -> None:
    """buzz takes events within 900 s of its clock. A persona head 600 s ahead is
    written over at head + 1, which the relay takes and returns; one 870 s ahead (the
    relay took it, and would take head + 1 too) is a conflict naming the head: nothing
    is signed or sent, the save and the deletion stand here, and the command exits 2."""
    fs = home(tmp_path, owner_relay.url, publish=True)
    secret = fs.owner_secret()
    owner = sdk_public_key(secret)
    near_at = int(time.time()) + 600
    owner_relay.put(sdk_sign_event(secret, 30175, [["d", "writer"]], json.dumps(NEAR), near_at))
    saved = fs.save("writer", WRITER, tmp_path)["persona_event"]
    assert saved["created_at"] == near_at + 1
    assert saved["published"] is True
    assert saved["conflict"] is None
    assert saved["event_id"] in _ids(owner_relay.held(owner, 30175))

    far_at = int(time.time()) + 870
    far = sdk_sign_event(secret, 30175, [["d", "writer"]], json.dumps(FAR), far_at)
    owner_relay.put(far)
    far_id = json.loads(far)["id"]
    before = _ids(owner_relay.held(owner, 30175))
    path = tmp_path / "later.json"
    path.write_text(json.dumps({**WRITER, "system_prompt": "Write later."}), encoding="utf-8")
    code, out, err = fs.run("--json", "persona", "save", "writer", str(path))
    assert code == 2, out + err
    event = json.loads(out)["persona_event"]
    assert (event["event_id"], event["published"], event["relays"]) == (None, False, [])
    conflict = event["conflict"]
    assert (conflict["head_event_id"], conflict["head_created_at"]) == (far_id, far_at)
    assert 860 <= conflict["ahead"] <= 870
    assert conflict["max_ahead"] == 840
    assert _ids(owner_relay.held(owner, 30175)) == before, "nothing is sent after the far head"
    assert fs.json("persona", "show", "writer")["revision"] == 2  # the save stands

    code, out, err = fs.run("persona", "delete", "writer", "--yes")
    assert code == 2, out + err
    assert "deleted persona 'writer'" in out  # the deletion stands
    assert "fleetsync: warning: the deletion request was not published: conflict: " in err
    assert far_id in err
    assert owner_relay.held(owner, 5) == [], "no deletion is dated after the far head"
    assert fs.json("persona", "list") == []

"""``fleetsync agent create|import|list|retire`` against a real home, one process each."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

from adapters.nostr.keys import SecretKey
from tests.e2e.harness import Cli, all_bytes, assert_one_error_line


def agents(cli: Cli, *args: str) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = json.loads(cli.ok("agent", "list", "--json", *args).stdout)
    return listed


def key_rows(cli: Cli) -> dict[str, tuple[object, ...]]:
    conn = sqlite3.connect(f"{(cli.home / 'keys.sqlite').as_uri()}?mode=ro", uri=True)
    try:
        return {
            row[0]: row
            for row in conn.execute("SELECT pubkey, role, sealed, destroyed_at FROM keys")
        }
    finally:
        conn.close()


def test_creating_three_agents_names_them_from_the_name_pool(cli: Cli, writer_file: Path) -> None:
    cli.ok("persona", "save", "writer", str(writer_file))
    before = cli.snapshot().max_position
    created = json.loads(
        cli.ok("agent", "create", "--persona", "writer", "--count", "3", "--json").stdout
    )["agents"]
    assert [a["name"] for a in created] == ["Ann", "Bob", "Ann-2"]
    # each agent: its creation and its owner attestation
    assert cli.snapshot().max_position == before + 6
    listed = agents(cli)
    assert {a["pubkey"] for a in listed} == {a["pubkey"] for a in created}
    assert {a["status"] for a in listed} == {"never-published"}
    keys = key_rows(cli)
    assert all(keys[a["pubkey"]][2] for a in created)  # each agent's key is stored (sealed)


def test_agent_names_continue_where_earlier_agents_left_off(cli: Cli) -> None:
    cli.ok("persona", "save", "bot", "-", stdin='{"display_name":"B","system_prompt":"Hi."}')
    cli.ok("agent", "create", "--persona", "bot", "--count", "2")
    cli.ok("agent", "create", "--persona", "bot", "--name", "scout", "--count", "2")
    cli.ok("agent", "create", "--persona", "bot")
    assert sorted(str(a["name"]) for a in agents(cli)) == [
        "bot-1",
        "bot-2",
        "bot-3",
        "scout-1",
        "scout-2",
    ]


def test_importing_an_nsec_adopts_that_key_pair(cli: Cli, writer_file: Path) -> None:
    cli.ok("persona", "save", "writer", str(writer_file))
    key = SecretKey.generate()
    result = cli.ok("agent", "import", "--nsec", "-", "--persona", "writer", stdin=key.nsec())
    assert key.public_key.hex in result.stdout
    assert key.nsec() not in result.stdout
    assert key.secret_hex() not in result.stdout
    (agent,) = agents(cli)
    assert agent["pubkey"] == key.public_key.hex
    assert agent["origin"] == "imported"
    other = SecretKey.generate()  # hex on the command line works too
    cli.ok("agent", "import", "--nsec", other.secret_hex(), "--persona", "writer", "--name", "X")
    assert len(agents(cli)) == 2


def test_importing_the_same_key_twice_is_refused_without_a_new_event(
    cli: Cli, writer_file: Path
) -> None:
    cli.ok("persona", "save", "writer", str(writer_file))
    key = SecretKey.generate()
    cli.ok("agent", "import", "--nsec", key.nsec(), "--persona", "writer")
    before = cli.snapshot()
    result = cli("agent", "import", "--nsec", key.nsec(), "--persona", "writer")
    assert_one_error_line(result, r"already exists")
    assert cli.snapshot() == before


def test_agent_secret_keys_are_never_stored_in_plaintext(cli: Cli, writer_file: Path) -> None:
    cli.ok("persona", "save", "writer", str(writer_file))
    key = SecretKey.generate()
    cli.ok("agent", "import", "--nsec", key.nsec(), "--persona", "writer")
    cli.ok("agent", "create", "--persona", "writer", "--count", "5")
    cli.ok("agent", "list")
    raw = all_bytes(cli.home)
    assert key.secret_bytes() not in raw
    assert key.secret_hex().encode() not in raw
    assert key.nsec().encode() not in raw


def test_retiring_with_destroy_key_removes_the_key_and_keeps_a_tombstone(
    cli: Cli, writer_file: Path
) -> None:
    cli.ok("persona", "save", "writer", str(writer_file))
    created = json.loads(
        cli.ok("agent", "create", "--persona", "writer", "--count", "2", "--json").stdout
    )["agents"]
    gone, kept = created[0], created[1]
    result = cli.ok("agent", "retire", str(gone["npub"]), "--destroy-key", "--yes")
    assert "secret key is destroyed" in result.stdout
    keys = key_rows(cli)
    assert keys[str(gone["pubkey"])][2] is None  # sealed secret gone
    assert keys[str(gone["pubkey"])][3] is not None  # tombstone: when
    assert keys[str(kept["pubkey"])][2] is not None
    assert [a["pubkey"] for a in agents(cli)] == [kept["pubkey"]]
    (retired,) = [a for a in agents(cli, "--all") if a["pubkey"] == gone["pubkey"]]
    assert retired["retired"] is True
    assert retired["key_destroyed"] is True
    before = cli.snapshot()
    assert_one_error_line(cli("agent", "retire", str(gone["pubkey"])), r"already retired")
    assert_one_error_line(
        cli("agent", "retire", str(gone["pubkey"]), "--destroy-key"), r"already destroyed"
    )
    assert cli.snapshot() == before


def test_a_retired_agent_can_have_its_key_destroyed_later(cli: Cli, writer_file: Path) -> None:
    cli.ok("persona", "save", "writer", str(writer_file))
    (agent,) = json.loads(cli.ok("agent", "create", "--persona", "writer", "--json").stdout)[
        "agents"
    ]
    cli.ok("agent", "retire", str(agent["pubkey"]))
    assert key_rows(cli)[str(agent["pubkey"])][2] is not None
    cli.ok("agent", "retire", str(agent["pubkey"]), "--destroy-key", "--yes")
    assert key_rows(cli)[str(agent["pubkey"])][2] is None


def test_agents_created_by_concurrent_processes_are_all_recorded(
    cli: Cli, writer_file: Path
) -> None:
    cli.ok("persona", "save", "writer", str(writer_file))
    procs = [
        subprocess.Popen(
            cli.command("agent", "create", "--persona", "writer", "--count", "25"),
            env=cli.environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    listed = agents(cli)
    assert len(listed) == 100
    keys = key_rows(cli)
    assert all(keys[str(a["pubkey"])][2] for a in listed)


def _attested(cli: Cli, pubkey: str) -> list[dict[str, object]]:
    doc = json.loads(cli.ok("audit", "--agent", pubkey, "--json").stdout)
    return [e for e in doc["entries"] if e["what"] in ("attested", "attestation withdrawn")]


def test_a_new_agent_is_attested_by_the_owner_and_agent_attest_replaces_it(
    cli: Cli, writer_file: Path
) -> None:
    from adapters.nostr.nip_oa import Attestation

    cli.ok("persona", "save", "writer", str(writer_file))
    (agent,) = json.loads(
        cli.ok("agent", "create", "--persona", "writer", "--no-apply", "--json").stdout
    )["agents"]
    pubkey = str(agent["pubkey"])
    (first,) = _attested(cli, pubkey)
    tag = first["details"]["tag"]  # type: ignore[index]
    Attestation.from_tag(tag).verify(pubkey)
    rotated = json.loads(cli.ok("agent", "attest", "Ann", "--json").stdout)
    assert rotated["pubkey"] == pubkey
    assert rotated["owner"] == tag[1]
    entries = _attested(cli, pubkey)
    assert len(entries) == 2
    assert entries[1]["details"]["tag"] != tag  # type: ignore[index]
    cli.ok("agent", "retire", pubkey, "--no-apply")
    assert _attested(cli, pubkey)[-1]["what"] == "attestation withdrawn"
    assert_one_error_line(cli("agent", "attest", pubkey), "retired")
    # --missing skips the agents that have one, and the retired one, whose is withdrawn.
    assert json.loads(cli.ok("agent", "attest", "--missing", "--json").stdout) == {"attested": []}
    assert_one_error_line(cli("agent", "attest"), "--missing")
    assert_one_error_line(cli("agent", "attest", pubkey, "--missing"), "--missing")

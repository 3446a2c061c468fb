"""``persona save`` and ``agent create`` publish through apply and report what they published.

Against a real relay on loopback (``nostr-relay``): the counts come in the text
and in ``--json`` (every agent there), a large create is summarised unless
``--list`` is given, and a relay that cannot be reached is reported with
apply's exit code while what was recorded stays recorded.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Cli
from tests.support.relays import start_nostr_relay


@pytest.fixture
def relay_url(tmp_path: Path) -> Iterator[str]:
    with start_nostr_relay(tmp_path) as relay:
        yield relay.url


@pytest.fixture
def published(cli: Cli, writer_file: Path, relay_url: str) -> Cli:
    cli.ok("relay", "add", relay_url)
    cli.ok("persona", "save", "writer", str(writer_file))
    return cli


def test_agent_create_reports_what_it_published_in_text_and_json(published: Cli) -> None:
    text = published.ok("agent", "create", "--persona", "writer", "--count", "2")
    assert (
        "published 2, tombstoned 0, unchanged 0, unverified 0, failed 0, unknown 0, conflicts 0"
        in text.stdout
    )
    assert "'fleetsync plan' shows" not in text.stdout

    doc = json.loads(
        published.ok("agent", "create", "--persona", "writer", "--count", "3", "--json").stdout
    )
    assert len(doc["agents"]) == 3
    assert doc["publish"]["published"] is True
    assert doc["publish"]["summary"]["published"] == 3
    reported = {a["agent"] for a in doc["publish"]["agents"] if a["result"] == "published"}
    assert reported == {a["pubkey"] for a in doc["agents"]}


def test_persona_save_reports_the_engrams_it_republished(published: Cli, tmp_path: Path) -> None:
    published.ok("agent", "create", "--persona", "writer", "--count", "3")
    edited = tmp_path / "v2.json"
    edited.write_text('{"display_name": "Writer", "system_prompt": "Write better."}')
    text = published.ok("persona", "save", "writer", str(edited))
    assert "3 agent(s) follow it" in text.stdout
    assert "published 3, tombstoned 0, unchanged 0, unverified 0, failed 0" in text.stdout

    edited.write_text('{"display_name": "Writer", "system_prompt": "Write best."}')
    doc = json.loads(published.ok("--json", "persona", "save", "writer", str(edited)).stdout)
    assert doc["publish"]["summary"]["published"] == 3
    assert doc["publish"]["published"] is True
    assert len(doc["publish"]["agents"]) == 3


def test_a_large_create_is_summarised_unless_list_is_given(cli: Cli, writer_file: Path) -> None:
    cli.ok("persona", "save", "writer", str(writer_file))
    many = cli.ok("agent", "create", "--persona", "writer", "--count", "40", "--no-apply")
    assert len(many.stdout.splitlines()) <= 3, many.stdout
    assert "created 40 agent(s)" in many.stdout
    listed = cli.ok(
        "agent", "create", "--persona", "writer", "--count", "40", "--list", "--no-apply"
    )
    assert len(listed.stdout.splitlines()) >= 41
    doc = json.loads(
        cli.ok(
            "agent", "create", "--persona", "writer", "--count", "40", "--json", "--no-apply"
        ).stdout
    )
    assert len(doc["agents"]) == 40
    assert doc["publish"]["skipped"] == "--no-apply"


def test_an_unreachable_relay_keeps_the_agents_and_exits_2_with_a_warning(
    cli: Cli, writer_file: Path
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{sock.getsockname()[1]}"
    cli.ok("relay", "add", url)
    cli.ok("persona", "save", "writer", str(writer_file))
    result = cli("agent", "create", "--persona", "writer", "--count", "2", "--json")
    assert result.code == 2, result
    doc = json.loads(result.stdout)
    assert len(doc["agents"]) == 2
    assert doc["publish"]["published"] is False
    assert doc["publish"]["summary"]["unknown"] == 2
    listed = json.loads(cli.ok("agent", "list", "--json").stdout)
    assert len(listed) == 2, "a relay failure never undoes the create"

    text = cli("agent", "create", "--persona", "writer")
    assert text.code == 2
    assert f"cannot connect to {url}: connection refused" in text.stdout
    assert "fleetsync: warning: the agent(s) are created, but 1 agent(s) are not in sync" in (
        text.stderr
    )

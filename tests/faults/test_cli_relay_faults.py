"""The CLI against relays that are down or silent, on real sockets: how long it takes,
and what it says.

``FLEETSYNC_RELAY_TIMEOUT`` bounds every wait on a relay, and a relay that keeps
fleetsync waiting that long is given up for the rest of the command: whatever
step it goes silent in, a command pays the timeout about once. The bounds asserted
here are generous (a timeout of 2 s, commands finishing well under 10 s over
process start-up and key derivation); before that bound, a silent relay held a
command up many times as long.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Cli, Result, base_environ
from tests.faults.fake_relay import Behaviour, FakeConnection, FakeRelay, Filters

pytestmark = pytest.mark.timeout(300)

TIMEOUT = 2
BOUND = 10.0  # seconds: the timeout, once, plus process start-up and local work

WRITER = '{"display_name": "Writer", "system_prompt": "Write."}'


class Silent(Behaviour):
    """Completes the websocket handshake, then never answers anything."""

    async def on_event(self, conn: FakeConnection, event: dict[str, Any]) -> None:
        return

    async def on_req(self, conn: FakeConnection, sub_id: str, filters: Filters) -> None:
        return


@asynccontextmanager
async def tcp_only() -> AsyncIterator[str]:
    """A port that accepts TCP connections and never says a word (no handshake)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.close()
        for writer in held:
            writer.close()


def closed_port() -> str:
    """A loopback URL nothing listens on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"ws://127.0.0.1:{port}"


def home(tmp_path: Path) -> Cli:
    cli = Cli(
        tmp_path / "home",
        base_environ(FLEETSYNC_RELAY_TIMEOUT=str(TIMEOUT), FLEETSYNC_BATCH_SIZE="4"),
    )
    assert cli("init").code == 0
    assert cli("persona", "save", "writer", "-", stdin=WRITER).code == 0
    return cli


async def run(cli: Cli, *args: str) -> tuple[Result, float]:
    """Run a command without blocking the loop that serves the relay; (result, seconds)."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *cli.command(*args),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli.environ,
        cwd=cli.home.parent,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 200)
    elapsed = time.monotonic() - started
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode()), elapsed


def test_agent_create_with_a_relay_that_never_answers_the_handshake_ends_within_the_timeout(
    tmp_path: Path,
) -> None:
    cli = home(tmp_path)

    async def main() -> tuple[Result, float]:
        async with tcp_only() as url:
            assert cli("relay", "add", url).code == 0
            return await run(cli, "agent", "create", "--persona", "writer", "--count", "3")

    result, elapsed = asyncio.run(main())
    assert elapsed < BOUND, (elapsed, result)
    assert "created 3 agent(s)" in result.stdout
    assert result.code == 2, "created, but not published: apply's exit code says so"
    assert "unknown 3: cannot connect to ws://127.0.0.1:" in result.stdout
    assert "no answer within 2 s" in result.stdout


def test_apply_with_a_relay_silent_after_the_handshake_ends_within_the_timeout(
    tmp_path: Path,
) -> None:
    cli = home(tmp_path)
    assert cli("agent", "create", "--persona", "writer", "--count", "10", "--no-apply").code == 0

    async def main() -> tuple[Result, float]:
        async with FakeRelay(Silent()) as relay:
            assert cli("relay", "add", relay.url).code == 0
            return await run(cli, "apply")

    result, elapsed = asyncio.run(main())
    # Ten agents in batches of four: before, every batch waited for its own timeouts.
    assert elapsed < BOUND, (elapsed, result)
    assert result.code != 0
    assert "published 0" in result.stdout


def test_apply_with_a_silent_relay_and_a_good_one_publishes_to_the_good_one_in_time(
    tmp_path: Path,
) -> None:
    cli = home(tmp_path)
    assert cli("agent", "create", "--persona", "writer", "--count", "6", "--no-apply").code == 0

    async def main() -> tuple[Result, float, int]:
        async with tcp_only() as silent, FakeRelay() as good:
            assert cli("relay", "add", silent).code == 0
            assert cli("relay", "add", good.url).code == 0
            result, elapsed = await run(cli, "apply", "--json")
            return result, elapsed, len(good.stored)

    result, elapsed, stored = asyncio.run(main())
    assert elapsed < BOUND, (elapsed, result)
    assert stored == 6
    assert '"published": 6' in result.stdout


def test_a_dead_relay_with_many_agents_is_a_handful_of_lines_naming_the_cause(
    tmp_path: Path,
) -> None:
    cli = home(tmp_path)
    assert cli("agent", "create", "--persona", "writer", "--count", "120", "--no-apply").code == 0
    url = closed_port()
    assert cli("relay", "add", url).code == 0

    result = cli("apply")
    lines = result.stdout.splitlines()
    assert len(lines) <= 5, result.stdout
    assert any(
        line.startswith("unknown 120: ") and f"cannot connect to {url}: connection refused" in line
        for line in lines
    ), result.stdout
    assert "ssl:default" not in result.stdout + result.stderr
    assert "timed out:" not in result.stdout + result.stderr

    doc = cli("apply", "--json")
    agents = json.loads(doc.stdout)["agents"]
    assert len(agents) == 120, "--json keeps one entry per agent"
    assert all(f"cannot connect to {url}: connection refused" in a["detail"] for a in agents)

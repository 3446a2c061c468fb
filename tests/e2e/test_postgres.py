"""The CLI on PostgreSQL: the store URL is a setting, nothing else changes."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.e2e.harness import Cli, base_environ
from tests.fleet_support import POSTGRES_URL

pytestmark = pytest.mark.skipif(
    not POSTGRES_URL,
    reason="set FLEETSYNC_TEST_POSTGRES_URL (scripts/postgres prints one; CI sets it)",
)


def test_a_home_on_postgresql_keeps_personas_agents_and_plans_across_processes(
    tmp_path: Path, writer_file: Path
) -> None:
    import psycopg
    from psycopg import sql

    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    cli = Cli(
        tmp_path / "home",
        base_environ(FLEETSYNC_STORE_URL=f"{POSTGRES_URL}?schema={schema}"),
    )
    cli.ok("init")
    cli.ok("persona", "save", "writer", str(writer_file))
    cli.ok("agent", "create", "--persona", "writer", "--count", "3")
    plan = cli("--json", "plan")
    assert plan.code == 2, plan
    assert json.loads(plan.stdout)["changes"] == 3
    with psycopg.connect(POSTGRES_URL) as conn:
        query = sql.SQL("SELECT count(*) FROM {}.fleetsync_events").format(sql.Identifier(schema))
        (count,) = conn.execute(query).fetchone()
    assert count == 4, "one persona and three agents, stored in PostgreSQL"
    assert not (tmp_path / "home" / "events.sqlite").exists()

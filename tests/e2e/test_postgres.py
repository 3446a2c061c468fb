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
        row = conn.execute(query).fetchone()
    assert row is not None
    (count,) = row
    assert count == 7, "one persona, three agents and their attestations, in PostgreSQL"
    assert not (tmp_path / "home" / "events.sqlite").exists()


def test_init_on_postgresql_records_the_url_without_its_password_and_later_commands_use_it(
    tmp_path: Path, writer_file: Path
) -> None:
    from urllib.parse import urlsplit

    import psycopg

    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    password = urlsplit(POSTGRES_URL).password or ""
    cli = Cli(tmp_path / "home", base_environ())
    cli.ok("--store", f"{POSTGRES_URL}?schema={schema}", "init")
    record = (cli.home / "home.json").read_text()
    assert json.loads(record)["store"].endswith(f"?schema={schema}")
    assert password
    assert f":{password}@" not in record
    # No --store, no FLEETSYNC_STORE_URL: the record names the server, PGPASSWORD logs in.
    cli.environ["PGPASSWORD"] = password
    cli.ok("persona", "save", "writer", str(writer_file))
    assert "writer" in cli.ok("persona", "list").stdout
    # A second home cannot take over the same schema.
    other = Cli(tmp_path / "other", base_environ())
    result = other("--store", f"{POSTGRES_URL}?schema={schema}", "init")
    assert result.code == 1
    assert "already holds a fleetsync log" in result.stderr
    assert not other.home.exists()

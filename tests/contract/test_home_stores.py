"""Store-level parts of a home's identity and of reading a home nobody can write."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from adapters.keystore import KeyStore
from adapters.nostr.keys import SecretKey
from adapters.settings import StoreConfig
from adapters.store import identity
from adapters.store.errors import StoreDamaged
from adapters.store.viewstore import SQLiteViewStore
from adapters.vault import Vault
from projections.rows import PersonaRow
from tests.fleet_support import POSTGRES_URL


def persona_row(slug: str) -> PersonaRow:
    fields = dict.fromkeys(PersonaRow.__dataclass_fields__)
    fields.update(slug=slug, deleted=False)
    return PersonaRow(**fields)  # type: ignore[arg-type]


def test_a_view_recorded_for_another_home_is_emptied_to_be_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "view.sqlite"
    first = SQLiteViewStore(path, home_id="a" * 32)
    first.write(0, 7, [persona_row("writer")], [], "mark")
    first.close()
    same = SQLiteViewStore(path, home_id="a" * 32)
    assert same.position() == 7
    same.close()
    other = SQLiteViewStore(path, home_id="b" * 32)
    assert other.position() == 0
    assert other.persona_slugs() == []
    other.close()


def test_a_read_only_view_folds_in_memory_and_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "view.sqlite"
    stored = SQLiteViewStore(path, home_id="a" * 32)
    stored.write(0, 7, [persona_row("writer")], [], "mark")
    stored.close()
    before = path.read_bytes()
    copy = SQLiteViewStore(path, home_id="a" * 32, read_only=True)
    assert copy.position() == 7
    copy.write(7, 9, [persona_row("reviewer")], [], "mark2")
    assert copy.persona_slugs() == ["reviewer", "writer"]
    copy.close()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["view.sqlite"]


def test_the_key_store_keeps_the_first_home_identity_recorded(tmp_path: Path) -> None:
    vault = Vault(b"k" * 32, source="key-file")
    with KeyStore.create(tmp_path / "keys.sqlite", vault) as keys:
        keys.put(SecretKey.generate(), role="owner")
        keys.set_home_id("a" * 32)
        keys.set_home_id("b" * 32)
        assert keys.home_id() == "a" * 32
    # A store made before identities has no table for it: no identity, no error.
    with contextlib.closing(sqlite3.connect(tmp_path / "keys.sqlite")) as conn, conn:
        conn.execute("DROP TABLE home")
    with KeyStore.open(tmp_path / "keys.sqlite", vault) as keys:
        assert keys.home_id() is None


def test_the_probe_reads_an_empty_file_as_a_store_without_identity_and_writes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.sqlite"
    path.write_bytes(b"")
    store = StoreConfig(kind="sqlite", sqlite_path=path)
    assert identity.probe(store, 5) == identity.StoreState(home_id=None, events=0)
    assert path.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.sqlite"]
    identity.record(store, "a" * 32, 5)
    assert identity.probe(store, 5).home_id == "a" * 32


def test_the_probe_finds_a_file_cut_short_whatever_pages_it_reads(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE stored_events (x BLOB)")
        conn.executemany("INSERT INTO stored_events VALUES (?)", [(b"x" * 500,)] * 100)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 4096])
    with pytest.raises(StoreDamaged, match="cut short"):
        identity.probe(StoreConfig(kind="sqlite", sqlite_path=path), 5)


@pytest.mark.skipif(not POSTGRES_URL, reason="set FLEETSYNC_TEST_POSTGRES_URL (scripts/postgres)")
def test_the_identity_is_kept_in_the_postgresql_schema(tmp_path: Path) -> None:
    import uuid

    import psycopg

    from adapters.settings import parse_store_url

    schema = f"id_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    store = parse_store_url(f"{POSTGRES_URL}?schema={schema}", tmp_path)
    assert identity.probe(store, 5) == identity.StoreState(home_id=None, events=0)
    identity.record(store, "a" * 32, 5)
    identity.record(store, "b" * 32, 5)
    assert identity.probe(store, 5).home_id == "a" * 32

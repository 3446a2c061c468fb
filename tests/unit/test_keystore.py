"""The key store: sealed secret keys in SQLite, bulk puts, destruction with a tombstone."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.keystore import (
    ROLE_OWNER,
    KeyDestroyed,
    KeyNotFound,
    KeyStore,
    KeyStoreCorrupt,
    KeyStoreError,
    KeyStoreMissing,
)
from adapters.nostr.engram import Conversation
from adapters.nostr.keys import SecretKey
from adapters.vault import Vault
from domain.slugs import PERSONA_ENGRAM_SLUG


@pytest.fixture
def vault() -> Vault:
    return Vault(b"\x07" * 32, source="test")


@pytest.fixture
def store(tmp_path: Path, vault: Vault) -> Iterator[KeyStore]:
    ks = KeyStore.create(tmp_path / "keys.sqlite", vault)
    yield ks
    ks.close()


def test_a_stored_key_comes_back_as_the_same_secret_key(store: KeyStore) -> None:
    key = SecretKey.generate()
    store.put(key)
    assert store.get(key.public_key.hex) == key
    assert store.has(key.public_key.hex)


def test_an_unknown_key_is_reported_as_not_found(store: KeyStore) -> None:
    with pytest.raises(KeyNotFound, match="no secret key is stored"):
        store.get("ab" * 32)
    assert not store.has("ab" * 32)


def test_storing_the_same_key_twice_records_it_once(store: KeyStore) -> None:
    key = SecretKey.generate()
    store.put(key)
    store.put(key)
    assert store.count() == 1


def test_put_many_stores_a_thousand_keys_in_one_transaction(store: KeyStore) -> None:
    keys = [SecretKey.generate() for _ in range(1000)]
    store.put_many(keys)
    assert store.count() == 1000
    found = store.get_many([k.public_key.hex for k in keys[::100]])
    assert found == {k.public_key.hex: k for k in keys[::100]}


def test_a_batch_with_one_refused_key_stores_none_of_them(store: KeyStore) -> None:
    destroyed = SecretKey.generate()
    store.put(destroyed)
    store.destroy(destroyed.public_key.hex)
    fresh = [SecretKey.generate() for _ in range(3)]
    with pytest.raises(KeyDestroyed):
        store.put_many([*fresh, destroyed])
    assert not any(store.has(k.public_key.hex) for k in fresh)


def test_a_destroyed_key_cannot_be_read_and_leaves_a_tombstone(store: KeyStore) -> None:
    key = SecretKey.generate()
    store.put(key)
    assert store.destroy(key.public_key.hex) is True
    with pytest.raises(KeyDestroyed, match="was destroyed"):
        store.get(key.public_key.hex)
    assert not store.has(key.public_key.hex)
    assert store.is_destroyed(key.public_key.hex)
    assert store.destroy(key.public_key.hex) is False  # already gone: nothing to do


def test_a_destroyed_key_cannot_be_stored_again(store: KeyStore) -> None:
    key = SecretKey.generate()
    store.put(key)
    store.destroy(key.public_key.hex)
    with pytest.raises(KeyDestroyed, match="cannot be stored again"):
        store.put(key)


def test_destroying_a_key_never_stored_still_blocks_it_from_being_stored(
    store: KeyStore,
) -> None:
    key = SecretKey.generate()
    assert store.destroy(key.public_key.hex) is True
    with pytest.raises(KeyDestroyed):
        store.put(key)


def test_the_owner_key_is_kept_apart_from_agent_keys(store: KeyStore) -> None:
    owner = SecretKey.generate()
    store.put(owner, role=ROLE_OWNER)
    assert store.owner() == owner
    assert store.count() == 0
    with pytest.raises(KeyNotFound):
        store.get(owner.public_key.hex)  # not an agent key
    with pytest.raises(KeyStoreError, match="owner key cannot be destroyed"):
        store.destroy(owner.public_key.hex)


def test_a_second_owner_key_is_refused(store: KeyStore) -> None:
    store.put(SecretKey.generate(), role=ROLE_OWNER)
    with pytest.raises(KeyStoreError, match="different owner key"):
        store.put(SecretKey.generate(), role=ROLE_OWNER)


def test_secret_keys_are_encrypted_at_rest(tmp_path: Path, store: KeyStore) -> None:
    keys = [SecretKey.generate() for _ in range(20)]
    store.put_many(keys)
    store.put(SecretKey.generate(), role=ROLE_OWNER)
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for key in keys:
        assert key.secret_bytes() not in raw
        assert key.secret_hex().encode() not in raw
        assert key.secret_hex().upper().encode() not in raw
        assert key.nsec().encode() not in raw
        assert key.public_key.hex.encode() in raw  # the rows are there, in the clear


def test_a_destroyed_key_leaves_no_sealed_copy_in_the_file(tmp_path: Path, vault: Vault) -> None:
    path = tmp_path / "keys.sqlite"
    with KeyStore.create(path, vault) as ks:
        key = SecretKey.generate()
        ks.put(key)
        sealed = ks._conn.execute("SELECT sealed FROM keys").fetchone()[0]
        ks.destroy(key.public_key.hex)
    assert sealed.encode() not in path.read_bytes()  # secure_delete zeroed the old cell


def test_the_key_store_file_is_created_private(tmp_path: Path, store: KeyStore) -> None:
    assert stat.S_IMODE((tmp_path / "keys.sqlite").stat().st_mode) == 0o600


def test_opening_a_missing_key_store_fails_without_creating_one(
    tmp_path: Path, vault: Vault
) -> None:
    with pytest.raises(KeyStoreMissing, match="missing"):
        KeyStore.open(tmp_path / "nope.sqlite", vault)
    assert not (tmp_path / "nope.sqlite").exists()


def test_keys_sealed_under_another_master_key_are_refused(tmp_path: Path, vault: Vault) -> None:
    path = tmp_path / "keys.sqlite"
    key = SecretKey.generate()
    with KeyStore.create(path, vault) as ks:
        ks.put(key)
    with (
        KeyStore.open(path, Vault(b"\x08" * 32, source="test")) as other,
        pytest.raises(KeyStoreCorrupt, match="does not decrypt"),
    ):
        other.get(key.public_key.hex)


def test_a_sealed_key_moved_onto_another_row_is_refused(tmp_path: Path, vault: Vault) -> None:
    path = tmp_path / "keys.sqlite"
    a, b = SecretKey.generate(), SecretKey.generate()
    with KeyStore.create(path, vault) as ks:
        ks.put_many([a, b])
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE keys SET sealed = (SELECT sealed FROM keys WHERE pubkey = ?) WHERE pubkey = ?",
            (a.public_key.hex, b.public_key.hex),
        )
    with (
        KeyStore.open(path, vault) as ks,
        pytest.raises(KeyStoreCorrupt, match="belongs to another public key"),
    ):
        ks.get(b.public_key.hex)


def test_a_file_that_is_not_a_key_store_is_refused(tmp_path: Path, vault: Vault) -> None:
    path = tmp_path / "keys.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(KeyStoreCorrupt):
        KeyStore.open(path, vault)


def test_the_key_store_never_shows_keys_in_its_repr(store: KeyStore) -> None:
    key = SecretKey.generate()
    store.put(key)
    assert key.secret_hex() not in repr(store)
    assert key.secret_hex() not in repr(store.get(key.public_key.hex))


def test_keys_opened_in_bulk_for_an_apply_never_show_in_a_repr(store: KeyStore) -> None:
    # What KeySource.open_many hands the apply's worker thread: a traceback or a
    # debug log of it must not print a key.
    keys = [SecretKey.generate() for _ in range(3)]
    store.put_many(keys)
    sealed = store.sealed_many([k.public_key.hex for k in keys])
    opened = store.open_many(sealed)
    assert set(opened) == {k.public_key.hex for k in keys}
    shown = repr(sealed) + repr(opened) + str(opened)
    for key in keys:
        # As hex, as nsec, and as Python shows raw bytes.
        for form in (key.secret_hex(), key.nsec(), repr(key.secret_bytes())[2:-1]):
            assert form not in shown


def persona_d_tag(agent: SecretKey, owner: SecretKey) -> str:
    """Derived the way a reader does: from the owner's side of the conversation."""
    return Conversation.for_owner(owner, agent.public_key).d_tag(PERSONA_ENGRAM_SLUG)


def test_an_agent_key_is_stored_with_its_mem_persona_d_tag(store: KeyStore) -> None:
    owner = SecretKey.generate()
    store.put(owner, role=ROLE_OWNER)
    agents = [SecretKey.generate() for _ in range(3)]
    store.put_many(agents)
    pubkeys = [a.public_key.hex for a in agents]
    assert store.persona_d_tags([*pubkeys, "ab" * 32]) == {
        a.public_key.hex: persona_d_tag(a, owner) for a in agents
    }


def test_keys_stored_before_the_owner_get_their_d_tags_remembered_later(store: KeyStore) -> None:
    early = SecretKey.generate()
    store.put(early)
    owner = SecretKey.generate()
    store.put(owner, role=ROLE_OWNER)
    assert store.persona_d_tags([early.public_key.hex]) == {}
    store.remember_persona_d_tags({early.public_key.hex: persona_d_tag(early, owner)})
    store.remember_persona_d_tags({early.public_key.hex: "0" * 64})  # a kept one stays
    assert store.persona_d_tags([early.public_key.hex]) == {
        early.public_key.hex: persona_d_tag(early, owner)
    }


def test_a_schema_1_key_store_gains_the_d_tag_column_and_keeps_its_keys(
    tmp_path: Path, vault: Vault
) -> None:
    path = tmp_path / "keys.sqlite"
    key = SecretKey.generate()
    with sqlite3.connect(path) as conn:  # what schema 1 created
        conn.executescript(
            "CREATE TABLE keys (pubkey TEXT PRIMARY KEY, role TEXT NOT NULL "
            "CHECK (role IN ('owner', 'agent')), sealed TEXT, created_at TEXT NOT NULL, "
            "destroyed_at TEXT, CHECK ((sealed IS NULL) = (destroyed_at IS NOT NULL))) "
            "WITHOUT ROWID; PRAGMA user_version = 1;"
        )
        conn.execute(
            "INSERT INTO keys VALUES (?, 'agent', ?, '2026-01-01T00:00:00+00:00', NULL)",
            (key.public_key.hex, vault.seal(key.secret_bytes())),
        )
    conn.close()
    with KeyStore.open(path, vault) as store:
        assert store.get(key.public_key.hex) == key
        assert store.persona_d_tags([key.public_key.hex]) == {}
        store.remember_persona_d_tags({key.public_key.hex: "d" * 64})
        assert store.persona_d_tags([key.public_key.hex]) == {key.public_key.hex: "d" * 64}
    with KeyStore.open(path, vault) as store:  # migrated once, opens as schema 2
        assert store.count() == 1
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()

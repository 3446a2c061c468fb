"""The key store: the owner's and agents' secret keys, sealed with the vault, in SQLite.

Agents sign their own engrams, so whoever publishes needs every agent's secret
key; the owner key decrypts engrams and keys the secrets digest. They live in
``HOME/keys.sqlite``, one row per public key, the secret sealed by
:class:`adapters.vault.Vault` (the file alone reveals nothing). The CLI stores
an agent's key *before* the agent's creation event is saved: a key without an
agent is harmless, an agent without its key could never publish.

Destroying a retired agent's key replaces the sealed secret with NULL and keeps
a tombstone row (when, and that it happened), so the key can never be stored
again by mistake. ``secure_delete`` makes SQLite zero the freed bytes in the
file; copies outside it (backups, freed disk blocks of an old rollback journal)
are beyond its reach, which is why the secret is sealed in the first place.

Beside each agent key: its ``mem/persona`` d tag with the owner, derived as the
key is stored. It is public (every engram the agent publishes carries it), and
reading the relays needs it: kept, it saves every apply an ECDH per agent.

Used by :mod:`adapters.bootstrap` (opened per command) and the publisher.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from adapters.errors import PermanentAdapterError, TemporaryAdapterError
from adapters.nostr.errors import InvalidKey
from adapters.nostr.keys import PublicKey, SecretKey
from adapters.store.errors import StoreFull, StoreReadOnly, sqlite_error
from adapters.vault import Vault, VaultError
from domain.slugs import PERSONA_ENGRAM_SLUG

KEYS_FILE = "keys.sqlite"
ROLE_OWNER = "owner"
ROLE_AGENT = "agent"
_SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    pubkey TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('owner', 'agent')),
    sealed TEXT,
    created_at TEXT NOT NULL,
    destroyed_at TEXT,
    persona_d_tag TEXT,
    CHECK ((sealed IS NULL) = (destroyed_at IS NOT NULL))
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS keys_one_owner ON keys (role) WHERE role = 'owner';
CREATE TABLE IF NOT EXISTS home (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""
# The ``home`` table holds the home's identity (see adapters.home); stores made
# before it existed get it when the identity is first recorded.
# Schema 1 had no persona_d_tag; opening such a store adds the column (NULL: an
# apply derives the d tags it lacks and keeps them).
_MIGRATE_FROM_1 = "ALTER TABLE keys ADD COLUMN persona_d_tag TEXT"


class KeyStoreError(PermanentAdapterError):
    """Base class of permanent key store failures."""


class KeyStoreMissing(KeyStoreError):
    """The home has a vault but no key store file."""


class KeyStoreCorrupt(KeyStoreError):
    """The key store file is not a key store, or a row does not match its key."""


class KeyNotFound(KeyStoreError):
    """No secret key is stored for that public key."""


class KeyDestroyed(KeyStoreError):
    """The secret key was destroyed (its agent retired); it cannot be used or stored again."""


class KeyStoreBusy(TemporaryAdapterError):
    """Another process holds the key store's write lock longer than the lock timeout."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class KeyStore:
    """Sealed secret keys by public key (lower hex), plus the one owner key."""

    def __init__(self, conn: sqlite3.Connection, vault: Vault, path: Path) -> None:
        self._conn = conn
        self._vault = vault
        self.path = path

    # -- opening ------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, vault: Vault, *, lock_timeout: float = 10.0) -> KeyStore:
        """Create a new, empty key store file with mode 0600; never overwrite one."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        store = cls._connect(path, vault, lock_timeout)
        with store._errors():
            store._conn.executescript(_SCHEMA)
            store._conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        return store

    @classmethod
    def open(cls, path: Path, vault: Vault, *, lock_timeout: float = 10.0) -> KeyStore:
        """Open an existing key store; a missing file is an error, never created silently."""
        if not path.exists():
            raise KeyStoreMissing(
                f"the key store {path} is missing; restore it from a backup "
                "(agents cannot publish without their keys)"
            )
        store = cls._connect(path, vault, lock_timeout)
        with store._errors():
            version = store._conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 1:
            with store._write() as conn:
                if conn.execute("PRAGMA user_version").fetchone()[0] == 1:  # not raced
                    conn.execute(_MIGRATE_FROM_1)
                    conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            version = _SCHEMA_VERSION
        if version != _SCHEMA_VERSION:
            store.close()
            raise KeyStoreCorrupt(f"{path} is not a fleetsync key store (schema {version})")
        return store

    @classmethod
    def _connect(cls, path: Path, vault: Vault, lock_timeout: float) -> KeyStore:
        try:
            # mode=rw: a typo'd path must fail, not create an empty key store.
            conn = sqlite3.connect(
                f"{path.as_uri()}?mode=rw", uri=True, timeout=lock_timeout, isolation_level=None
            )
            conn.execute("PRAGMA secure_delete = ON")
        except sqlite3.Error as exc:
            raise KeyStoreCorrupt(f"cannot open the key store {path}: {exc}") from exc
        return cls(conn, vault, path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KeyStore({self.path})"

    # -- writing ------------------------------------------------------------------

    def put(self, key: SecretKey, *, role: str = ROLE_AGENT) -> None:
        """Store ``key``; storing a key already present (and live) records nothing."""
        self.put_many([key], role=role)

    def put_many(self, keys: Iterable[SecretKey], *, role: str = ROLE_AGENT) -> None:
        """Store many keys in one transaction: all of them, or none."""
        if role not in (ROLE_OWNER, ROLE_AGENT):
            raise ValueError(f"unknown key role {role!r}")
        now = _now()
        keys = list(keys)
        d_tags = self._persona_d_tags_of(keys) if role == ROLE_AGENT else {}
        rows = [
            (
                key.public_key.hex,
                role,
                self._vault.seal(key.secret_bytes()),
                now,
                d_tags.get(key.public_key.hex),
            )
            for key in keys
        ]
        with self._write() as conn:
            for pubkey, *_ in rows:
                found = conn.execute(
                    "SELECT role, destroyed_at FROM keys WHERE pubkey = ?", (pubkey,)
                ).fetchone()
                if found is None:
                    continue
                if found[1] is not None:
                    raise KeyDestroyed(
                        f"the secret key of {pubkey} was destroyed when its agent was retired; "
                        "it cannot be stored again"
                    )
                if found[0] != role:
                    raise KeyStoreError(f"{pubkey} is already stored as the {found[0]} key")
            if role == ROLE_OWNER and rows:
                owner = conn.execute("SELECT pubkey FROM keys WHERE role = 'owner'").fetchone()
                if owner is not None and owner[0] != rows[0][0]:
                    raise KeyStoreError("this key store already holds a different owner key")
            conn.executemany(
                "INSERT INTO keys (pubkey, role, sealed, created_at, persona_d_tag) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (pubkey) DO NOTHING",
                rows,
            )

    def _persona_d_tags_of(self, keys: Sequence[SecretKey]) -> dict[str, str]:
        """Each agent key's ``mem/persona`` d tag with the owner (an ECDH each).

        Derived once, as the key is stored: every apply's refresh asks the relays
        for these d tags, and would otherwise pay an ECDH per agent, every time.
        Before there is an owner key there is nothing to derive them with.
        """
        # Only storing keys derives d tags: a command that only opens the store (status,
        # plan) does not import the engram codec and the NIP-44 cipher under it.
        from adapters.nostr.engram import Conversation

        with self._errors():
            row = self._conn.execute("SELECT pubkey FROM keys WHERE role = 'owner'").fetchone()
        if row is None:
            return {}
        owner = PublicKey.from_hex(row[0])
        return {
            key.public_key.hex: Conversation.for_agent(key, owner).d_tag(PERSONA_ENGRAM_SLUG)
            for key in keys
        }

    def remember_persona_d_tags(self, d_tags: Mapping[str, str]) -> None:
        """Keep d tags an apply derived for keys stored without one (before schema 2)."""
        with self._write() as conn:
            conn.executemany(
                "UPDATE keys SET persona_d_tag = ? WHERE pubkey = ? AND persona_d_tag IS NULL",
                [(d_tag, pubkey) for pubkey, d_tag in d_tags.items()],
            )

    def destroy(self, pubkey: str) -> bool:
        """Destroy an agent's secret key, keeping a tombstone; False if already destroyed.

        A key that was never stored gets a tombstone too, so it cannot be stored later.
        """
        with self._write() as conn:
            found = conn.execute(
                "SELECT role, destroyed_at FROM keys WHERE pubkey = ?", (pubkey,)
            ).fetchone()
            if found is not None and found[0] == ROLE_OWNER:
                raise KeyStoreError("the owner key cannot be destroyed through an agent")
            if found is not None and found[1] is not None:
                return False
            now = _now()
            conn.execute(
                "INSERT INTO keys (pubkey, role, sealed, created_at, destroyed_at) "
                "VALUES (?, 'agent', NULL, ?, ?) "
                "ON CONFLICT (pubkey) DO UPDATE "
                "SET sealed = NULL, destroyed_at = excluded.destroyed_at",
                (pubkey, now, now),
            )
        return True

    def set_home_id(self, home_id: str) -> None:
        """Record the home's identity (see :mod:`adapters.home`); an existing one is kept."""
        with self._write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS home "
                "(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID"
            )
            conn.execute(
                "INSERT INTO home VALUES ('home_id', ?) ON CONFLICT (key) DO NOTHING", (home_id,)
            )

    # -- reading ------------------------------------------------------------------

    def home_id(self) -> str | None:
        """The home's identity recorded here; None in a store made before identities."""
        with self._errors():
            has_table = self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'home'"
            ).fetchone()
            if has_table is None:
                return None
            row = self._conn.execute("SELECT value FROM home WHERE key = 'home_id'").fetchone()
        return str(row[0]) if row else None

    def agent_key_count(self) -> int:
        """Agents' keys ever stored here, destroyed ones included."""
        with self._errors():
            row = self._conn.execute("SELECT count(*) FROM keys WHERE role = 'agent'").fetchone()
        return int(row[0])

    def owner(self) -> SecretKey:
        with self._errors():
            row = self._conn.execute(
                "SELECT pubkey, sealed FROM keys WHERE role = 'owner'"
            ).fetchone()
        if row is None:
            raise KeyStoreCorrupt(f"the key store {self.path} holds no owner key")
        return self._unseal(row[0], row[1])

    def get(self, pubkey: str) -> SecretKey:
        with self._errors():
            row = self._conn.execute(
                "SELECT pubkey, sealed, destroyed_at FROM keys WHERE pubkey = ? AND role = 'agent'",
                (pubkey,),
            ).fetchone()
        if row is None:
            raise KeyNotFound(f"no secret key is stored for agent {pubkey}")
        if row[2] is not None:
            raise KeyDestroyed(f"the secret key of agent {pubkey} was destroyed on {row[2]}")
        return self._unseal(row[0], row[1])

    def get_many(self, pubkeys: Sequence[str]) -> dict[str, SecretKey]:
        """The live keys among ``pubkeys``; missing or destroyed ones are left out."""
        return self.open_many(self.sealed_many(pubkeys))

    def sealed_many(self, pubkeys: Sequence[str]) -> dict[str, str]:
        """The live keys among ``pubkeys`` as stored (encrypted): :meth:`get_many`'s
        reading half. Only the thread that opened the store may call it."""
        return self._column_of(pubkeys, "sealed", "role = 'agent' AND sealed IS NOT NULL")

    def persona_d_tags(self, pubkeys: Sequence[str]) -> dict[str, str]:
        """The ``mem/persona`` d tags kept for ``pubkeys`` (those that have one).

        Not secret (every engram an agent publishes carries it), so kept in clear.
        """
        return self._column_of(pubkeys, "persona_d_tag", "persona_d_tag IS NOT NULL")

    def _column_of(self, pubkeys: Sequence[str], column: str, condition: str) -> dict[str, str]:
        """``column`` of the rows of ``pubkeys`` that meet ``condition``, by pubkey.

        ``column`` and ``condition`` are this module's constants, never input.
        """
        wanted = sorted(set(pubkeys))
        out: dict[str, str] = {}
        # Chunks stay under SQLite's bound-parameter limit (999 on old builds).
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" * len(chunk))  # placeholders only: the values are bound
            sql = f"SELECT pubkey, {column} FROM keys WHERE pubkey IN ({marks}) AND {condition}"  # noqa: S608
            with self._errors():
                out.update(self._conn.execute(sql, chunk).fetchall())
        return out

    def open_many(self, sealed: Mapping[str, str]) -> dict[str, SecretKey]:
        """Decrypt what :meth:`sealed_many` read: :meth:`get_many`'s decrypting half.

        Touches no connection, so any thread may run it; most of it (the key pair
        each key needs to sign) runs in libsecp256k1 without the GIL.
        """
        return {pubkey: self._unseal(pubkey, value) for pubkey, value in sealed.items()}

    def has(self, pubkey: str) -> bool:
        """True when a live (not destroyed) secret key is stored for ``pubkey``."""
        with self._errors():
            row = self._conn.execute(
                "SELECT 1 FROM keys WHERE pubkey = ? AND sealed IS NOT NULL", (pubkey,)
            ).fetchone()
        return row is not None

    def is_destroyed(self, pubkey: str) -> bool:
        with self._errors():
            row = self._conn.execute(
                "SELECT 1 FROM keys WHERE pubkey = ? AND destroyed_at IS NOT NULL", (pubkey,)
            ).fetchone()
        return row is not None

    def count(self) -> int:
        """Live agent keys (the owner key not included)."""
        with self._errors():
            row = self._conn.execute(
                "SELECT count(*) FROM keys WHERE role = 'agent' AND sealed IS NOT NULL"
            ).fetchone()
        return int(row[0])

    # -- helpers ------------------------------------------------------------------

    def _unseal(self, pubkey: str, sealed: str) -> SecretKey:
        try:
            key = SecretKey(self._vault.open(sealed))
        except (VaultError, InvalidKey) as exc:
            raise KeyStoreCorrupt(
                f"the stored key of {pubkey} does not decrypt with this home's master key"
            ) from exc
        # Binds the row to its key: a sealed secret copied onto another row is refused.
        if key.public_key.hex != pubkey:
            raise KeyStoreCorrupt(f"the stored key of {pubkey} belongs to another public key")
        return key

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._errors():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                # SQLite may have ended the transaction itself (a full disk does):
                # a ROLLBACK then would fail and hide the real cause.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise KeyStoreBusy(
                    f"the key store {self.path} is locked by another fleetsync process; retry"
                ) from exc
            translated = sqlite_error(exc, f"the key store {self.path}", self.path)
            if isinstance(translated, StoreReadOnly | StoreFull):
                raise translated from exc
            raise KeyStoreCorrupt(f"key store {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise KeyStoreCorrupt(f"{self.path} is not a usable key store: {exc}") from exc

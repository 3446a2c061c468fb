"""Provisioning a fleetsync home: creating one, and bringing an opened one into agreement.

:func:`create_home` (``fleetsync init``) makes the vault, the key store with the
owner key, the event store and ``home.json``, and writes the home's identity
into all three (see :mod:`adapters.home`); on failure it removes what it made,
so a retry starts clean. :func:`agree`, run each time a home is opened, checks
that its files belong together before anything reads the log, and upgrades a
home made before identities existed. Which eventsourcing environment makes the
event store is the composition root's (:mod:`adapters.bootstrap`): it hands
:func:`create_home` the callable that does it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adapters import home as homes
from adapters.errors import PermanentAdapterError
from adapters.home import (
    HomeRecord,
    Observed,
    check_agreement,
    create_private,
    is_writable,
    read_home_record,
    view_file,
    write_home_record,
)
from adapters.keystore import KEYS_FILE, ROLE_OWNER, KeyStore
from adapters.nostr.keys import SecretKey
from adapters.settings import Settings
from adapters.store import identity
from adapters.store.errors import StoreDamaged, StoreError
from adapters.store.viewstore import view_position
from adapters.vault import Vault, create_vault

# Makes the event store's tables: given the settings, the vault bound to the
# owner, and the owner's public key (hex).
CreateStore = Callable[[Settings, Vault, str], None]


class AlreadyInitialised(PermanentAdapterError):
    """``init`` was asked to create a home that already exists."""


@dataclass(frozen=True, slots=True)
class InitResult:
    home: Path
    owner_pubkey: str
    owner_npub: str
    secrets: str  # "argon2id" (passphrase) or "key-file"
    store: str  # a printable description, never a password


def create_home(
    settings: Settings, owner: SecretKey | None, create_store: CreateStore
) -> InitResult:
    """Create a fleetsync home: vault, key store with the owner key, event store, record.

    ``owner`` imports an existing owner identity; without it a key is generated.
    Refuses a directory that holds anything and an event store that already
    holds a log; on failure, removes what it created, so a retry starts clean.
    The home's identity is written into the key store, the event store and
    ``home.json`` (with the store URL, without its password).
    """
    home = settings.home
    existing = [
        name
        for name in (homes.VAULT_FILE, homes.KEY_FILE, KEYS_FILE, homes.HOME_FILE)
        if (home / name).exists()
    ]
    if home.is_dir() and existing:
        raise AlreadyInitialised(
            f"{home} is already a fleetsync home ({', '.join(existing)} exist); "
            "refusing to overwrite it. Use another --home, or remove it yourself."
        )
    store = settings.store
    events_path = store.sqlite_path if store.kind == "sqlite" else None
    if events_path is not None and events_path.exists() and events_path.stat().st_size > 0:
        raise AlreadyInitialised(
            f"the event store {events_path} already exists; refusing to reuse it for a new home"
        )
    if store.kind == "postgres":
        found = identity.probe(store, settings.connect_timeout)
        if found.home_id is not None or found.events > 0:
            raise AlreadyInitialised(
                f"the event store {store.describe()} already holds a fleetsync log; refusing "
                "to reuse it for a new home (give another database or ?schema=NAME)"
            )
    owner_key = owner if owner is not None else SecretKey.generate()
    home_id = homes.new_home_id()
    made_home = homes.prepare_home_dir(home)
    created: list[Path] = [
        home / name for name in (homes.VAULT_FILE, homes.KEY_FILE, KEYS_FILE, homes.HOME_FILE)
    ]
    try:
        vault = create_vault(
            home,
            passphrase=settings.passphrase,
            opslimit=settings.argon2_opslimit,
            memlimit=settings.argon2_memlimit,
        )
        with KeyStore.create(home / KEYS_FILE, vault, lock_timeout=settings.lock_timeout) as ks:
            ks.put(owner_key, role=ROLE_OWNER)
            ks.set_home_id(home_id)
        if events_path is not None:
            created.extend(
                Path(f"{events_path}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")
            )
            events_path.parent.mkdir(parents=True, exist_ok=True)
            # SQLite gives its -wal/-shm files the main file's mode: start it private.
            create_private(events_path)
        create_store(settings, vault.bound_to(owner_key), owner_key.public_key.hex)
        identity.record(store, home_id, settings.connect_timeout)
        write_home_record(home, HomeRecord(home_id=home_id, store=store.recorded_url(home)))
    except BaseException:
        for path in created:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if made_home:
            with contextlib.suppress(OSError):
                home.rmdir()
        raise
    return InitResult(
        home=home,
        owner_pubkey=owner_key.public_key.hex,
        owner_npub=owner_key.public_key.npub(),
        secrets=vault.source,
        store=store.describe(),
    )


def check_store_exists(settings: Settings) -> None:
    """A SQLite event store that is not there is an error, not an empty fleet
    (eventsourcing would create an empty store and report an empty fleet)."""
    store = settings.store
    path = store.sqlite_path if store.kind == "sqlite" else None
    if path is not None and not path.exists():
        raise StoreError(f"the event store {path} does not exist; check {_named_by(settings)}")


def store_read_only(settings: Settings) -> bool:
    """Whether the event store cannot be written (a read-only disk, or permissions)."""
    store = settings.store
    if store.kind != "sqlite" or store.sqlite_path is None:
        return False
    path = store.sqlite_path
    return not is_writable(path.parent) or (path.exists() and not os.access(path, os.W_OK))


def _named_by(settings: Settings) -> str:
    if settings.store_source == "default":
        return "--store / FLEETSYNC_STORE_URL"
    return settings.store_source


def agree(settings: Settings, keystore: KeyStore, *, read_only: bool) -> str | None:
    """Check that the home's files belong together; upgrade a home from before identities.

    Returns the home's identity (None for an in-memory store). Raises
    :class:`adapters.home.HomeMismatch` before anything is written when they do
    not agree. A home nobody can write (``read_only``) is checked, not upgraded.
    """
    store = settings.store
    if store.kind == "memory":
        return None
    home = settings.home
    record = read_home_record(home)
    found = identity.probe(store, settings.connect_timeout)
    view = view_file(settings)
    seen = Observed(
        home=home,
        record_id=record.home_id if record is not None else None,
        keys_id=keystore.home_id(),
        store_id=found.home_id,
        store=store.describe(),
        store_events=found.events,
        agent_keys=keystore.agent_key_count(),
        view_position=view_position(view),
        view_file=view,
    )
    agreement = check_agreement(seen)
    if not agreement.upgrade or read_only:
        # A home nobody can write keeps working as it is; it is upgraded when it can be.
        return agreement.home_id
    if agreement.write_store:
        path = store.sqlite_path if store.kind == "sqlite" else None
        if path is not None and (problem := identity.integrity_problem(path)) is not None:
            raise StoreDamaged(
                f"the event store {path} is damaged ({problem}); restore it from a backup. "
                "Nothing was changed."
            )
        identity.record(store, agreement.home_id, settings.connect_timeout)
    if agreement.write_keys:
        keystore.set_home_id(agreement.home_id)
    if agreement.write_record:
        url = record.store if record is not None else store.recorded_url(home)
        write_home_record(home, HomeRecord(home_id=agreement.home_id, store=url))
    return agreement.home_id

"""The composition root: builds a working fleet from :class:`adapters.settings.Settings`.

:func:`init` creates a fleetsync home (vault, key store with the owner key,
event store); :func:`bootstrap` opens one and returns a :class:`Fleet` holding
the application, the vault, the key store and the owner key, and building the
fleet view and the reconciler when a command asks. The CLI calls these and
nothing else to get at the store; tests call them with settings of their own.
What the reconciler alone needs (the relay wires and aiohttp under them, the
signers, the event writer) is imported when :meth:`Fleet.reconciler` or
:meth:`Fleet.relay_pool` builds it: a command that only reads the log never pays
for it at start-up.
What a home holds and how it is created or upgraded is :mod:`adapters.provision`
(with :mod:`adapters.home`); the apply lock is :mod:`adapters.locking`; store
errors are translated by :mod:`adapters.store.errors`.

Apart from :mod:`adapters.settings`, this is the only module that decides
anything from the environment: the eventsourcing environment is built here,
explicitly, so nothing the user happens to export (``CIPHER_KEY``,
``PERSISTENCE_MODULE``, ...) changes how the store is read.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.errors import PermanentAdapterError
from adapters.home import is_writable, view_file
from adapters.keystore import KEYS_FILE, KeyStore
from adapters.locking import LOCK_FILE, apply_lock
from adapters.nostr.keys import SecretKey
from adapters.provision import (
    InitResult,
    agree,
    check_store_exists,
    create_home,
    store_read_only,
)
from adapters.settings import Settings, StoreConfig
from adapters.store import identity
from adapters.store.errors import (
    is_damaged,
    read_only_error,
    store_errors,
)
from adapters.store.eventlog import RecorderEventLog, SQLiteEventLog
from adapters.store.viewstore import SQLiteViewStore, view_damage, view_error
from adapters.vault import NotInitialised, Vault, open_vault
from domain.application import FleetApplication
from domain.ports import EventLog
from projections.memory import MemoryViewStore
from projections.view import FleetView

if TYPE_CHECKING:  # imported where the reconciler is built (see above)
    from adapters.ports import AttestationLookup, Progress, Signer, Transport
    from adapters.relay import RelayPool
    from adapters.sync.engine import Reconciler

TRANSCODER_TOPIC = "adapters.store.transcoder:OrjsonTranscoder"
_APP_PREFIX = FleetApplication.name.upper() + "_"


__all__ = ["Fleet", "NoRelays", "bootstrap", "eventsourcing_env", "init"]

Notice = Callable[[str], None]


def _no_notice(message: str) -> None:
    """Library callers that pass no ``notice`` get none."""


class NoRelays(PermanentAdapterError):
    """Publishing needs at least one configured relay."""


@dataclass
class Fleet:
    """Everything a command needs, opened once; close it (or use ``with``) when done."""

    settings: Settings
    app: FleetApplication
    vault: Vault
    keystore: KeyStore
    owner: SecretKey
    env: dict[str, str] = field(repr=False)
    home_id: str | None = None  # None: an in-memory store (nothing to agree with)
    read_only: bool = False  # the home cannot be written: queries work, changes do not
    notice: Notice = field(default=_no_notice, repr=False)
    _view: FleetView | None = field(default=None, repr=False)
    _log: EventLog | None = field(default=None, repr=False)
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def view(self) -> FleetView:
        """The fleet view (read side), caught up with the log on every call."""
        if self._view is None:
            self._view = self._open_view()
        with store_errors(self.settings.store, self.settings.connect_timeout):
            try:
                self._view.catch_up()
            except sqlite3.DatabaseError as exc:
                if not is_damaged(exc):
                    raise view_error(exc, view_file(self.settings)) from exc
                # Damage found while folding: drop the file and fold the log again.
                self._view = self._open_view(damaged=str(exc))
                self._view.catch_up()
        return self._view

    def log(self) -> EventLog:
        """Read access to the whole event log, with log positions (audit, history)."""
        if self._log is None:
            store = self.settings.store
            if store.kind == "sqlite" and store.sqlite_path is not None:
                sqlite_log = SQLiteEventLog(store.sqlite_path)
                with store_errors(store):
                    sqlite_log.max_position()  # opens it: a damaged file fails here
                self._closers.append(sqlite_log.close)
                self._log = sqlite_log
            else:
                self._log = RecorderEventLog(self.app.recorder)
        return self._log

    def _open_view(self, damaged: str | None = None) -> FleetView:
        if self.settings.store.kind == "memory":
            return FleetView(self.log(), MemoryViewStore())
        path = view_file(self.settings)
        read_only = self.read_only or (path.exists() and not os.access(path, os.W_OK))
        if damaged is None and not read_only:
            damaged = view_damage(path)
        if damaged is not None and not read_only:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{path}{suffix}").unlink()
            self.notice(
                f"the fleet view {path} was damaged ({damaged}); it is a cache of the event "
                "log: rebuilt it from the log"
            )
        try:
            view_store = SQLiteViewStore(path, home_id=self.home_id, read_only=read_only)
        except sqlite3.Error as exc:
            raise view_error(exc, path) from exc
        self._closers.append(view_store.close)
        return FleetView(self.log(), view_store)

    @contextlib.asynccontextmanager
    async def reconciler(
        self,
        progress: Progress | None = None,
        *,
        ack_all: bool = False,
        view: FleetView | None = None,
    ) -> AsyncIterator[Reconciler]:
        """The reconciler over the configured relays, holding the home's apply lock.

        One apply at a time per home: two processes sealing for the same agents
        at once could each seal a different event for the same persona version.
        It plans from ``view``, the fleet view the caller has just caught up
        (the apply use case, which resolved its filters from it); without one,
        from the fleet's view, caught up now.
        """
        from adapters.nostr.signer import KeySigner
        from adapters.store.loader import AgentLoader
        from adapters.store.writer import writer_for
        from adapters.sync.engine import Reconciler
        from adapters.sync.gateway import PoolGateway

        urls = self.app.relay_urls()
        if not urls:
            raise NoRelays("no relays configured; add one with 'fleetsync relay add URL'")
        settings = self.settings
        keystore = self.keystore

        def signer_of(pubkey: str) -> Signer | None:
            key = keystore.get_many([pubkey]).get(pubkey)
            return None if key is None else KeySigner(key)

        gateway = PoolGateway(
            # One bound for every wait on a relay; a relay silent that long is given up
            # for the rest of the command (see adapters.relay.client).
            self.relay_pool(urls),
            window=settings.relay_window,
            timeout=settings.relay_timeout,
            query_timeout=settings.relay_timeout,
            signers=signer_of,
            reader=KeySigner(self.owner),
        )
        store = settings.store
        sqlite_path = store.sqlite_path if store.kind == "sqlite" else None
        loader = AgentLoader(self.app, sqlite_path)
        if self.read_only:
            raise read_only_error(f"the home {settings.home}", settings.home / LOCK_FILE)
        with apply_lock(settings.home):
            writer = writer_for(self.app, sqlite_path, settings.lock_timeout)
            try:
                yield Reconciler(
                    self.app,
                    view if view is not None else self.view(),
                    keystore,
                    self.owner,
                    self.vault.digest_key,
                    gateway,
                    batch_size=settings.batch_size,
                    progress=progress,
                    agents=loader,
                    writer=writer,
                    ack_all=ack_all,
                    foreign_heads=settings.foreign_heads,
                )
            finally:
                loader.close()
                writer.close()
                await gateway.close()

    def relay_pool(self, urls: list[str]) -> RelayPool:
        """A pool over ``urls``, each relay reached over the wire its URL names; the
        agents' attestations are looked up in the log once for the whole pool."""
        from adapters.attestation import Attestations
        from adapters.relay import RelayPool

        attestations = Attestations(self.app).for_agent
        return RelayPool(urls, transport_for=lambda url: self._transport_for(url, attestations))

    def _transport_for(self, url: str, attestations: AttestationLookup) -> Transport:
        """The wire a configured relay URL names: an ``http(s)://`` URL is a buzz
        relay's HTTP bridge, a ``ws(s)://`` one a websocket relay (one socket, or one
        per identity once the relay shows it binds one identity per socket)."""
        from adapters.relay.bridge import BridgeTransport, is_bridge_url
        from adapters.relay.client import RelayConnection
        from adapters.relay.identities import IdentityBoundRelay

        timeout = self.settings.relay_timeout
        if is_bridge_url(url):
            return BridgeTransport(
                url,
                connect_timeout=timeout,
                concurrency=self.settings.relay_window,
                attestations=attestations,
            )

        def websocket(written: str) -> RelayConnection:
            return RelayConnection(written, connect_timeout=timeout, attestations=attestations)

        return IdentityBoundRelay(url, websocket)

    def close(self) -> None:
        try:
            for close in reversed(self._closers):
                close()
            self.app.close()
        finally:
            self.keystore.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def eventsourcing_env(settings: Settings, *, read_only: bool = False) -> dict[str, str]:
    """The eventsourcing environment for ``settings.store``.

    Keys are given twice: plain, and prefixed with the application name. The
    application also reads ``os.environ``, where a prefixed key would win over
    a plain one; the prefixed copies here are applied last, so they always win.
    ``read_only`` opens a SQLite store for reading only and creates no tables.
    """
    store = settings.store
    base: dict[str, str] = {
        "TRANSCODER_TOPIC": TRANSCODER_TOPIC,
        # No cipher or compressor: the projections read stored state with orjson,
        # and secrets are sealed by the vault before they reach an event.
        "CIPHER_TOPIC": "",
        "CIPHER_KEY": "",
        "COMPRESSOR_TOPIC": "",
        "MAPPER_TOPIC": "",
        "IS_SNAPSHOTTING_ENABLED": "no",
        "CREATE_TABLE": "no" if read_only else "yes",
        "ORIGINATOR_ID_TYPE": "uuid",
    }
    base.update(_store_env(store, settings, read_only=read_only))
    return base | {_APP_PREFIX + key: value for key, value in base.items()}


def _store_env(store: StoreConfig, settings: Settings, *, read_only: bool) -> dict[str, str]:
    if store.kind == "sqlite" and store.sqlite_path is not None:
        path = store.sqlite_path
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": identity.sqlite_uri(path, read_only=True) if read_only else str(path),
            "SQLITE_LOCK_TIMEOUT": str(settings.lock_timeout),
        }
    if store.kind == "postgres":
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": store.postgres_dbname,
            "POSTGRES_HOST": store.postgres_host,
            "POSTGRES_PORT": store.postgres_port,
            "POSTGRES_USER": store.postgres_user,
            "POSTGRES_PASSWORD": store.postgres_password,
            "POSTGRES_SCHEMA": store.postgres_schema,
            "POSTGRES_LOCK_TIMEOUT": str(settings.lock_timeout),
            "POSTGRES_CONNECT_TIMEOUT": str(settings.connect_timeout),
        }
    return {"PERSISTENCE_MODULE": "eventsourcing.popo"}


def _open_app(
    settings: Settings, vault: Vault, owner_pubkey: str, *, read_only: bool = False
) -> FleetApplication:
    with store_errors(settings.store, settings.connect_timeout):
        return FleetApplication(
            eventsourcing_env(settings, read_only=read_only),
            vault=vault,
            owner_pubkey=owner_pubkey,
        )


def _create_event_store(settings: Settings, vault: Vault, owner_pubkey: str) -> None:
    """Opening the application once makes the event store's tables."""
    _open_app(settings, vault, owner_pubkey).close()


def init(settings: Settings, owner: SecretKey | None = None) -> InitResult:
    """Create a fleetsync home (:func:`adapters.provision.create_home`), its event store
    made with this module's eventsourcing environment."""
    return create_home(settings, owner, _create_event_store)


def bootstrap(
    settings: Settings,
    *,
    notice: Notice | None = None,
    passphrase_prompt: Callable[[], str] | None = None,
) -> Fleet:
    """Open an initialised home: check the passphrase or key file, load the owner key,
    and check that the home's files belong together before anything reads the log.

    ``notice`` receives one-line notes for the user (a view rebuilt, a home
    upgraded); ``passphrase_prompt`` asks for the passphrase when a
    passphrase-protected home is opened without one.
    """
    tell = notice if notice is not None else _no_notice
    if not settings.home.is_dir():
        raise NotInitialised(f"no fleetsync home at {settings.home}; run 'fleetsync init' first")
    vault = open_vault(settings.home, passphrase=settings.passphrase, prompt=passphrase_prompt)
    keystore = KeyStore.open(settings.home / KEYS_FILE, vault, lock_timeout=settings.lock_timeout)
    try:
        owner = keystore.owner()
        bound = vault.bound_to(owner)
        check_store_exists(settings)
        home_read_only = not is_writable(settings.home)
        store_cannot_write = store_read_only(settings)
        home_id = agree(settings, keystore, read_only=home_read_only or store_cannot_write)
        app = _open_app(settings, bound, owner.public_key.hex, read_only=store_cannot_write)
    except BaseException:
        keystore.close()
        raise
    return Fleet(
        settings=settings,
        app=app,
        vault=bound,
        keystore=keystore,
        owner=owner,
        env=eventsourcing_env(settings, read_only=store_cannot_write),
        home_id=home_id,
        read_only=home_read_only or store_cannot_write,
        notice=tell,
    )

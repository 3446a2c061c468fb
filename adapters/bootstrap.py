"""The composition root: builds a working fleet from :class:`adapters.settings.Settings`.

:func:`init` creates a fleetsync home (vault, key store with the owner key,
event store); :func:`bootstrap` opens one and returns a :class:`Fleet` holding
the application, the vault, the key store and the owner key. The CLI calls
these and nothing else to get at the store; tests call them with settings of
their own. Apart from :mod:`adapters.settings`, this is the only module that
decides anything from the environment: the eventsourcing environment is built
here, explicitly, so nothing the user happens to export (``CIPHER_KEY``,
``PERSISTENCE_MODULE``, ...) changes how the store is read.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from eventsourcing.persistence import (
    InfrastructureFactoryError,
    IntegrityError,
    OperationalError,
    PersistenceError,
)
from eventsourcing.utils import TopicError

from adapters.errors import PermanentAdapterError, TemporaryAdapterError
from adapters.keystore import KEYS_FILE, ROLE_OWNER, KeyStore
from adapters.nostr.keys import SecretKey
from adapters.relay import RelayPool
from adapters.settings import Settings, StoreConfig
from adapters.store.eventlog import RecorderEventLog, SQLiteEventLog
from adapters.store.loader import AgentLoader
from adapters.store.viewstore import SQLiteViewStore
from adapters.store.writer import writer_for
from adapters.sync.engine import Progress, Reconciler
from adapters.sync.relays import PoolGateway
from adapters.vault import (
    KEY_FILE,
    VAULT_FILE,
    NotInitialised,
    Vault,
    create_vault,
    open_vault,
)
from domain.application import FleetApplication
from domain.ports import EventLog
from projections.memory import MemoryViewStore
from projections.view import FleetView

TRANSCODER_TOPIC = "adapters.store.transcoder:OrjsonTranscoder"
_APP_PREFIX = FleetApplication.name.upper() + "_"


class StoreError(PermanentAdapterError):
    """The event store cannot be opened or used."""


class StoreBusy(TemporaryAdapterError):
    """Another process holds the event store's lock, or wrote concurrently: retry."""


class NoRelays(PermanentAdapterError):
    """Publishing needs at least one configured relay."""


class ApplyRunning(TemporaryAdapterError):
    """Another fleetsync process is applying to this home right now."""


@contextlib.contextmanager
def apply_lock(home: Path) -> Iterator[None]:
    """An exclusive lock on ``HOME/apply.lock``; the OS releases it if we die."""
    with open(home / "apply.lock", "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ApplyRunning(
                "another fleetsync apply is running on this home; wait for it and retry"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class AlreadyInitialised(PermanentAdapterError):
    """``init`` was asked to create a home that already exists."""


@dataclass(frozen=True, slots=True)
class InitResult:
    home: Path
    owner_pubkey: str
    owner_npub: str
    secrets: str  # "argon2id" (passphrase) or "key-file"
    store: str  # a printable description, never a password


@dataclass
class Fleet:
    """Everything a command needs, opened once; close it (or use ``with``) when done."""

    settings: Settings
    app: FleetApplication
    vault: Vault
    keystore: KeyStore
    owner: SecretKey
    env: dict[str, str] = field(repr=False)
    _view: FleetView | None = field(default=None, repr=False)
    _log: EventLog | None = field(default=None, repr=False)
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def view(self) -> FleetView:
        """The fleet view (read side), caught up with the log on every call."""
        if self._view is None:
            self._view = self._open_view()
        with store_errors(self.settings.store):
            self._view.catch_up()
        return self._view

    def log(self) -> EventLog:
        """Read access to the whole event log, with log positions (audit, history)."""
        if self._log is None:
            store = self.settings.store
            if store.kind == "sqlite" and store.sqlite_path is not None:
                sqlite_log = SQLiteEventLog(store.sqlite_path)
                self._closers.append(sqlite_log.close)
                self._log = sqlite_log
            else:
                self._log = RecorderEventLog(self.app.recorder)
        return self._log

    def _open_view(self) -> FleetView:
        if self.settings.store.kind == "memory":
            return FleetView(self.log(), MemoryViewStore())
        view_store = SQLiteViewStore(view_file(self.settings))
        self._closers.append(view_store.close)
        return FleetView(self.log(), view_store)

    @contextlib.asynccontextmanager
    async def reconciler(
        self, progress: Progress | None = None, *, ack_all: bool = False
    ) -> AsyncIterator[Reconciler]:
        """The reconciler over the configured relays, holding the home's apply lock.

        One apply at a time per home: two processes sealing for the same agents
        at once could each seal a different event for the same persona version.
        """
        urls = self.app.relay_urls()
        if not urls:
            raise NoRelays("no relays configured; add one with 'fleetsync relay add URL'")
        settings = self.settings
        keystore = self.keystore

        def signer(pubkey: str) -> SecretKey | None:
            return keystore.get_many([pubkey]).get(pubkey)

        gateway = PoolGateway(
            # One bound for every wait on a relay; a relay silent that long is given up
            # for the rest of the command (see adapters.relay.client).
            RelayPool(urls, connect_timeout=settings.relay_timeout),
            window=settings.relay_window,
            timeout=settings.relay_timeout,
            query_timeout=settings.relay_timeout,
            signer=signer,
        )
        store = settings.store
        sqlite_path = store.sqlite_path if store.kind == "sqlite" else None
        loader = AgentLoader(self.app, sqlite_path)
        with apply_lock(settings.home):
            writer = writer_for(self.app, sqlite_path, settings.lock_timeout)
            try:
                yield Reconciler(
                    self.app,
                    self.view(),
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


def view_file(settings: Settings) -> Path:
    """Where the fleet view of ``settings.store`` is kept (derived data, rebuilt at will).

    One file per store, so switching ``--store`` never reads a view folded from
    another store's log (their positions mean different things).
    """
    store = settings.store
    default = settings.home / "events.sqlite"
    if store.kind == "sqlite" and store.sqlite_path == default:
        return settings.home / "view.sqlite"
    tag = hashlib.sha256(store.describe().encode("utf-8")).hexdigest()[:12]
    return settings.home / f"view-{tag}.sqlite"


def eventsourcing_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment for ``settings.store``.

    Keys are given twice: plain, and prefixed with the application name. The
    application also reads ``os.environ``, where a prefixed key would win over
    a plain one; the prefixed copies here are applied last, so they always win.
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
        "CREATE_TABLE": "yes",
        "ORIGINATOR_ID_TYPE": "uuid",
    }
    base.update(_store_env(store, settings.lock_timeout))
    return base | {_APP_PREFIX + key: value for key, value in base.items()}


def _store_env(store: StoreConfig, lock_timeout: int) -> dict[str, str]:
    if store.kind == "sqlite":
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(store.sqlite_path),
            "SQLITE_LOCK_TIMEOUT": str(lock_timeout),
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
            "POSTGRES_LOCK_TIMEOUT": str(lock_timeout),
        }
    return {"PERSISTENCE_MODULE": "eventsourcing.popo"}


@contextlib.contextmanager
def store_errors(store: StoreConfig | None = None) -> Iterator[None]:
    """Translate the event store's exceptions into adapter errors, keeping the cause."""
    where = store.describe() if store is not None else "the event store"
    try:
        yield
    except IntegrityError as exc:
        raise StoreBusy(
            "another fleetsync process changed the same records at the same time; retry"
        ) from exc
    except OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreBusy(f"{where} is locked by another process; retry") from exc
        raise StoreError(f"{where}: {exc}") from exc
    except PersistenceError as exc:
        raise StoreError(f"{where}: {exc}") from exc
    except (InfrastructureFactoryError, TopicError, ImportError) as exc:
        hint = (
            " (PostgreSQL needs the 'postgres' extra: pip install 'fleetsync[postgres]')"
            if store is not None and store.kind == "postgres"
            else ""
        )
        raise StoreError(f"cannot load the event store module{hint}: {exc}") from exc


def _open_app(settings: Settings, vault: Vault, owner_pubkey: str) -> FleetApplication:
    with store_errors(settings.store):
        return FleetApplication(eventsourcing_env(settings), vault=vault, owner_pubkey=owner_pubkey)


def init(settings: Settings, owner: SecretKey | None = None) -> InitResult:
    """Create a fleetsync home: vault, key store with the owner key, event store.

    ``owner`` imports an existing owner identity; without it a key is generated.
    Refuses a home that already holds fleetsync files; on failure, removes what
    it created, so a retry starts clean.
    """
    home = settings.home
    if home.exists() and not home.is_dir():
        raise AlreadyInitialised(f"{home} exists and is not a directory")
    existing = [name for name in (VAULT_FILE, KEY_FILE, KEYS_FILE) if (home / name).exists()]
    if existing:
        raise AlreadyInitialised(
            f"{home} is already a fleetsync home ({', '.join(existing)} exist); "
            "refusing to overwrite it. Use another --home, or remove it yourself."
        )
    events_path = settings.store.sqlite_path if settings.store.kind == "sqlite" else None
    if events_path is not None and events_path.exists() and events_path.stat().st_size > 0:
        raise AlreadyInitialised(
            f"the event store {events_path} already exists; refusing to reuse it for a new home"
        )
    owner_key = owner if owner is not None else SecretKey.generate()
    created: list[Path] = []
    made_home = not home.exists()
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(home, 0o700)  # mkdir's mode is filtered by the umask
        created.extend(home / name for name in (VAULT_FILE, KEY_FILE, KEYS_FILE))
        vault = create_vault(
            home,
            passphrase=settings.passphrase,
            opslimit=settings.argon2_opslimit,
            memlimit=settings.argon2_memlimit,
        )
        with KeyStore.create(home / KEYS_FILE, vault, lock_timeout=settings.lock_timeout) as ks:
            ks.put(owner_key, role=ROLE_OWNER)
        if events_path is not None:
            created.extend(
                Path(f"{events_path}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")
            )
            events_path.parent.mkdir(parents=True, exist_ok=True)
            # SQLite gives its -wal/-shm files the main file's mode: start it private.
            fd = os.open(events_path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
        app = _open_app(settings, vault.bound_to(owner_key), owner_key.public_key.hex)
        app.close()
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
        store=settings.store.describe(),
    )


def bootstrap(settings: Settings) -> Fleet:
    """Open an initialised home: check the passphrase or key file, load the owner key."""
    if not settings.home.is_dir():
        raise NotInitialised(f"no fleetsync home at {settings.home}; run 'fleetsync init' first")
    vault = open_vault(settings.home, passphrase=settings.passphrase)
    keystore = KeyStore.open(settings.home / KEYS_FILE, vault, lock_timeout=settings.lock_timeout)
    try:
        owner = keystore.owner()
        bound = vault.bound_to(owner)
        path = settings.store.sqlite_path if settings.store.kind == "sqlite" else None
        if path is not None and not path.exists():
            # eventsourcing would create an empty store and report an empty fleet.
            raise StoreError(
                f"the event store {path} does not exist; check --store / FLEETSYNC_STORE_URL"
            )
        app = _open_app(settings, bound, owner.public_key.hex)
    except BaseException:
        keystore.close()
        raise
    return Fleet(
        settings=settings,
        app=app,
        vault=bound,
        keystore=keystore,
        owner=owner,
        env=eventsourcing_env(settings),
    )

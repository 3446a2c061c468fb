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
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from adapters import home as homes
from adapters.errors import AdapterError, PermanentAdapterError, TemporaryAdapterError
from adapters.home import (
    HomeMismatch,
    HomeNotEmpty,
    HomeRecord,
    Observed,
    check_agreement,
    create_private,
    is_writable,
    read_home_record,
    write_home_record,
)
from adapters.keystore import KEYS_FILE, ROLE_OWNER, KeyStore
from adapters.nostr.keys import SecretKey
from adapters.nostr.signer import KeySigner
from adapters.ports import Signer
from adapters.relay import RelayPool
from adapters.settings import Settings, StoreConfig
from adapters.store import identity
from adapters.store.errors import (
    StoreBusy,
    StoreDamaged,
    StoreError,
    read_only_error,
    sqlite_error,
    store_errors,
)
from adapters.store.eventlog import RecorderEventLog, SQLiteEventLog
from adapters.store.loader import AgentLoader
from adapters.store.viewstore import SQLiteViewStore, view_position
from adapters.store.writer import writer_for
from adapters.sync.engine import Reconciler
from adapters.sync.gateway import PoolGateway
from adapters.sync.report import Progress
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


__all__ = [
    "AlreadyInitialised",
    "ApplyRunning",
    "Fleet",
    "HomeMismatch",
    "HomeNotEmpty",
    "InitResult",
    "NoRelays",
    "StoreBusy",
    "StoreError",
    "apply_lock",
    "bootstrap",
    "init",
    "store_errors",
]

Notice = Callable[[str], None]


def _no_notice(message: str) -> None:
    """Library callers that pass no ``notice`` get none."""


class NoRelays(PermanentAdapterError):
    """Publishing needs at least one configured relay."""


class ApplyRunning(TemporaryAdapterError):
    """Another fleetsync process is applying to this home right now."""


@contextlib.contextmanager
def apply_lock(home: Path) -> Iterator[None]:
    """An exclusive lock on ``HOME/apply.lock``; the OS releases it if we die."""
    path = home / "apply.lock"
    create_private(path)
    try:
        handle = open(path, "a+b")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        if not is_writable(home) or not os.access(path, os.W_OK):
            raise read_only_error(f"the home {home}", path) from exc
        raise
    with handle:
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
                if not _damaged(exc):
                    raise _view_error(exc, view_file(self.settings)) from exc
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
            damaged = _view_damage(path)
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
            raise _view_error(exc, path) from exc
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
            RelayPool(urls, connect_timeout=settings.relay_timeout),
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
            raise read_only_error(f"the home {settings.home}", settings.home / "apply.lock")
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


def _damaged(exc: sqlite3.Error) -> bool:
    """Is this SQLite's word for a damaged file (as opposed to a lock, or a full disk)?"""
    text = str(exc).lower()
    return not isinstance(exc, sqlite3.OperationalError) and (
        "malformed" in text or "not a database" in text or "corrupt" in text
    )


def _view_damage(path: Path) -> str | None:
    """What SQLite finds wrong with the stored view; None when sound (or absent)."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    problem = identity.integrity_problem(path)
    if problem is None or "locked" in problem or "busy" in problem:
        return None
    # quick_check's first finding reads "*** in database main *** Page 8: ...".
    return problem.replace("*** in database main ***", "").strip()


def _view_error(exc: sqlite3.Error, path: Path) -> AdapterError:
    return sqlite_error(exc, f"the fleet view {path}", path)


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


def _store_read_only(settings: Settings) -> bool:
    """Whether the event store cannot be written (a read-only disk, or permissions)."""
    store = settings.store
    if store.kind != "sqlite" or store.sqlite_path is None:
        return False
    path = store.sqlite_path
    return not is_writable(path.parent) or (path.exists() and not os.access(path, os.W_OK))


def init(settings: Settings, owner: SecretKey | None = None) -> InitResult:
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
        for name in (VAULT_FILE, KEY_FILE, KEYS_FILE, homes.HOME_FILE)
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
        home / name for name in (VAULT_FILE, KEY_FILE, KEYS_FILE, homes.HOME_FILE)
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
        app = _open_app(settings, vault.bound_to(owner_key), owner_key.public_key.hex)
        app.close()
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
        store = settings.store
        path = store.sqlite_path if store.kind == "sqlite" else None
        if path is not None and not path.exists():
            # eventsourcing would create an empty store and report an empty fleet.
            raise StoreError(f"the event store {path} does not exist; check {_named_by(settings)}")
        home_read_only = not is_writable(settings.home)
        store_read_only = _store_read_only(settings)
        home_id = _agree(settings, keystore, read_only=home_read_only or store_read_only)
        app = _open_app(settings, bound, owner.public_key.hex, read_only=store_read_only)
    except BaseException:
        keystore.close()
        raise
    return Fleet(
        settings=settings,
        app=app,
        vault=bound,
        keystore=keystore,
        owner=owner,
        env=eventsourcing_env(settings, read_only=store_read_only),
        home_id=home_id,
        read_only=home_read_only or store_read_only,
        notice=tell,
    )


def _named_by(settings: Settings) -> str:
    if settings.store_source == "default":
        return "--store / FLEETSYNC_STORE_URL"
    return settings.store_source


def _agree(settings: Settings, keystore: KeyStore, *, read_only: bool) -> str | None:
    """Check that the home's files belong together; upgrade a home from before identities.

    Returns the home's identity (None for an in-memory store). Raises
    :class:`HomeMismatch` before anything is written when they do not agree.
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

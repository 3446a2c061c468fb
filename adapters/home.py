"""The fleetsync home as a whole: its files, its record, and whether its files agree.

A home is a directory holding the vault (``vault.json``, maybe ``master.key``),
the key store (``keys.sqlite``), usually the event store (``events.sqlite``),
the fleet view (``view.sqlite``, a cache) and ``home.json``, the home's
record: its **identity** (a random id made at ``init``) and the store URL
``init`` used (never a password), so later commands find the store without
being told again.

The identity is also written into the key store and the event store. Each
command compares them before it reads or writes anything
(:func:`check_agreement`): a key store from one home and an event store from
another (or an empty one, such as a 0-byte ``events.sqlite``) would otherwise
pass for a new, empty fleet whose agents' keys nobody can see any more. Homes
made before identities existed are upgraded on first open when their files
plausibly belong together (an empty log must not face agents' keys or a view
of a longer log).

Every file fleetsync creates in the home is private (0600) whatever the umask:
:func:`create_private` makes it so before SQLite or anyone else opens it
(SQLite gives its -wal and -shm files the mode of the database file).
Creating a home and upgrading an old one is :mod:`adapters.provision`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.errors import PermanentAdapterError

if TYPE_CHECKING:  # adapters.settings reads home.json through this module
    from adapters.settings import Settings

HOME_FILE = "home.json"
# The vault's files (:mod:`adapters.vault`): named here, with the home's other files,
# so that a page of the command line's help can quote them without loading libsodium.
VAULT_FILE = "vault.json"
KEY_FILE = "master.key"
_FORMAT_VERSION = 1
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


class HomeError(PermanentAdapterError):
    """The home cannot be created or opened as it is."""


class HomeNotEmpty(HomeError):
    """``init`` was pointed at a directory that already holds something."""


class HomeRecordCorrupt(HomeError):
    """``home.json`` cannot be read."""


class HomeMismatch(HomeError):
    """The home's files belong to different homes (or one of them was emptied)."""


@dataclass(frozen=True, slots=True)
class HomeRecord:
    """The contents of ``home.json``."""

    home_id: str
    store: str  # the store URL init used, without a password

    def to_json(self) -> str:
        doc = {"version": _FORMAT_VERSION, "home_id": self.home_id, "store": self.store}
        return json.dumps(doc, indent=2) + "\n"


def new_home_id() -> str:
    return uuid.uuid4().hex


def read_home_record(home: Path) -> HomeRecord | None:
    """The home's record, or None when it has none (a new home, or one made before it)."""
    path = home / HOME_FILE
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise HomeRecordCorrupt(f"cannot read {path}: {exc}") from exc
    try:
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("version") != _FORMAT_VERSION:
            raise HomeRecordCorrupt(f"{path} has an unknown format version; upgrade fleetsync")
        home_id, store = doc["home_id"], doc["store"]
        if not (isinstance(home_id, str) and home_id and isinstance(store, str) and store):
            raise ValueError("empty fields")
    except (ValueError, KeyError, TypeError) as exc:
        raise HomeRecordCorrupt(
            f"{path} is damaged; restore it from a backup (it holds the home's identity "
            "and its store URL)"
        ) from exc
    return HomeRecord(home_id=home_id, store=store)


def recorded_store_url(home: Path) -> str | None:
    """The store URL ``init`` recorded in ``home``, if any."""
    record = read_home_record(home)
    return record.store if record is not None else None


def write_home_record(home: Path, record: HomeRecord) -> None:
    """Write ``home.json`` (0600) atomically: a crash leaves the old one or the new one."""
    path = home / HOME_FILE
    temporary = home / f".{HOME_FILE}.tmp"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(record.to_json().encode("utf-8"))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


# -- provisioning ------------------------------------------------------------------------


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


def prepare_home_dir(home: Path) -> bool:
    """Create ``home`` (mode 0700) for ``init``; True if this call created it.

    An existing directory is used only when empty: one that holds anything is
    someone's, and neither its contents nor its mode are fleetsync's to change.
    An empty one is made private (0700).
    """
    if home.exists() and not home.is_dir():
        raise HomeNotEmpty(f"{home} exists and is not a directory; choose another --home")
    if home.is_dir():
        entries = sorted(entry.name for entry in home.iterdir())
        if entries:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise HomeNotEmpty(
                f"{home} is not empty ({shown}); 'fleetsync init' needs a new or empty "
                "directory. Choose another --home, or empty it yourself."
            )
        os.chmod(home, PRIVATE_DIR_MODE)
        return False
    home.mkdir(mode=PRIVATE_DIR_MODE, parents=True)
    os.chmod(home, PRIVATE_DIR_MODE)  # mkdir's mode is filtered by the umask
    return True


def create_private(path: Path) -> None:
    """Make sure ``path`` exists with mode 0600 before anything else opens it.

    A file fleetsync made earlier with a wider mode (under an older version, or
    a lax umask) is tightened; a file it cannot change is left as it is.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE)
    except OSError:
        return  # a read-only home: nothing can be created, nothing needs protecting
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            with contextlib.suppress(OSError):
                os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)


def tighten(path: Path) -> None:
    """Mode 0600 for an existing file of the home (its WAL, its SHM), if it exists."""
    with contextlib.suppress(OSError):
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, PRIVATE_FILE_MODE)


def is_writable(path: Path) -> bool:
    """Whether this process can create and change files in the directory ``path``."""
    return os.access(path, os.W_OK | os.X_OK)


# -- agreement -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observed:
    """What each of the home's files says about the home it belongs to."""

    home: Path
    record_id: str | None  # home.json
    keys_id: str | None  # keys.sqlite
    store_id: str | None  # the event store
    store: str  # a printable description of the event store
    store_events: int  # how many events (or the last log position) the store holds
    agent_keys: int  # agents' keys (live or destroyed) in keys.sqlite
    view_position: int  # the log position the stored view was folded to (0: none)
    view_file: Path | None = None


@dataclass(frozen=True, slots=True)
class Agreement:
    """What to write so that every file carries the home's identity."""

    home_id: str
    write_store: bool = False
    write_keys: bool = False
    write_record: bool = False

    @property
    def upgrade(self) -> bool:
        return self.write_store or self.write_keys or self.write_record


def check_agreement(seen: Observed, new_id: str | None = None) -> Agreement:
    """Decide whether the home's files belong together; raise :class:`HomeMismatch` if not.

    Pure: it reads nothing. ``new_id`` is the identity given to a home made
    before identities existed (a fresh one when None).
    """
    keys_file = seen.home / "keys.sqlite"
    record_file = seen.home / HOME_FILE
    named = {
        str(record_file): seen.record_id,
        str(keys_file): seen.keys_id,
        f"the event store {seen.store}": seen.store_id,
    }
    present = {name: value for name, value in named.items() if value is not None}
    if len(set(present.values())) > 1:
        listing = "; ".join(
            f"{name} belongs to home {value[:8]}" for name, value in present.items()
        )
        raise HomeMismatch(
            f"the files of the fleetsync home {seen.home} belong to different homes ({listing}). "
            f"{_REMEDY}"
        )
    if not present:
        _check_legacy(seen, keys_file)
        return Agreement(
            home_id=new_id or new_home_id(), write_store=True, write_keys=True, write_record=True
        )
    home_id = next(iter(present.values()))
    if seen.store_id is None:
        what = (
            "is empty (new, or emptied)"
            if seen.store_events == 0
            else f"holds {seen.store_events} events but no home identity"
        )
        others = " and ".join(name for name in present)
        raise HomeMismatch(
            f"the event store {seen.store} {what}, but {others} belong to home "
            f"{home_id[:8]}: it is not this home's event store. {_REMEDY}"
        )
    return Agreement(
        home_id=home_id,
        write_keys=seen.keys_id is None,
        write_record=seen.record_id is None,
    )


_REMEDY = (
    "Restore the missing or replaced file from a backup, or point --store / "
    "FLEETSYNC_STORE_URL at this home's event store. Nothing was changed."
)


def _check_legacy(seen: Observed, keys_file: Path) -> None:
    """A home from before identities: its files must at least not contradict each other."""
    if seen.store_events > 0:
        return
    if seen.agent_keys > 0:
        raise HomeMismatch(
            f"the event store {seen.store} is empty, but {keys_file} holds "
            f"{seen.agent_keys} agents' keys: it is not this home's event store, or it was "
            f"emptied. {_REMEDY}"
        )
    if seen.view_position > 0:
        raise HomeMismatch(
            f"the event store {seen.store} is empty, but the fleet view "
            f"{seen.view_file} was folded from a log of {seen.view_position} events: "
            f"it is not this home's event store, or it was emptied. {_REMEDY}"
        )

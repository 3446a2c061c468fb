"""Store failures a user can act on: translating SQLite's and PostgreSQL's errors.

sqlite3, psycopg and eventsourcing raise errors that say what went wrong inside
the database library ("disk I/O error", "attempt to write a readonly
database", "couldn't get a connection after 30.00 sec"). :func:`store_errors`
turns them into adapter errors that name the file or server and the fix: a
read-only home, a full disk, a damaged file, a server that cannot be reached,
a lock held by another process. The original is kept as ``__cause__``
(``--debug`` shows it).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from eventsourcing.persistence import (
    InfrastructureFactoryError,
    IntegrityError,
    PersistenceError,
)
from eventsourcing.utils import TopicError

from adapters.errors import AdapterError, PermanentAdapterError, TemporaryAdapterError
from adapters.settings import StoreConfig

# Less free space than this on the disk of a store that failed to write is
# taken as the cause: SQLite needs room for its journal and a page or more.
_NEARLY_FULL = 1 << 20

READ_ONLY_COMMANDS = "status, plan, persona list|show, agent list, relay list, audit"


class StoreError(PermanentAdapterError):
    """The event store cannot be opened or used."""


class StoreBusy(TemporaryAdapterError):
    """Another process holds the event store's lock, or wrote concurrently: retry."""


class StoreReadOnly(StoreError):
    """The command writes, and the store (or the home) cannot be written."""


class StoreFull(StoreError):
    """The disk holding a store is full."""


class StoreDamaged(StoreError):
    """A store file is not a readable SQLite database any more."""


class StoreUnreachable(StoreError):
    """The PostgreSQL server cannot be reached or refuses the login."""


@contextlib.contextmanager
def store_errors(
    store: StoreConfig | None = None, connect_timeout: int | None = None
) -> Iterator[None]:
    """Translate the event store's exceptions into adapter errors, keeping the cause."""
    try:
        yield
    except AdapterError:
        raise
    except (InfrastructureFactoryError, TopicError, ImportError) as exc:
        hint = (
            " (PostgreSQL needs the 'postgres' extra: pip install 'fleetsync[postgres]')"
            if store is not None and store.kind == "postgres"
            else ""
        )
        raise StoreError(f"cannot load the event store module{hint}: {exc}") from exc
    except (PersistenceError, sqlite3.Error) as exc:
        raise translate(exc, store, connect_timeout) from exc


def translate(
    exc: BaseException, store: StoreConfig | None, connect_timeout: int | None = None
) -> AdapterError:
    """The adapter error for a store exception (SQLite or PostgreSQL)."""
    if isinstance(exc, IntegrityError | sqlite3.IntegrityError):
        return StoreBusy(
            "another fleetsync process changed the same records at the same time; retry"
        )
    if store is not None and store.kind == "postgres":
        return postgres_error(exc, store, connect_timeout)
    path = store.sqlite_path if store is not None else None
    where = f"the event store {path}" if path is not None else "the event store"
    return sqlite_error(exc, where, path)


def is_damaged(exc: sqlite3.Error) -> bool:
    """Is this SQLite's word for a damaged file (as opposed to a lock, or a full disk)?"""
    text = str(exc).lower()
    return not isinstance(exc, sqlite3.OperationalError) and (
        "malformed" in text or "not a database" in text or "corrupt" in text
    )


def sqlite_error(exc: BaseException, where: str, path: Path | None) -> AdapterError:
    """The adapter error for an SQLite failure on the file ``path`` (described as ``where``)."""
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return StoreBusy(f"{where} is locked by another process; retry")
    folder = path.parent if path is not None else None
    if (
        "readonly" in lowered
        or "read-only" in lowered
        or ("unable to open" in lowered and folder is not None and not _writable(path))
    ):
        return read_only_error(where, path)
    full = (
        "disk is full" in lowered
        or "disk i/o error" in lowered
        or "cannot rollback" in lowered
        or "cannot commit" in lowered
    )
    free = free_bytes(folder) if full and folder is not None else None
    if free is not None and folder is not None and free < _NEARLY_FULL:
        return disk_full(where, folder, free)
    if "disk is full" in lowered:
        return StoreFull(f"{where} is full ({text}); free some space and retry")
    if "malformed" in lowered or "not a database" in lowered or "corrupt" in lowered:
        return StoreDamaged(
            f"{where} is damaged ({text}); restore it from a backup. Nothing was changed."
        )
    if "disk i/o error" in lowered:
        return StoreError(
            f"{where}: disk I/O error; check the disk holding it (free space, kernel log) and retry"
        )
    return StoreError(f"{where}: {text}")


def read_only_error(where: str, path: Path | None) -> StoreReadOnly:
    folder = f" ({path.parent})" if path is not None else ""
    return StoreReadOnly(
        f"{where} cannot be written: it or its directory{folder} is read-only. This command "
        "changes the fleet; make the home writable (remount it read-write, or fix its "
        f"permissions), or run only commands that read ({READ_ONLY_COMMANDS})."
    )


def disk_full(where: str, folder: Path, free: int) -> StoreFull:
    return StoreFull(
        f"no space left on the disk holding {where} ({folder}: {free:,} bytes free); "
        "free some space and retry. Nothing of this command was stored."
    )


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def free_bytes(folder: Path) -> int | None:
    """Bytes an unprivileged writer can still use on the disk of ``folder``."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def _writable(path: Path | None) -> bool:
    if path is None:
        return True
    folder = path.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    return not path.exists() or os.access(path, os.W_OK)


def postgres_error(
    exc: BaseException, store: StoreConfig, connect_timeout: int | None = None
) -> AdapterError:
    """The adapter error for a PostgreSQL failure; never shows the password."""
    server = f"{store.postgres_host}:{store.postgres_port}"
    text = " ".join(str(exc).split())
    if store.postgres_password:
        text = text.replace(store.postgres_password, "***")
    lowered = text.lower()
    if "lock" in lowered and "timeout" in lowered:
        return StoreBusy(f"the PostgreSQL store on {server} is locked by another process; retry")
    if "connection refused" in lowered:
        return StoreUnreachable(
            f"cannot reach the PostgreSQL server {server}: connection refused. Check that it "
            "is running and that the host and port of the store URL are right."
        )
    if "timeout" in lowered or "couldn't get a connection" in lowered or "timed out" in lowered:
        waited = f" within {connect_timeout} s" if connect_timeout else ""
        return StoreUnreachable(
            f"the PostgreSQL server {server} did not answer{waited}. Check that it is running "
            "and reachable, or allow it longer with FLEETSYNC_CONNECT_TIMEOUT (seconds)."
        )
    if "password" in lowered or "authentication" in lowered:
        return StoreUnreachable(
            f"the PostgreSQL server {server} refused the login of "
            f"{store.postgres_user or 'the default user'} ({_last_clause(text)}). Give the "
            "password in FLEETSYNC_STORE_URL (postgresql://user:password@host/db) or PGPASSWORD."
        )
    if "does not exist" in lowered:
        return StoreUnreachable(
            f"the PostgreSQL server {server}: {_last_clause(text)}; create it, or fix the "
            "store URL."
        )
    if "could not translate host name" in lowered or "name or service not known" in lowered:
        return StoreUnreachable(
            f"cannot find the PostgreSQL server {store.postgres_host}: {_last_clause(text)}. "
            "Check the host of the store URL."
        )
    return StoreError(f"the PostgreSQL store on {server}: {text}")


def _last_clause(text: str) -> str:
    """libpq's messages end in the part that matters ("... failed: FATAL: ...")."""
    return text.rsplit("failed: ", 1)[-1].strip()

"""Settings: where the fleetsync home is, which event store to use, who is acting.

This module and :mod:`adapters.bootstrap` are the only places that read the
process environment; everything else receives a :class:`Settings` value. The
CLI builds one with :meth:`Settings.load` from its flags, tests build one
directly (or with ``environ=`` a dict of their own).

Resolution order, first found wins:

- home: ``--home`` > ``$FLEETSYNC_HOME`` > ``$XDG_DATA_HOME/fleetsync`` >
  ``~/.local/share/fleetsync``;
- store: ``--store`` > ``$FLEETSYNC_STORE_URL`` > the URL ``init`` recorded in
  ``HOME/home.json`` > ``sqlite:///HOME/events.sqlite``; a recorded PostgreSQL
  URL has no password, which then comes from ``$PGPASSWORD``;
- actor (recorded in every event): ``$FLEETSYNC_ACTOR`` > the login name.
  ``FLEETSYNC_ACTOR`` obeys the rule for names (:mod:`domain.names`): not
  blank, at most 128 characters, no control, bidi or other unsafe character.
- another writer's new engram as an agent's head: ``$FLEETSYNC_FOREIGN_HEADS``,
  ``conflict`` (the default: it waits for ``apply --overwrite-conflicts``) or
  ``self-heal`` (the next apply writes the persona's version over it).
- legacy persona-pack teams (``team import|sync DIR``): ``$FLEETSYNC_LEGACY_TEAM_SYNC``,
  on by default as buzz's seed gated them (``0``/``false``/``no``/``off`` turns them off;
  ``buzz-team-snapshot`` files and ``team pull`` replace them).
- ``persona save|delete`` also publish the public ``kind:30175`` persona event (or its
  NIP-09 deletion) as the owner: ``$FLEETSYNC_PUBLISH_PERSONAS``, off by default.

Store URLs: ``sqlite:///absolute/path`` or SQLAlchemy's ``sqlite:////absolute/path``
(a relative path such as ``sqlite:events.sqlite`` is taken relative to the home),
``postgresql://user:password@host:port/dbname[?schema=NAME]`` (needs the
``postgres`` extra; ``postgres://`` and ``postgresql+psycopg://`` work too; the
server must answer within ``$FLEETSYNC_CONNECT_TIMEOUT`` seconds, default 5),
and ``memory:`` (eventsourcing's in-process store, for tests; nothing survives
the process).
"""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from adapters.errors import PermanentAdapterError
from adapters.home import recorded_store_url
from domain.errors import InvalidInput
from domain.names import check_name
from domain.planner import ForeignHeads

# libsodium's argon2id bounds; the defaults are its "interactive" profile
# (64 MiB of memory), paid once per command.
ARGON2_OPSLIMIT_MIN = 1
ARGON2_MEMLIMIT_MIN = 8192
ARGON2_OPSLIMIT_DEFAULT = 2
ARGON2_MEMLIMIT_DEFAULT = 67_108_864
DEFAULT_LOCK_TIMEOUT = 10  # seconds SQLite waits for another process's write lock


# Seconds to wait for a PostgreSQL server to accept a connection (libpq and the
# pool would otherwise wait 30 s or more in silence for a host that never answers).
DEFAULT_CONNECT_TIMEOUT = 5
DEFAULT_RELAY_TIMEOUT = 10
DEFAULT_RELAY_WINDOW = 200
# Engrams sealed, stored, sent and confirmed together. Each batch costs two commits
# and a few requests; 1,000 did better than 500 in ``scripts/bench apply
# --count 5000``, which is where to measure a change. Requests for heads are split further (see
# adapters.sync.heads.AUTHORS_PER_REQUEST).
DEFAULT_BATCH_SIZE = 1000


class SettingsError(PermanentAdapterError):
    """A setting (flag or environment variable) has a value fleetsync cannot use."""


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Which eventsourcing persistence module to use, and how to reach it."""

    kind: str  # "sqlite" | "postgres" | "memory"
    sqlite_path: Path | None = None
    postgres_dbname: str = ""
    postgres_host: str = ""
    postgres_port: str = ""
    postgres_user: str = ""
    postgres_password: str = field(default="", repr=False)
    postgres_schema: str = ""

    def describe(self) -> str:
        """A one-line description safe to print: never the password."""
        if self.kind == "sqlite":
            return f"sqlite://{self.sqlite_path}"  # the path is absolute: sqlite:///...
        if self.kind == "postgres":
            user = f"{self.postgres_user}@" if self.postgres_user else ""
            port = f":{self.postgres_port}" if self.postgres_port else ""
            return f"postgresql://{user}{self.postgres_host}{port}/{self.postgres_dbname}"
        return "memory:"

    def recorded_url(self, home: Path) -> str:
        """The URL ``init`` keeps in the home: never the password; a SQLite file in
        the home is kept relative to it, so the home can be moved as a whole."""
        if self.kind == "sqlite" and self.sqlite_path is not None:
            with contextlib.suppress(ValueError):
                return f"sqlite:{quote(str(self.sqlite_path.relative_to(home)))}"
            return f"sqlite://{quote(str(self.sqlite_path))}"
        if self.kind == "postgres":
            user = f"{quote(self.postgres_user, safe='')}@" if self.postgres_user else ""
            schema = f"?schema={quote(self.postgres_schema)}" if self.postgres_schema else ""
            host = f"[{self.postgres_host}]" if ":" in self.postgres_host else self.postgres_host
            return (
                f"postgresql://{user}{host}:{self.postgres_port}/"
                f"{quote(self.postgres_dbname, safe='')}{schema}"
            )
        return "memory:"


def parse_store_url(url: str, home: Path) -> StoreConfig:
    """Turn a store URL into a :class:`StoreConfig`; relative SQLite paths hang off ``home``.

    The forms people type are accepted: ``sqlite:///abs/path`` and SQLAlchemy's
    ``sqlite:////abs/path`` (both absolute), ``sqlite:relative/path``;
    ``postgresql://``, ``postgres://`` and SQLAlchemy's ``postgresql+psycopg://``
    (or ``+psycopg2``). Anything else is refused here, before ``init`` could make
    a home no command can open.
    """
    url = url.strip()
    if url in ("memory:", "memory://"):
        return StoreConfig(kind="memory")
    if url.startswith("sqlite:"):
        return StoreConfig(kind="sqlite", sqlite_path=_sqlite_path(url, home))
    scheme, sep, _ = url.partition("://")
    if sep and scheme.lower() in _POSTGRES_SCHEMES:
        return _postgres(url)
    # Never echo the URL: it may carry a database password.
    raise SettingsError(
        "unsupported store URL scheme; use sqlite:///PATH, "
        "postgresql://user:password@host:port/dbname or memory:"
    )


_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2")


def _sqlite_path(url: str, home: Path) -> Path:
    rest = url[len("sqlite:") :]
    if "?" in rest or "#" in rest:
        raise SettingsError(
            f"the SQLite store URL {url!r} has parameters; fleetsync takes none "
            "(give the file only: sqlite:///PATH)"
        )
    if rest.startswith("//"):
        rest = rest[2:]
        if rest and not rest.startswith("/"):
            raise SettingsError(
                f"the SQLite store URL {url!r} names a host; use sqlite:///ABSOLUTE/PATH "
                "or sqlite:RELATIVE/PATH (relative to the home)"
            )
    if ":memory:" in rest or "mode=memory" in rest:
        raise SettingsError("use the store URL 'memory:' for an in-memory store")
    text = unquote(rest)
    # "sqlite:////abs" (SQLAlchemy's absolute form) leaves "//abs": POSIX keeps a
    # leading "//" as something else than "/", and "file://abs" is a URI with a host.
    if text.startswith("//"):
        text = "/" + text.lstrip("/")
    if not text.strip("/"):
        raise SettingsError(f"store URL {url!r} names no database file")
    path = Path(text).expanduser()
    path = path if path.is_absolute() else home / path
    if path.name in ("", ".", ".."):
        raise SettingsError(f"store URL {url!r} names a directory, not a database file")
    return path


def _postgres(url: str) -> StoreConfig:
    parts = urlsplit(url)
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname or not parts.hostname:
        raise SettingsError(
            "a PostgreSQL store URL needs a host and a database: "
            "postgresql://user:password@host:port/dbname"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise SettingsError(f"the PostgreSQL store URL has an invalid port: {exc}") from None
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"schema"})
    if unknown:
        raise SettingsError(
            f"unknown PostgreSQL store URL parameter(s) {', '.join(unknown)}; "
            "only 'schema' is understood"
        )
    return StoreConfig(
        kind="postgres",
        postgres_dbname=dbname,
        postgres_host=parts.hostname,
        postgres_port=str(port) if port is not None else "5432",
        postgres_user=unquote(parts.username or ""),
        postgres_password=unquote(parts.password or ""),
        postgres_schema=query.get("schema", [""])[0],
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the composition root needs, resolved once."""

    home: Path
    store: StoreConfig
    passphrase: str | None = field(default=None, repr=False)
    actor: str = "unknown"
    argon2_opslimit: int = ARGON2_OPSLIMIT_DEFAULT
    argon2_memlimit: int = ARGON2_MEMLIMIT_DEFAULT
    lock_timeout: int = DEFAULT_LOCK_TIMEOUT
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT  # seconds to reach a PostgreSQL server
    # Seconds a command waits on a silent relay, all steps together: past it the
    # relay is given up for the rest of the command (see adapters.relay.client).
    relay_timeout: int = DEFAULT_RELAY_TIMEOUT
    relay_window: int = DEFAULT_RELAY_WINDOW  # EVENTs in flight per connection
    batch_size: int = DEFAULT_BATCH_SIZE  # agents sealed, sent and confirmed together
    # The password of NIP-49 key backups (``key export|import``); None: ask on a terminal.
    backup_passphrase: str | None = field(default=None, repr=False)
    # Another writer's new engram as an agent's head: a conflict, or written over.
    foreign_heads: ForeignHeads = ForeignHeads.CONFLICT
    # Legacy persona-pack directories (team import|sync DIR), as buzz's seed gated them.
    legacy_team_sync: bool = True
    # persona save|delete also publish the owner's kind:30175 (or its NIP-09 deletion).
    publish_personas: bool = False
    # Where the store URL came from: "--store", "FLEETSYNC_STORE_URL", the home's
    # record (see adapters.home) or "default"; error messages name it.
    store_source: str = "default"

    @classmethod
    def load(
        cls,
        *,
        home: str | os.PathLike[str] | None = None,
        store_url: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Resolve settings from flags (``home``, ``store_url``) and the environment."""
        env = os.environ if environ is None else environ
        home_path = resolve_home(home, env)
        store, source = _resolve_store(store_url, env, home_path)
        # An empty passphrase is treated as none: it would protect nothing.
        passphrase = env.get("FLEETSYNC_PASSPHRASE") or None
        return cls(
            home=home_path,
            store=store,
            passphrase=passphrase,
            actor=_actor(env),
            argon2_opslimit=_int_setting(
                env, "FLEETSYNC_ARGON2_OPSLIMIT", ARGON2_OPSLIMIT_DEFAULT, ARGON2_OPSLIMIT_MIN
            ),
            argon2_memlimit=_int_setting(
                env, "FLEETSYNC_ARGON2_MEMLIMIT", ARGON2_MEMLIMIT_DEFAULT, ARGON2_MEMLIMIT_MIN
            ),
            lock_timeout=_int_setting(env, "FLEETSYNC_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT, 1),
            relay_timeout=_int_setting(env, "FLEETSYNC_RELAY_TIMEOUT", DEFAULT_RELAY_TIMEOUT, 1),
            relay_window=_int_setting(env, "FLEETSYNC_RELAY_WINDOW", DEFAULT_RELAY_WINDOW, 1),
            batch_size=_int_setting(env, "FLEETSYNC_BATCH_SIZE", DEFAULT_BATCH_SIZE, 1),
            backup_passphrase=env.get("FLEETSYNC_BACKUP_PASSPHRASE") or None,
            foreign_heads=_foreign_heads(env),
            connect_timeout=_int_setting(
                env, "FLEETSYNC_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT, 1
            ),
            store_source=source,
            legacy_team_sync=_bool_setting(env, "FLEETSYNC_LEGACY_TEAM_SYNC", default=True),
            publish_personas=_bool_setting(env, "FLEETSYNC_PUBLISH_PERSONAS", default=False),
        )


def _resolve_store(flag: str | None, env: Mapping[str, str], home: Path) -> tuple[StoreConfig, str]:
    """The store and where it was named: flag > environment > the home's record > default."""
    if flag:
        store, source = parse_store_url(flag, home), "--store"
    elif env.get("FLEETSYNC_STORE_URL"):
        store, source = parse_store_url(env["FLEETSYNC_STORE_URL"], home), "FLEETSYNC_STORE_URL"
    elif (recorded := recorded_store_url(home)) is not None:
        store, source = parse_store_url(recorded, home), "the home's record"
    else:
        return StoreConfig(kind="sqlite", sqlite_path=home / "events.sqlite"), "default"
    if store.kind == "postgres" and not store.postgres_password and env.get("PGPASSWORD"):
        # The home records no password; libpq's own variable supplies it.
        store = replace(store, postgres_password=env["PGPASSWORD"])
    return store, source


def resolve_home(home: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    if home:
        chosen = Path(home)
    elif env.get("FLEETSYNC_HOME"):
        chosen = Path(env["FLEETSYNC_HOME"])
    elif env.get("XDG_DATA_HOME"):
        chosen = Path(env["XDG_DATA_HOME"]) / "fleetsync"
    else:
        chosen = Path("~/.local/share/fleetsync")
    return chosen.expanduser().absolute()


def _int_setting(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, not {value}")
    return value


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _bool_setting(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name)
    if not raw:
        return default
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise SettingsError(f"{name} must be one of {', '.join(_TRUE + _FALSE)}, not {raw!r}")


def _foreign_heads(env: Mapping[str, str]) -> ForeignHeads:
    raw = env.get("FLEETSYNC_FOREIGN_HEADS")
    if not raw:
        return ForeignHeads.CONFLICT
    try:
        return ForeignHeads(raw)
    except ValueError:
        choices = " or ".join(policy.value for policy in ForeignHeads)
        raise SettingsError(f"FLEETSYNC_FOREIGN_HEADS must be {choices}, not {raw!r}") from None


def _actor(env: Mapping[str, str]) -> str:
    raw = env.get("FLEETSYNC_ACTOR")
    if not raw:
        return _login_name()
    try:
        return check_name(raw, "FLEETSYNC_ACTOR")
    except InvalidInput as exc:
        raise SettingsError(str(exc)) from None


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no passwd entry (some containers): still record something
        return "unknown"

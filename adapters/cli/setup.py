"""``fleetsync init``: create a fleetsync home, and reading keys from the command line.

A secret key given on the command line (``init --owner-nsec``, ``agent import
--nsec``) may be an ``nsec``, 64 hex characters, or a NIP-49 ``ncryptsec``
(what ``key export`` writes, and what other Nostr clients export); the
password of an ``ncryptsec`` comes from ``FLEETSYNC_BACKUP_PASSPHRASE``, or is
asked for on the terminal.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import replace
from pathlib import Path

from adapters.bootstrap import init
from adapters.buzz.appdata import default_app_data_dir
from adapters.buzz.keyring import read_identity
from adapters.cli.commands import BACKUP_PASSPHRASE_ENV
from adapters.cli.output import Context
from adapters.errors import PermanentAdapterError
from adapters.home import KEY_FILE
from adapters.nostr import nip49
from adapters.nostr.keys import SecretKey
from adapters.vault import KDF_ARGON2ID, VaultError
from domain.errors import InvalidInput


def _new_passphrase(ctx: Context) -> str | None:
    """Ask for the new home's passphrase twice; empty means "use a key file instead"."""
    first = getpass.getpass(
        f"passphrase for the new fleetsync home {ctx.settings.home} "
        "(empty: seal with a key file instead): "
    )
    if not first:
        return None
    if getpass.getpass("the same passphrase again: ") != first:
        raise PassphraseMismatch("the two passphrases differ; nothing was created")
    return first


class PassphraseMismatch(VaultError):
    """The passphrase typed twice at ``init`` was not the same."""


class NcryptsecRefused(PermanentAdapterError):
    """An ``ncryptsec`` key that could not be opened (no password, a wrong one, damaged)."""


def read_secret_key(ctx: Context, value: str) -> SecretKey:
    """A secret key given on the command line, or read from stdin when ``value`` is '-':
    an ``nsec``, hex, or an ``ncryptsec`` opened with its password."""
    text = ctx.stdin.read().decode("utf-8", "replace") if value == "-" else value
    if text.strip().startswith(nip49.PREFIX):
        return _open_ncryptsec(ctx, text.strip())
    return SecretKey.parse(text)


def _open_ncryptsec(ctx: Context, text: str) -> SecretKey:
    password = ctx.settings.backup_passphrase or _ask_ncryptsec_password()
    try:
        return nip49.decrypt(text, password)[0]
    except nip49.NcryptsecError as exc:
        raise NcryptsecRefused(f"the ncryptsec key cannot be opened: {exc}") from None


def _ask_ncryptsec_password() -> str:
    # The key itself may have come through stdin ('-'): ask on the terminal,
    # which getpass opens on its own, whenever the process has one.
    try:
        fd = os.open("/dev/tty", os.O_RDONLY)
    except OSError:
        raise NcryptsecRefused(
            f"the key is an ncryptsec: set {BACKUP_PASSPHRASE_ENV} to its password, or run "
            "on a terminal to be asked for it"
        ) from None
    os.close(fd)
    password = getpass.getpass("password of the ncryptsec key: ")
    if not password:
        raise NcryptsecRefused("no password given for the ncryptsec key")
    return password


def run_init(ctx: Context) -> int:
    if ctx.args.owner_nsec and ctx.args.owner_from_buzz is not None:
        raise InvalidInput("give --owner-nsec or --owner-from-buzz, not both")
    owner = read_secret_key(ctx, ctx.args.owner_nsec) if ctx.args.owner_nsec else None
    if ctx.args.owner_from_buzz is not None:
        app_data = ctx.args.owner_from_buzz
        owner = read_identity(Path(app_data) if app_data else default_app_data_dir(ctx.environ))
    settings = ctx.settings
    if settings.passphrase is None and ctx.interactive() and ctx.args.owner_nsec != "-":
        settings = replace(settings, passphrase=_new_passphrase(ctx))
    result = init(settings, owner)
    if ctx.json:
        ctx.emit_json(
            {
                "home": str(result.home),
                "owner_pubkey": result.owner_pubkey,
                "owner_npub": result.owner_npub,
                "secrets": result.secrets,
                "store": result.store,
            }
        )
        return 0
    if result.secrets == KDF_ARGON2ID:
        secrets = (
            "sealed with a key derived from the passphrase (argon2id); commands read it "
            "from FLEETSYNC_PASSPHRASE, or ask for it on a terminal"
        )
    else:
        secrets = (
            f"sealed with the key file {result.home / KEY_FILE} (mode 0600); "
            "back it up, secrets cannot be read without it"
        )
    ctx.out(f"initialised fleetsync home {result.home}")
    ctx.out(f"  owner:   {result.owner_npub}")
    ctx.out(f"           {result.owner_pubkey}")
    ctx.out(f"  store:   {result.store}")
    ctx.out(f"  secrets: {secrets}")
    return 0

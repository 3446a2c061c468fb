"""``fleetsync init``: create a fleetsync home, and reading keys from the command line."""

from __future__ import annotations

import getpass
from dataclasses import replace

from adapters.bootstrap import init
from adapters.cli.output import Context, Subcommands, add_json_flag
from adapters.nostr.keys import SecretKey
from adapters.vault import KDF_ARGON2ID, KEY_FILE, VaultError


def register(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "init",
        help="create a fleetsync home (vault, key store, owner key, event store)",
        description="Create a fleetsync home in a new or empty directory. With "
        "FLEETSYNC_PASSPHRASE set (or typed when asked on a terminal), secrets are "
        "sealed with a key derived from it (argon2id); otherwise a key file "
        f"HOME/{KEY_FILE} (mode 0600) is created: back it up, secrets cannot be read "
        "without it. The store URL used is recorded in HOME/home.json (without its "
        "password), so later commands need no --store.",
    )
    parser.add_argument(
        "--owner-nsec",
        metavar="NSEC|-",
        help="use an existing owner key (nsec or hex) instead of generating one; "
        "'-' reads it from stdin, which keeps it out of shell history",
    )
    add_json_flag(parser)
    parser.set_defaults(func=run_init)


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


def read_secret_key(ctx: Context, value: str) -> SecretKey:
    """A secret key given on the command line, or read from stdin when ``value`` is '-'."""
    text = ctx.stdin.read().decode("utf-8", "replace") if value == "-" else value
    return SecretKey.parse(text)


def run_init(ctx: Context) -> int:
    owner = read_secret_key(ctx, ctx.args.owner_nsec) if ctx.args.owner_nsec else None
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

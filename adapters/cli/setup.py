"""``fleetsync init``: create a fleetsync home, and reading keys from the command line."""

from __future__ import annotations

from adapters.bootstrap import init
from adapters.cli.output import Context, Subcommands, add_json_flag
from adapters.nostr.keys import SecretKey
from adapters.vault import KDF_ARGON2ID, KEY_FILE


def register(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "init",
        help="create a fleetsync home (vault, key store, owner key, event store)",
        description="Create a fleetsync home. With FLEETSYNC_PASSPHRASE set, secrets are "
        "sealed with a key derived from it (argon2id); otherwise a key file "
        f"HOME/{KEY_FILE} (mode 0600) is created: back it up, secrets cannot be read "
        "without it.",
    )
    parser.add_argument(
        "--owner-nsec",
        metavar="NSEC|-",
        help="use an existing owner key (nsec or hex) instead of generating one; "
        "'-' reads it from stdin, which keeps it out of shell history",
    )
    add_json_flag(parser)
    parser.set_defaults(func=run_init)


def read_secret_key(ctx: Context, value: str) -> SecretKey:
    """A secret key given on the command line, or read from stdin when ``value`` is '-'."""
    text = ctx.stdin.read().decode("utf-8", "replace") if value == "-" else value
    return SecretKey.parse(text)


def run_init(ctx: Context) -> int:
    owner = read_secret_key(ctx, ctx.args.owner_nsec) if ctx.args.owner_nsec else None
    result = init(ctx.settings, owner)
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
        secrets = "sealed with a key derived from FLEETSYNC_PASSPHRASE (argon2id)"
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

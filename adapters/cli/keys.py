"""``fleetsync key export|import``: back up the owner's and agents' keys as NIP-49
``ncryptsec`` strings, and bring them back.

A backup is a text file, one key per line, which other Nostr clients can read
line by line (every ``ncryptsec`` is a standard NIP-49 string)::

    # fleetsync key backup ...
    owner  npub1...  ncryptsec1...
    agent  npub1...  ncryptsec1...  persona-slug  Agent name

The password comes from ``FLEETSYNC_BACKUP_PASSPHRASE`` or, on a terminal, a
prompt (asked twice on export). A plaintext key is written only with
``--print-plaintext-keys``, and then as ``nsec`` in place of the ``ncryptsec``.

``key import`` reads such a file all or nothing: every line is decrypted and
checked (its key must give the npub on its line; the owner line must be this
home's owner) before anything is stored. Keys of agents the log knows are put
back into the key store; agents it does not know are created (as imported)
only with ``--persona``. A second import of the same file changes nothing.
Which keys are written and what an import stores is
:mod:`adapters.usecases.keys`; the file format is this module's.
"""

from __future__ import annotations

import getpass
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from adapters.cli.commands import BACKUP_PASSPHRASE_ENV
from adapters.cli.output import Context, read_bounded
from adapters.keystore import ROLE_AGENT, ROLE_OWNER
from adapters.nostr import nip49
from adapters.nostr.errors import InvalidKey
from adapters.nostr.keys import PublicKey, SecretKey
from adapters.usecases.keys import (
    BackupError,
    BackupLine,
    ExportedKey,
    check_log_n,
    export_keys,
    import_keys,
)
from domain.slugs import persona_slug

HEADER = "# fleetsync key backup"
# A backup file holds a line per agent; a bound keeps a wrong file from being read whole.
MAX_BACKUP_BYTES = 64 * 1024 * 1024


def run_export(ctx: Context) -> int:
    args = ctx.args
    check_log_n(args.log_n)
    if args.persona:
        persona_slug(args.persona)  # bad input is refused before the store is opened
    output = Path(args.output) if args.output else None
    if output is not None and output.exists():
        raise BackupError(f"{output} exists; choose a new file (backups are never overwritten)")
    plaintext = bool(args.print_plaintext_keys)
    with ctx.fleet() as fleet:
        result = export_keys(
            fleet,
            password=None if plaintext else lambda: _password(ctx, confirm=True),
            agents=args.agent,
            persona=args.persona,
            owner=not args.no_owner,
            log_n=args.log_n,
        )
    entries = [_entry(k) for k in result.keys]
    skipped = list(result.skipped)
    if ctx.json and output is None:
        ctx.emit_json(
            {
                "format": "plaintext-nsec" if plaintext else "nip49-ncryptsec",
                "log_n": result.log_n,
                "keys": entries,
                "skipped_without_key": skipped,
            }
        )
        return 0
    text = _render(entries, result.log_n)
    if output is None:
        ctx.stdout.write(text)
    else:
        _write_new_private_file(output, text)
    if output is not None or not ctx.json:
        summary = f"exported {len(entries)} key(s)" + (f" to {output}" if output else "")
        if skipped:
            summary += f"; {len(skipped)} agent(s) have no key here (destroyed or never stored)"
        if plaintext:
            summary += "; UNENCRYPTED: anyone who reads them controls these identities"
        print(f"fleetsync: {summary}", file=sys.stderr)
    return 0


def run_import(ctx: Context) -> int:
    args = ctx.args
    slug = persona_slug(args.persona) if args.persona else None
    text = _read_backup(ctx, args.file)
    raw_lines = _parse(text)
    password = None
    if any(secret.startswith(nip49.PREFIX) for _, _, _, secret, _, _ in raw_lines):
        password = _password(ctx, confirm=False)
    lines = [_open_line(line, password) for line in raw_lines]
    with ctx.fleet() as fleet:
        result = import_keys(fleet, lines, persona=slug)
    if ctx.json:
        ctx.emit_json(
            {
                "restored": list(result.restored),
                "created": list(result.created),
                "unchanged": result.unchanged,
            }
        )
    else:
        ctx.out(
            f"restored {len(result.restored)} agent key(s), created {len(result.created)} "
            f"agent(s), {result.unchanged} already here"
            + ("; 'fleetsync apply' publishes their engrams" if result.created else "")
        )
    return 0


def _entry(key: ExportedKey) -> dict[str, str | None]:
    return {
        "role": key.role,
        "pubkey": key.pubkey,
        "npub": key.npub,
        "persona": key.persona,
        "name": key.name,
        "secret": key.secret,
    }


def _render(entries: list[dict[str, str | None]], log_n: int | None) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    kind = f"NIP-49 ncryptsec, scrypt log_n {log_n}" if log_n else "UNENCRYPTED nsec"
    lines = [
        f"{HEADER} {when}: {kind}",
        "# ROLE NPUB SECRET [PERSONA NAME...]",
    ]
    for e in entries:
        fields = [e["role"], e["npub"], e["secret"]]
        if e["persona"] is not None:
            fields += [e["persona"], e["name"] or ""]
        lines.append(" ".join(str(f) for f in fields).rstrip())
    return "\n".join(lines) + "\n"


_Raw = tuple[int, str, str, str, str | None, str | None]


def _parse(text: str) -> list[_Raw]:
    """The key lines of a backup: (line number, role, npub, secret, persona, name)."""
    out: list[_Raw] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = stripped.split(maxsplit=4)
        if len(fields) < 3 or fields[0] not in (ROLE_OWNER, ROLE_AGENT):
            raise BackupError(
                f"line {number}: expected 'owner NPUB SECRET' or 'agent NPUB SECRET [PERSONA NAME]'"
            )
        role, npub, secret = fields[0], fields[1], fields[2]
        persona = fields[3] if len(fields) > 3 else None
        name = fields[4] if len(fields) > 4 else None
        out.append((number, role, npub, secret, persona, name))
    if not out:
        raise BackupError("the backup holds no keys")
    return out


def _open_line(raw: _Raw, password: str | None) -> BackupLine:
    number, role, npub, secret, persona, name = raw
    try:
        if secret.startswith(nip49.PREFIX):
            key = nip49.decrypt(secret, password or "")[0]
        else:
            key = SecretKey.parse(secret)
        expected = PublicKey.parse(npub)
    except (nip49.NcryptsecError, InvalidKey) as exc:
        raise BackupError(f"line {number}: {exc}") from None
    if key.public_key != expected:
        raise BackupError(f"line {number}: the key does not belong to {npub}")
    return BackupLine(number, role, key, persona, name)


def _password(ctx: Context, *, confirm: bool) -> str:
    value = ctx.settings.backup_passphrase
    if value:
        return value
    if not sys.stdin.isatty():
        raise BackupError(f"set {BACKUP_PASSPHRASE_ENV}, or run on a terminal to be asked for it")
    first = getpass.getpass("backup password: ")
    if not first:
        raise BackupError("an empty password protects nothing")
    if confirm and getpass.getpass("backup password again: ") != first:
        raise BackupError("the two passwords differ; nothing was written")
    return first


def _read_backup(ctx: Context, name: str) -> str:
    data = read_bounded(ctx, name, MAX_BACKUP_BYTES)
    if data is None:
        raise BackupError(f"{name} is larger than {MAX_BACKUP_BYTES:,} bytes: not a key backup")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BackupError(f"{name} is not UTF-8 text: not a key backup") from None


def _write_new_private_file(path: Path, text: str) -> None:
    # O_EXCL: never overwrite (a backup written over another is a lost backup);
    # 0600 whatever the umask, since even encrypted keys invite offline guessing.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())

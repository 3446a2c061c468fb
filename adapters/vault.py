"""The secrets vault: the master key that seals secrets at rest, and the secrets-digest key.

Implements :class:`domain.ports.SecretsVault` for the application (persona
``env_vars``) and is what :mod:`adapters.keystore` seals agents' secret keys
with. The composition root (:mod:`adapters.bootstrap`) creates it at ``init``
and opens it for every command.

The 32-byte master key comes from one of two sources, chosen at ``init`` and
recorded in ``HOME/vault.json``:

- ``argon2id``: derived from ``FLEETSYNC_PASSPHRASE`` with a random salt and
  the ops/mem limits stored beside it (so later changes of the default limits
  do not lock anyone out);
- ``key-file``: 32 random bytes in ``HOME/master.key``, created with mode 0600;
  a key file other users can read is refused.

Either way ``vault.json`` holds a *check token* (a known plaintext sealed under
the master key), so a wrong passphrase is reported as such instead of surfacing
later as undecryptable secrets. Sealing is ``nacl.secret.SecretBox``
(XSalsa20-Poly1305, random nonce), base64 text out.

``digest_key`` keys :func:`domain.persona.secrets_digest`. It is derived from
the owner's secret key, not the master key, so it stays the same when the
vault is re-keyed and travels with the owner identity: secrets digests in
engram provenance then mean the same thing on every machine of that owner.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import stat
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash.argon2id
import nacl.secret
import nacl.utils

from adapters.errors import PermanentAdapterError
from adapters.home import KEY_FILE, VAULT_FILE
from adapters.nostr.keys import SecretKey

KEY_BYTES = 32
_FORMAT_VERSION = 1
_CHECK_PLAINTEXT = b"fleetsync/v1/vault-check"
_DIGEST_LABEL = b"fleetsync/v1/secrets-digest"
KDF_ARGON2ID = "argon2id"
KDF_KEY_FILE = "key-file"


class VaultError(PermanentAdapterError):
    """Base class of vault failures; none of their messages carries secret material."""


class NotInitialised(VaultError):
    """The home has no vault: ``fleetsync init`` was never run there."""


class PassphraseRequired(VaultError):
    """The vault is passphrase-protected and no passphrase was given."""


class PassphraseNotUsed(VaultError):
    """A passphrase was given for a home whose secrets are sealed with a key file."""


class WrongPassphrase(VaultError):
    """The passphrase does not open this vault."""


class InsecureKeyFile(VaultError):
    """The master key file is readable or writable by other users."""


class VaultCorrupt(VaultError):
    """``vault.json`` or the key file is damaged or does not belong to this home."""


class SealedSecretUnreadable(VaultError):
    """A sealed secret does not decrypt under this vault's master key."""


@dataclass(frozen=True, slots=True)
class VaultFile:
    """The contents of ``vault.json``: how to get the master key, and how to check it."""

    kdf: str  # KDF_ARGON2ID | KDF_KEY_FILE
    check: bytes
    salt: bytes = b""
    opslimit: int = 0
    memlimit: int = 0

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "version": _FORMAT_VERSION,
            "kdf": self.kdf,
            "check": _b64(self.check),
        }
        if self.kdf == KDF_ARGON2ID:
            doc.update(salt=_b64(self.salt), opslimit=self.opslimit, memlimit=self.memlimit)
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: Path) -> VaultFile:
        damaged = f"{where} is damaged; restore it from a backup"
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("version") != _FORMAT_VERSION:
                raise VaultCorrupt(f"{where} has an unknown format version; upgrade fleetsync")
            kdf = doc["kdf"]
            check = _unb64(doc["check"])
            if kdf == KDF_KEY_FILE:
                return cls(kdf=kdf, check=check)
            if kdf == KDF_ARGON2ID:
                salt = _unb64(doc["salt"])
                opslimit, memlimit = doc["opslimit"], doc["memlimit"]
                if len(salt) != nacl.pwhash.argon2id.SALTBYTES or not (
                    isinstance(opslimit, int) and isinstance(memlimit, int)
                ):
                    raise VaultCorrupt(damaged)
                return cls(kdf=kdf, check=check, salt=salt, opslimit=opslimit, memlimit=memlimit)
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise VaultCorrupt(damaged) from exc
        raise VaultCorrupt(damaged)


class Vault:
    """Seals and opens secrets with the master key; carries the secrets-digest key.

    Neither key ever appears in ``repr``, and pickling is refused so a vault
    cannot be persisted or sent to another process by accident.
    """

    __slots__ = ("_box", "_digest_key", "source")

    def __init__(self, master_key: bytes, *, source: str, digest_key: bytes | None = None) -> None:
        if len(master_key) != KEY_BYTES:
            raise VaultError(f"the master key must be {KEY_BYTES} bytes")
        self._box: Any = nacl.secret.SecretBox(bytes(master_key))
        self._digest_key = digest_key
        self.source = source

    def bound_to(self, owner: SecretKey) -> Vault:
        """This vault with the digest key of ``owner`` (the fleet's owner key)."""
        bound = Vault.__new__(Vault)
        bound._box = self._box
        bound._digest_key = derive_digest_key(owner.secret_bytes())
        bound.source = self.source
        return bound

    @property
    def digest_key(self) -> bytes:
        if self._digest_key is None:
            raise VaultError("the vault has no secrets-digest key until the owner key is loaded")
        return self._digest_key

    def seal(self, plaintext: bytes) -> str:
        return _b64(bytes(self._box.encrypt(bytes(plaintext))))

    def open(self, sealed: str) -> bytes:
        try:
            return bytes(self._box.decrypt(_unb64(sealed)))
        except (binascii.Error, ValueError, nacl.exceptions.CryptoError) as exc:
            raise SealedSecretUnreadable(
                "a sealed secret does not decrypt with this home's master key: it was sealed "
                "under another key, or the store is damaged"
            ) from exc

    def matches(self, check: bytes) -> bool:
        try:
            return bytes(self._box.decrypt(check)) == _CHECK_PLAINTEXT
        except (ValueError, nacl.exceptions.CryptoError):
            return False

    def __repr__(self) -> str:
        return f"Vault(<hidden>, source={self.source!r})"

    def __reduce__(self) -> Any:
        raise TypeError("a Vault holds key material and must not be pickled")


def derive_digest_key(owner_secret: bytes) -> bytes:
    """HMAC-SHA256(owner secret key, label): stable for as long as the owner key is."""
    return hmac.new(owner_secret, _DIGEST_LABEL, hashlib.sha256).digest()


def vault_exists(home: Path) -> bool:
    return (home / VAULT_FILE).exists()


def create_vault(
    home: Path,
    *,
    passphrase: str | None,
    opslimit: int,
    memlimit: int,
) -> Vault:
    """Create ``vault.json`` (and ``master.key`` without a passphrase) in ``home``.

    Refuses to overwrite either file. Returns the open vault (no digest key yet).
    """
    if passphrase:
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        vault = Vault(_derive(passphrase, salt, opslimit, memlimit), source=KDF_ARGON2ID)
        doc = VaultFile(
            kdf=KDF_ARGON2ID,
            check=_check_token(vault),
            salt=salt,
            opslimit=opslimit,
            memlimit=memlimit,
        )
    else:
        master = nacl.utils.random(KEY_BYTES)
        _write_private(home / KEY_FILE, (_b64(master) + "\n").encode("ascii"))
        vault = Vault(master, source=KDF_KEY_FILE)
        doc = VaultFile(kdf=KDF_KEY_FILE, check=_check_token(vault))
    _write_private(home / VAULT_FILE, doc.to_json().encode("utf-8"))
    return vault


def open_vault(
    home: Path, *, passphrase: str | None, prompt: Callable[[], str] | None = None
) -> Vault:
    """Open the vault of an initialised home, checking the passphrase or key file.

    ``prompt`` asks for the passphrase (on a terminal) when a passphrase-protected
    home is opened without one. A passphrase given for a key-file home is refused:
    ignoring it would let the user believe the home is protected by it.
    """
    path = home / VAULT_FILE
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise NotInitialised(
            f"{home} is not a fleetsync home (no {VAULT_FILE}); run 'fleetsync init' first"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VaultCorrupt(f"cannot read {path}: {exc}") from exc
    doc = VaultFile.from_json(text, path)
    if doc.kdf == KDF_ARGON2ID:
        if not passphrase and prompt is not None:
            passphrase = prompt()
        if not passphrase:
            raise PassphraseRequired(
                f"the fleetsync home {home} is passphrase-protected: set FLEETSYNC_PASSPHRASE"
            )
        try:
            master = _derive(passphrase, doc.salt, doc.opslimit, doc.memlimit)
        except VaultError:
            raise VaultCorrupt(f"{path} has argon2id limits libsodium refuses") from None
        vault = Vault(master, source=KDF_ARGON2ID)
        if not vault.matches(doc.check):
            raise WrongPassphrase("wrong passphrase (FLEETSYNC_PASSPHRASE)")
        return vault
    if passphrase:
        raise PassphraseNotUsed(
            f"FLEETSYNC_PASSPHRASE is set, but the fleetsync home {home} seals its secrets with "
            f"the key file {home / KEY_FILE}, not a passphrase; unset FLEETSYNC_PASSPHRASE"
        )
    vault = Vault(_read_key_file(home / KEY_FILE), source=KDF_KEY_FILE)
    if not vault.matches(doc.check):
        raise VaultCorrupt(
            f"{home / KEY_FILE} is not the master key of this home; restore the right key file"
        )
    return vault


def _derive(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    # NFC so the same passphrase typed on different systems gives the same key.
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    try:
        key = nacl.pwhash.argon2id.kdf(
            KEY_BYTES, secret, salt, opslimit=opslimit, memlimit=memlimit
        )
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise VaultError("argon2id key derivation failed") from exc
    return bytes(key)


def _check_token(vault: Vault) -> bytes:
    return _unb64(vault.seal(_CHECK_PLAINTEXT))


def _read_key_file(path: Path) -> bytes:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise VaultCorrupt(
            f"the master key file {path} is missing; restore it from your backup "
            "(without it the secrets in this home cannot be read)"
        ) from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise InsecureKeyFile(
            f"the master key file {path} is accessible to other users "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); run 'chmod 600 {path}' and retry"
        )
    try:
        raw = _unb64(path.read_text("ascii").strip())
    except (OSError, ValueError, binascii.Error) as exc:
        raise VaultCorrupt(f"the master key file {path} is unreadable or damaged") from exc
    if len(raw) != KEY_BYTES:
        raise VaultCorrupt(f"the master key file {path} does not hold a {KEY_BYTES}-byte key")
    return raw


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 (never overwriting) and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError("expected base64 text")
    return base64.b64decode(text.encode("ascii"), validate=True)

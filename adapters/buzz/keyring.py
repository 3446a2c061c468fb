"""The one OS keyring item in which the buzz desktop keeps its keys (reference §4.4).

Since buzz #1267 every secret sits in a single item of the ``keyring`` Rust
crate (3.6.3): service ``buzz-desktop`` (``buzz-desktop-dev[.<scope>]`` for a
debug build), user ``secrets``, its value UTF-8 JSON mapping ``"identity"`` to
the owner's ``nsec`` and ``"agent:<pubkey hex>"`` to each agent's.

On Linux the crate writes it through the Secret Service
(``sync-secret-service``, ``keyring-rs`` ``src/secret_service.rs``): an item
in the default collection with the attributes ``service``, ``username``,
``target`` (``default``) and ``application`` (``rust-keyring``), labelled
``secrets@buzz-desktop:default (keyring v3.6.3)``, content type
``text/plain``. Python's ``keyring`` finds it by ``service`` and ``username``,
so it is read through that library: the macOS Keychain item (service and
account) is found the same way. On Windows the crate names the credential
``secrets.buzz-desktop`` (buzz #5959), which ``keyring`` looks up as that service.

The value is read once, checked, and only ever held as parsed keys; nothing
here logs or returns it as text.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adapters.buzz import KEYRING_SERVICE
from adapters.errors import PermanentAdapterError
from adapters.nostr.errors import InvalidKey
from adapters.nostr.keys import SecretKey
from domain import strictjson

USER = "secrets"
IDENTITY = "identity"
AGENT_PREFIX = "agent:"


class BuzzKeyringError(PermanentAdapterError):
    """buzz's keyring item cannot be read, or does not hold what buzz writes."""


@dataclass(frozen=True, slots=True)
class BuzzSecrets:
    """The keys of buzz's keyring item, by public key (lower hex)."""

    identity: SecretKey | None = field(repr=False)
    agents: Mapping[str, SecretKey] = field(repr=False)


def read_secrets(service: str = KEYRING_SERVICE, *, platform: str | None = None) -> BuzzSecrets:
    """Read and check buzz's keyring item (``service``, user ``secrets``)."""
    import keyring
    from keyring.errors import KeyringError

    system = sys.platform if platform is None else platform
    # keyring-rs on Windows targets "<user>.<service>" (buzz #5959).
    lookup = f"{USER}.{service}" if system.startswith("win32") else service
    where = f"the OS keyring item of service {service!r}, user {USER!r}"
    try:
        value = keyring.get_password(lookup, USER)
    except KeyringError as exc:
        raise BuzzKeyringError(
            f"{where} cannot be read ({type(exc).__name__}: {_first_line(exc)}); unlock the "
            "keyring, or run where buzz's keyring is reachable"
        ) from None
    if value is None:
        raise BuzzKeyringError(
            f"{where} does not exist, so the agents without a private_key_nsec have no key here"
        )
    return parse_secrets(value, where)


LEGACY_IDENTITY_FILE = "identity.key"


def read_identity(app_data: Path, service: str = KEYRING_SERVICE) -> SecretKey:
    """buzz's owner identity: the keyring item's ``identity``, else the legacy
    ``identity.key`` file buzz kept in its app-data directory before (hex or nsec)."""
    try:
        identity = read_secrets(service).identity
        problem = f"buzz's keyring item (service {service!r}) has no identity"
    except BuzzKeyringError as exc:
        identity, problem = None, str(exc)
    if identity is not None:
        return identity
    legacy = app_data / LEGACY_IDENTITY_FILE
    if not legacy.is_file():
        raise BuzzKeyringError(f"{problem}, and there is no {legacy}")
    try:
        return SecretKey.parse(legacy.read_text(encoding="utf-8", errors="replace"))
    except InvalidKey:
        raise BuzzKeyringError(f"{legacy} does not hold a key (hex or nsec)") from None


def parse_secrets(value: str, where: str) -> BuzzSecrets:
    """Check the item's JSON; every message names the entry, never a secret."""
    try:
        blob = strictjson.loads(value)
    except strictjson.StrictJSONError:
        raise BuzzKeyringError(f"{where} does not hold JSON, as buzz writes it") from None
    if not isinstance(blob, dict):
        raise BuzzKeyringError(f"{where} does not hold a JSON object of keys")
    identity = None
    agents: dict[str, SecretKey] = {}
    for name, secret in blob.items():
        if name != IDENTITY and not name.startswith(AGENT_PREFIX):
            continue  # a secret that is not a key: not ours to read
        if not isinstance(secret, str):
            raise BuzzKeyringError(f"{where}: entry {name!r} is not a string")
        try:
            key = SecretKey.from_nsec(secret)
        except InvalidKey:
            raise BuzzKeyringError(f"{where}: entry {name!r} is not a valid nsec") from None
        if name == IDENTITY:
            identity = key
            continue
        pubkey = name[len(AGENT_PREFIX) :].lower()
        if key.public_key.hex != pubkey:
            raise BuzzKeyringError(f"{where}: entry {name!r} holds the key of another pubkey")
        agents[pubkey] = key
    return BuzzSecrets(identity, agents)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no detail"

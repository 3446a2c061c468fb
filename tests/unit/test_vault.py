"""The vault: master key from a passphrase or a key file, sealing, the secrets-digest key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import pickle
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.home import KEY_FILE, VAULT_FILE
from adapters.nostr.keys import SecretKey
from adapters.vault import (
    InsecureKeyFile,
    NotInitialised,
    PassphraseRequired,
    SealedSecretUnreadable,
    Vault,
    VaultCorrupt,
    VaultError,
    WrongPassphrase,
    create_vault,
    derive_digest_key,
    open_vault,
)

# libsodium's minimum argon2id cost: the suite tests the logic, not the cost.
FAST = {"opslimit": 1, "memlimit": 8192}
OWNER = SecretKey(bytes(range(1, 33)))


def make_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    return home


def test_a_passphrase_vault_reopens_with_the_same_passphrase(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    sealed = create_vault(home, passphrase="correct horse", **FAST).seal(b"secret")
    reopened = open_vault(home, passphrase="correct horse")
    assert reopened.open(sealed) == b"secret"
    assert reopened.source == "argon2id"
    assert not (home / KEY_FILE).exists()


def test_a_wrong_passphrase_is_reported_as_a_wrong_passphrase(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    create_vault(home, passphrase="correct horse", **FAST)
    with pytest.raises(WrongPassphrase, match=r"^wrong passphrase \(FLEETSYNC_PASSPHRASE\)$"):
        open_vault(home, passphrase="battery staple")


def test_a_passphrase_home_opened_without_a_passphrase_asks_for_one(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    create_vault(home, passphrase="correct horse", **FAST)
    with pytest.raises(PassphraseRequired, match="set FLEETSYNC_PASSPHRASE"):
        open_vault(home, passphrase=None)


def test_the_passphrase_is_compared_after_unicode_normalisation(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    create_vault(home, passphrase="caf\u00e9", **FAST)  # precomposed é
    open_vault(home, passphrase="cafe\u0301")  # e + combining acute: the same text


def test_vault_json_records_the_argon2_parameters_but_no_key(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    create_vault(home, passphrase="correct horse", **FAST)
    doc = json.loads((home / VAULT_FILE).read_text())
    assert doc["kdf"] == "argon2id"
    assert (doc["opslimit"], doc["memlimit"]) == (1, 8192)
    assert set(doc) == {"version", "kdf", "check", "salt", "opslimit", "memlimit"}
    assert stat.S_IMODE((home / VAULT_FILE).stat().st_mode) == 0o600


def test_without_a_passphrase_a_key_file_with_mode_0600_is_created(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    old_umask = os.umask(0)  # even a permissive umask must not widen the key file
    try:
        vault = create_vault(home, passphrase=None, **FAST)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((home / KEY_FILE).stat().st_mode) == 0o600
    assert vault.source == "key-file"
    assert open_vault(home, passphrase=None).open(vault.seal(b"x")) == b"x"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_key_file_other_users_can_read_is_refused_with_a_chmod_hint(
    tmp_path: Path, mode: int
) -> None:
    home = make_home(tmp_path)
    create_vault(home, passphrase=None, **FAST)
    os.chmod(home / KEY_FILE, mode)
    with pytest.raises(InsecureKeyFile, match=r"chmod 600 .*master\.key"):
        open_vault(home, passphrase=None)


def test_a_key_file_from_another_home_is_refused(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    create_vault(first, passphrase=None, **FAST)
    create_vault(second, passphrase=None, **FAST)
    (first / KEY_FILE).unlink()
    (first / KEY_FILE).write_bytes((second / KEY_FILE).read_bytes())
    os.chmod(first / KEY_FILE, 0o600)
    with pytest.raises(VaultCorrupt, match="not the master key of this home"):
        open_vault(first, passphrase=None)


def test_a_missing_key_file_is_reported_as_such(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    create_vault(home, passphrase=None, **FAST)
    (home / KEY_FILE).unlink()
    with pytest.raises(VaultCorrupt, match=r"master key file .* is missing"):
        open_vault(home, passphrase=None)


def test_a_home_without_a_vault_asks_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(NotInitialised, match="run 'fleetsync init' first"):
        open_vault(make_home(tmp_path), passphrase="anything")


def test_a_damaged_vault_file_is_reported_not_raised_raw(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    (home / VAULT_FILE).write_text("{not json")
    with pytest.raises(VaultCorrupt, match="damaged"):
        open_vault(home, passphrase="x")


def test_creating_a_vault_never_overwrites_an_existing_one(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    create_vault(home, passphrase="one", **FAST)
    before = (home / VAULT_FILE).read_bytes()
    with pytest.raises(FileExistsError):
        create_vault(home, passphrase="two", **FAST)
    assert (home / VAULT_FILE).read_bytes() == before


@given(st.binary(max_size=2048))
def test_sealing_then_opening_gives_back_the_plaintext(plaintext: bytes) -> None:
    vault = Vault(bytes(32), source="test")
    sealed = vault.seal(plaintext)
    assert isinstance(sealed, str)
    assert vault.open(sealed) == plaintext


def test_sealing_the_same_plaintext_twice_gives_different_ciphertexts() -> None:
    vault = Vault(bytes(32), source="test")
    assert vault.seal(b"same") != vault.seal(b"same")


def test_a_secret_sealed_under_another_master_key_does_not_open() -> None:
    sealed = Vault(bytes(32), source="test").seal(b"secret")
    with pytest.raises(SealedSecretUnreadable):
        Vault(b"\x01" * 32, source="test").open(sealed)


@pytest.mark.parametrize("damage", ["flip", "truncate", "not-base64"])
def test_a_damaged_sealed_secret_does_not_open(damage: str) -> None:
    vault = Vault(bytes(32), source="test")
    sealed = vault.seal(b"secret")
    if damage == "flip":
        raw = bytearray(base64.b64decode(sealed))
        raw[-1] ^= 1
        sealed = base64.b64encode(bytes(raw)).decode()
    elif damage == "truncate":
        sealed = sealed[:8]
    else:
        sealed = "%%%"
    with pytest.raises(SealedSecretUnreadable) as info:
        vault.open(sealed)
    assert "secret" not in str(info.value).replace("sealed secret", "")


def test_the_digest_key_depends_only_on_the_owner_key(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    by_passphrase = create_vault(a, passphrase="pw", **FAST).bound_to(OWNER)
    by_key_file = create_vault(b, passphrase=None, **FAST).bound_to(OWNER)
    assert (
        by_passphrase.digest_key
        == by_key_file.digest_key
        == derive_digest_key(OWNER.secret_bytes())
    )
    assert len(by_passphrase.digest_key) == 32
    other = Vault(bytes(32), source="test").bound_to(SecretKey(bytes(range(2, 34))))
    assert other.digest_key != by_passphrase.digest_key


def test_the_digest_key_is_an_hmac_of_the_owner_key_under_a_fixed_label() -> None:
    expected = hmac.new(
        OWNER.secret_bytes(), b"fleetsync/v1/secrets-digest", hashlib.sha256
    ).digest()
    assert derive_digest_key(OWNER.secret_bytes()) == expected


def test_a_vault_not_yet_bound_to_an_owner_has_no_digest_key() -> None:
    with pytest.raises(VaultError, match="owner key"):
        _ = Vault(bytes(32), source="test").digest_key


def test_a_vault_shows_no_key_material_and_refuses_to_be_pickled() -> None:
    vault = Vault(b"\xab" * 32, source="test").bound_to(OWNER)
    assert "ab" * 4 not in repr(vault)
    assert vault.digest_key.hex() not in repr(vault)
    with pytest.raises(TypeError, match="must not be pickled"):
        pickle.dumps(vault)

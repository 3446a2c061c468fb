"""Reading buzz's app data: the d-tag rule, the default directory per OS, the keyring value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.buzz.appdata import default_app_data_dir
from adapters.buzz.keyring import BuzzKeyringError, parse_secrets
from adapters.nostr.keys import SecretKey
from domain.slugs import buzz_d_tag, is_persona_slug


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        # reference §4.5, buzz's own examples
        ("builtin:fizz", "builtin-fizz"),
        ("Lep", "lep"),
        ("_ops", "a_ops"),
        ("CodeReviewer", "codereviewer"),
        ("Ünï", "a-n-"),
        ("0f8e4b1c-2d3a-4b5c-8d9e-0a1b2c3d4e5f", "0f8e4b1c-2d3a-4b5c-8d9e-0a1b2c3d4e5f"),
        ("x" * 70, "x" * 64),
    ],
)
def test_buzz_d_tags_are_normalised_as_buzz_normalises_them(text: str, slug: str) -> None:
    assert buzz_d_tag(text) == slug


@given(st.text(min_size=1, max_size=80))
def test_a_normalised_d_tag_is_always_a_valid_persona_slug_and_stays_as_it_is(text: str) -> None:
    slug = buzz_d_tag(text)
    assert is_persona_slug(slug)
    assert buzz_d_tag(slug) == slug


def test_the_default_directory_follows_tauri_per_operating_system(tmp_path: Path) -> None:
    home = tmp_path / "user"
    linux = default_app_data_dir({}, "linux", home)
    assert linux == home / ".local/share/xyz.block.buzz.app"
    xdg = default_app_data_dir({"XDG_DATA_HOME": "/data"}, "linux", home)
    assert xdg == Path("/data/xyz.block.buzz.app")
    relative = default_app_data_dir({"XDG_DATA_HOME": "data"}, "linux", home)
    assert relative == linux
    mac = default_app_data_dir({}, "darwin", home)
    assert mac == home / "Library/Application Support/xyz.block.buzz.app"
    win = default_app_data_dir({"APPDATA": "C:/Users/u/AppData/Roaming"}, "win32", home)
    assert win == Path("C:/Users/u/AppData/Roaming/xyz.block.buzz.app")


def test_the_keyring_value_gives_the_identity_and_each_agent_key_by_pubkey() -> None:
    owner, agent = SecretKey.generate(), SecretKey.generate()
    value = json.dumps(
        {"identity": owner.nsec(), f"agent:{agent.public_key.hex}": agent.nsec(), "other": 1}
    )
    secrets = parse_secrets(value, "item")
    assert secrets.identity is not None
    assert secrets.identity.public_key == owner.public_key
    assert list(secrets.agents) == [agent.public_key.hex]
    assert agent.nsec() not in repr(secrets)


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ("not json", "does not hold JSON"),
        ("[]", "JSON object"),
        ('{"identity": 3}', "entry 'identity' is not a string"),
        ('{"identity": "nsec1bad"}', "entry 'identity' is not a valid nsec"),
    ],
)
def test_a_keyring_value_buzz_would_not_write_is_refused_without_showing_it(
    value: str, pattern: str
) -> None:
    with pytest.raises(BuzzKeyringError, match=pattern) as caught:
        parse_secrets(value, "item")
    assert "nsec1bad" not in str(caught.value)


def test_an_agent_entry_holding_another_agents_key_is_refused() -> None:
    agent, other = SecretKey.generate(), SecretKey.generate()
    value = json.dumps({f"agent:{agent.public_key.hex}": other.nsec()})
    with pytest.raises(BuzzKeyringError, match="holds the key of another pubkey"):
        parse_secrets(value, "item")

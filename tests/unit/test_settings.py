"""Settings resolution (flags > environment > defaults) and the eventsourcing environment."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from adapters.bootstrap import eventsourcing_env
from adapters.home import HomeRecord, view_file, write_home_record
from adapters.settings import Settings, SettingsError, parse_store_url
from domain.planner import ForeignHeads


def test_the_home_flag_wins_over_the_environment(tmp_path: Path) -> None:
    env = {"FLEETSYNC_HOME": "/env/home", "XDG_DATA_HOME": "/xdg"}
    assert Settings.load(home=tmp_path, environ=env).home == tmp_path


def test_the_home_comes_from_fleetsync_home_then_xdg_then_the_user_data_dir() -> None:
    assert Settings.load(environ={"FLEETSYNC_HOME": "/env/home"}).home == Path("/env/home")
    assert Settings.load(environ={"XDG_DATA_HOME": "/xdg"}).home == Path("/xdg/fleetsync")
    assert Settings.load(environ={}).home == Path("~/.local/share/fleetsync").expanduser()


def test_the_default_store_is_a_sqlite_file_in_the_home(tmp_path: Path) -> None:
    settings = Settings.load(home=tmp_path, environ={})
    assert settings.store.kind == "sqlite"
    assert settings.store.sqlite_path == tmp_path / "events.sqlite"
    assert view_file(settings) == tmp_path / "view.sqlite"


def test_a_store_url_in_the_environment_is_used_unless_a_flag_overrides_it(
    tmp_path: Path,
) -> None:
    env = {"FLEETSYNC_STORE_URL": "sqlite:///elsewhere/e.sqlite"}
    assert Settings.load(home=tmp_path, environ=env).store.sqlite_path == Path(
        "/elsewhere/e.sqlite"
    )
    flagged = Settings.load(home=tmp_path, store_url="memory:", environ=env)
    assert flagged.store.kind == "memory"


def test_a_relative_sqlite_path_hangs_off_the_home(tmp_path: Path) -> None:
    assert parse_store_url("sqlite:other.sqlite", tmp_path).sqlite_path == tmp_path / (
        "other.sqlite"
    )


def test_a_postgresql_url_maps_to_eventsourcing_postgres_settings(tmp_path: Path) -> None:
    settings = Settings.load(
        home=tmp_path,
        store_url="postgresql://fleet:s%40cret@db.example:6543/fleetdb?schema=fs",
        environ={},
    )
    env = eventsourcing_env(settings)
    assert env["FLEETSYNC_PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert env["FLEETSYNC_POSTGRES_HOST"] == "db.example"
    assert env["FLEETSYNC_POSTGRES_PORT"] == "6543"
    assert env["FLEETSYNC_POSTGRES_USER"] == "fleet"
    assert env["FLEETSYNC_POSTGRES_PASSWORD"] == "s@cret"
    assert env["FLEETSYNC_POSTGRES_DBNAME"] == "fleetdb"
    assert env["FLEETSYNC_POSTGRES_SCHEMA"] == "fs"
    # The password is a secret: never in a repr or a description.
    assert "s@cret" not in repr(settings)
    assert "s@cret" not in settings.store.describe()
    assert view_file(settings).name.startswith("view-")


def test_the_eventsourcing_environment_pins_what_a_user_export_could_change(
    tmp_path: Path,
) -> None:
    env = eventsourcing_env(Settings.load(home=tmp_path, environ={}))
    assert env["FLEETSYNC_TRANSCODER_TOPIC"] == "adapters.store.transcoder:OrjsonTranscoder"
    assert env["FLEETSYNC_CIPHER_KEY"] == ""
    assert env["FLEETSYNC_SQLITE_DBNAME"] == str(tmp_path / "events.sqlite")


@pytest.mark.parametrize(
    "url",
    ["mysql://x/y", "postgresql:///nodb", "postgresql://h/db?sslmode=x", "sqlite:", "sqlite:///"],
)
def test_an_unusable_store_url_is_refused_with_a_clear_message(url: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        parse_store_url(url, tmp_path)


def test_an_unsupported_url_is_not_echoed_because_it_may_hold_a_password(
    tmp_path: Path,
) -> None:
    with pytest.raises(SettingsError) as info:
        parse_store_url("mysql://user:hunter2@host/db", tmp_path)
    assert "hunter2" not in str(info.value)


def test_the_passphrase_is_read_from_the_environment_and_never_shown(tmp_path: Path) -> None:
    settings = Settings.load(home=tmp_path, environ={"FLEETSYNC_PASSPHRASE": "hunter2"})
    assert settings.passphrase == "hunter2"
    assert "hunter2" not in repr(settings)


def test_argon2_limits_can_be_lowered_but_not_below_libsodiums_minimum(tmp_path: Path) -> None:
    env = {"FLEETSYNC_ARGON2_OPSLIMIT": "1", "FLEETSYNC_ARGON2_MEMLIMIT": "8192"}
    settings = Settings.load(home=tmp_path, environ=env)
    assert (settings.argon2_opslimit, settings.argon2_memlimit) == (1, 8192)
    with pytest.raises(SettingsError, match="at least 8192"):
        Settings.load(home=tmp_path, environ={"FLEETSYNC_ARGON2_MEMLIMIT": "1024"})
    with pytest.raises(SettingsError, match="must be an integer"):
        Settings.load(home=tmp_path, environ={"FLEETSYNC_ARGON2_OPSLIMIT": "lots"})


def test_the_actor_comes_from_fleetsync_actor(tmp_path: Path) -> None:
    assert Settings.load(home=tmp_path, environ={"FLEETSYNC_ACTOR": "ci"}).actor == "ci"


def test_foreign_heads_are_conflicts_unless_fleetsync_foreign_heads_says_self_heal(
    tmp_path: Path,
) -> None:
    home = {"FLEETSYNC_HOME": str(tmp_path)}
    assert Settings.load(environ=home).foreign_heads is ForeignHeads.CONFLICT
    healing = Settings.load(environ={**home, "FLEETSYNC_FOREIGN_HEADS": "self-heal"})
    assert healing.foreign_heads is ForeignHeads.SELF_HEAL
    with pytest.raises(SettingsError, match="must be conflict or self-heal, not 'yes'"):
        Settings.load(environ={**home, "FLEETSYNC_FOREIGN_HEADS": "yes"})


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////srv/fleet/events.sqlite",
        "sqlite:///srv/fleet/events.sqlite",
        "sqlite:////srv//fleet/events.sqlite",
    ],
)
def test_absolute_sqlite_urls_in_the_usual_forms_name_one_plain_path(url: str) -> None:
    path = parse_store_url(url, Path("/home")).sqlite_path
    assert path is not None
    assert str(path).startswith("/srv/")
    assert not str(path).startswith("//")
    assert path.as_uri().startswith("file:///srv/")


@pytest.mark.parametrize(
    "url", ["sqlite://host/e.sqlite", "sqlite:///e.sqlite?mode=ro", "sqlite:////", "sqlite:///x/.."]
)
def test_sqlite_urls_with_a_host_parameters_or_no_file_are_refused(url: str) -> None:
    with pytest.raises(SettingsError, match="store URL"):
        parse_store_url(url, Path("/home"))


@pytest.mark.parametrize(
    "scheme", ["postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"]
)
def test_sqlalchemy_postgresql_schemes_are_accepted(scheme: str) -> None:
    store = parse_store_url(f"{scheme}://u:pw@db:5433/fleet", Path("/home"))
    assert (store.kind, store.postgres_host, store.postgres_port) == ("postgres", "db", "5433")


def test_the_recorded_store_url_has_no_password_and_parses_back_to_the_same_store(
    tmp_path: Path,
) -> None:
    store = parse_store_url("postgresql://fleet:s%40cret@db:6543/fleet%20db?schema=fs", tmp_path)
    recorded = store.recorded_url(tmp_path)
    assert "s@cret" not in recorded
    assert "cret" not in recorded
    assert parse_store_url(recorded, tmp_path) == replace(store, postgres_password="")
    inside = parse_store_url(f"sqlite://{tmp_path}/a b.sqlite", tmp_path)
    assert inside.recorded_url(tmp_path) == "sqlite:a%20b.sqlite"
    assert parse_store_url(inside.recorded_url(tmp_path), tmp_path) == inside
    outside = parse_store_url("sqlite:////srv/e.sqlite", tmp_path)
    assert parse_store_url(outside.recorded_url(tmp_path), tmp_path) == outside


def test_later_commands_use_the_store_url_the_home_recorded(tmp_path: Path) -> None:
    write_home_record(tmp_path, HomeRecord(home_id="a" * 32, store="sqlite:///srv/e.sqlite"))
    settings = Settings.load(home=tmp_path, environ={})
    assert settings.store.sqlite_path == Path("/srv/e.sqlite")
    assert settings.store_source == "the home's record"
    flagged = Settings.load(home=tmp_path, environ={"FLEETSYNC_STORE_URL": "memory:"})
    assert flagged.store.kind == "memory"


def test_a_recorded_postgresql_url_takes_its_password_from_pgpassword(tmp_path: Path) -> None:
    write_home_record(tmp_path, HomeRecord(home_id="a" * 32, store="postgresql://u@db:5432/f"))
    settings = Settings.load(home=tmp_path, environ={"PGPASSWORD": "pw"})
    assert settings.store.postgres_password == "pw"


def test_the_connect_timeout_is_a_setting_of_a_few_seconds_by_default(tmp_path: Path) -> None:
    assert Settings.load(home=tmp_path, environ={}).connect_timeout == 5
    env = {"FLEETSYNC_CONNECT_TIMEOUT": "2"}
    settings = Settings.load(home=tmp_path, store_url="postgresql://u@h/d", environ=env)
    assert eventsourcing_env(settings)["FLEETSYNC_POSTGRES_CONNECT_TIMEOUT"] == "2"
    with pytest.raises(SettingsError, match="at least 1"):
        Settings.load(home=tmp_path, environ={"FLEETSYNC_CONNECT_TIMEOUT": "0"})


def test_a_recorded_url_of_an_ipv6_server_parses_back(tmp_path: Path) -> None:
    store = parse_store_url("postgresql://u:pw@[::1]:5432/fleet", tmp_path)
    assert store.postgres_host == "::1"
    assert parse_store_url(store.recorded_url(tmp_path), tmp_path).postgres_host == "::1"


@pytest.mark.parametrize(
    ("actor", "why"),
    [
        ("ops\x1b[2J", r"\(\\x1b\) at character 4"),
        ("ali\u202ece", r"bidi control \(\\u202e\)"),
        ("line\nbreak", r"\(\\x0a\)"),
        ("   ", "must not be empty"),
        ("a" * 129, "at most 128"),
    ],
)
def test_an_actor_with_unsafe_characters_is_refused(tmp_path: Path, actor: str, why: str) -> None:
    with pytest.raises(SettingsError, match=rf"FLEETSYNC_ACTOR .*{why}"):
        Settings.load(home=tmp_path, environ={"FLEETSYNC_ACTOR": actor})


def test_an_actor_that_obeys_the_name_rule_is_recorded_as_given(tmp_path: Path) -> None:
    actor = "Zoë \U0001f680 (ops)"
    assert Settings.load(home=tmp_path, environ={"FLEETSYNC_ACTOR": actor}).actor == actor

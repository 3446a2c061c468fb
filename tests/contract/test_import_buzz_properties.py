"""Properties of ``import buzz`` over generated buzz homes of both eras, on a real home
(SQLite event store, sealed key store): a second import records nothing, agents
keep their keys, and a bad record anywhere leaves the store as it was."""

from __future__ import annotations

import json
import sqlite3
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.bootstrap import Fleet, bootstrap, init
from adapters.buzz.appdata import BuzzDataError, read_app_data
from adapters.buzz.keyring import BuzzKeyringError, BuzzSecrets
from adapters.nostr.keys import SecretKey
from adapters.settings import Settings
from adapters.usecases.import_buzz import import_buzz
from domain.slugs import buzz_d_tag
from tests.support.buzz_appdata import (
    BuzzAgentSpec,
    BuzzPersonaSpec,
    write_seed_tree,
    write_unified_tree,
)
from tests.support.examples import examples

NAMES = st.sampled_from(["Ann", "Bob", "Cy", "Dee", "Eve", "Fay"])
WORDS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30)


def _no_keyring() -> BuzzSecrets:
    raise BuzzKeyringError("no keyring in these tests: every key is in the file")


@st.composite
def persona_specs(draw: st.DrawFn) -> BuzzPersonaSpec:
    kind = draw(st.sampled_from(["uuid", "builtin", "team"]))
    ident = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))
    team_slug = None
    if kind == "builtin":
        ident = "builtin:" + draw(st.sampled_from(["fizz", "honey", "bumble"]))
    elif kind == "team":
        team_slug = draw(st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,10}", fullmatch=True))
    return BuzzPersonaSpec(
        id=ident,
        display_name=draw(WORDS.filter(str.strip)),
        system_prompt=draw(WORDS),
        model=draw(st.none() | st.sampled_from(["gpt-5", "claude-opus-4"])),
        name_pool=draw(st.lists(NAMES, unique=True, max_size=3)),
        is_builtin=kind == "builtin",
        source_team="team" if team_slug else None,
        source_team_persona_slug=team_slug,
        env_vars=draw(st.dictionaries(st.sampled_from(["TOKEN", "API_KEY"]), st.just("s3cret-v"))),
    )


@st.composite
def buzz_homes(draw: st.DrawFn) -> tuple[str, list[BuzzPersonaSpec], list[BuzzAgentSpec]]:
    personas = draw(
        st.lists(
            persona_specs(),
            min_size=1,
            max_size=4,
            unique_by=lambda p: buzz_d_tag(p.source_team_persona_slug or p.id),
        )
    )
    links = [p.id for p in personas] + ["gone-persona"]
    agents = [
        BuzzAgentSpec(SecretKey.generate(), draw(NAMES), draw(st.sampled_from(links)))
        for _ in range(draw(st.integers(0, 5)))
    ]
    return draw(st.sampled_from(["seed", "unified"])), personas, agents


def _agent_record(name: str) -> dict[str, Any]:
    key = SecretKey.generate()
    return {
        "pubkey": key.public_key.hex,
        "name": name,
        "persona_id": None,
        "private_key_nsec": key.nsec(),
    }


def _write(root: Path, era: str, personas: Any, agents: Any) -> Path:
    writer = write_seed_tree if era == "seed" else write_unified_tree
    return writer(root, personas, agents)


def _rows(home: Path) -> tuple[list[Any], list[Any]]:
    with (
        sqlite3.connect(home / "events.sqlite") as events,
        sqlite3.connect(home / "keys.sqlite") as keys,
    ):
        return (
            events.execute("SELECT rowid, * FROM stored_events").fetchall(),
            keys.execute("SELECT * FROM keys").fetchall(),
        )


def _fleet(home: Path) -> Fleet:
    return bootstrap(Settings.load(home=home, environ={"FLEETSYNC_ACTOR": "test"}))


def _new_home(tmp: Path) -> Path:
    home = tmp / "home"
    init(Settings.load(home=home, environ={"FLEETSYNC_ACTOR": "test"}))
    return home


PROPERTY = settings(
    max_examples=examples(15), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY
@given(buzz_homes())
def test_a_second_import_of_any_buzz_home_records_nothing_and_every_agent_keeps_its_key(
    home_spec: tuple[str, list[BuzzPersonaSpec], list[BuzzAgentSpec]],
) -> None:
    era, personas, agents = home_spec
    with tempfile.TemporaryDirectory() as tmp:
        home = _new_home(Path(tmp))
        data = read_app_data(_write(Path(tmp) / "buzz", era, personas, agents))
        with _fleet(home) as fleet:
            first = import_buzz(fleet, data, _no_keyring, dry_run=False)
            assert first.changes
            for agent in agents:
                assert fleet.keystore.get(agent.pubkey).public_key == agent.key.public_key
        before = _rows(home)
        with _fleet(home) as fleet:
            second = import_buzz(fleet, data, _no_keyring, dry_run=False)
        assert not second.changes
        assert {s.action for s in second.personas} == {"unchanged"}
        assert {s.action for s in second.agents} <= {"unchanged"}
        assert _rows(home) == before


@PROPERTY
@given(buzz_homes(), st.data())
def test_a_bad_record_anywhere_stops_the_import_with_the_store_as_it_was(
    home_spec: tuple[str, list[BuzzPersonaSpec], list[BuzzAgentSpec]], data: st.DataObject
) -> None:
    era, personas, agents = home_spec
    with tempfile.TemporaryDirectory() as tmp:
        home = _new_home(Path(tmp))
        root = _write(Path(tmp) / "buzz", era, personas, agents)
        path = root / "agents" / "managed-agents.json"
        records = json.loads(path.read_text(encoding="utf-8"))
        bad = data.draw(
            st.sampled_from(
                [
                    {"pubkey": "not hex", "name": "X"},
                    {"pubkey": "", "name": "Def"},  # a definition without a slug
                    {"pubkey": SecretKey.generate().public_key.hex, "name": 7},
                    # these pass the reading, and are refused by the rules of the import
                    _agent_record("Bad\x07name"),
                    {
                        "pubkey": "",
                        "name": "Leaky",
                        "slug": "leaky",
                        "system_prompt": "say s3cret-value-here",
                        "env_vars": {"TOKEN": "s3cret-value-here"},
                    },
                ]
            )
        )
        records.insert(data.draw(st.integers(0, len(records))), bad)
        path.write_text(json.dumps(records), encoding="utf-8")
        before = _rows(home)
        with (
            pytest.raises(BuzzDataError, match=r"managed-agents\.json: record \d+"),
            _fleet(home) as fleet,
        ):
            import_buzz(fleet, read_app_data(root), _no_keyring, dry_run=False)
        assert _rows(home) == before

"""A persona's content round-trips losslessly, as a property over every member buzz
knows: file -> ``persona save`` -> ``persona show`` -> the engram an agent is sealed
(and the owner opens) -> ``import buzz`` of a buzz home holding what the engram
carries, on real homes (SQLite event store, sealed key store).

Each step is the production path its command takes: the definition file is
parsed as ``persona save`` parses it, the engram body is built as the sealer
builds it, and the buzz home is read as ``import buzz`` reads it.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.bootstrap import Fleet, bootstrap, init
from adapters.buzz.appdata import read_app_data
from adapters.buzz.keyring import BuzzKeyringError, BuzzSecrets
from adapters.nostr.engram import Conversation, select_head
from adapters.nostr.keys import SecretKey
from adapters.nostr.persona_engram import (
    open_persona_head,
    prepare_persona_body,
    seal_persona_engram,
)
from adapters.nostr.signer import KeySigner
from adapters.settings import Settings
from adapters.usecases.import_buzz import import_buzz
from adapters.usecases.personas import save_persona, show_persona
from domain.engram_body import PersonaEngram, Provenance
from domain.persona import PersonaContent, parse_definition
from domain.slugs import PERSONA_ENGRAM_SLUG
from tests.support.examples import examples

SLUG = "reviewer"
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=16)
HEX64 = st.text("0123456789abcdefABCDEF", min_size=64, max_size=64)
NAMES = st.lists(st.sampled_from(["Ann", "Bob", "Cy", "Dee"]), unique=True, max_size=3)
# Longer than any public text drawn, so a secret never shows up in a public member.
SECRETS = st.dictionaries(
    st.sampled_from(["TOKEN", "API_KEY", "OPENAI_API_KEY"]),
    st.integers(10**19, 10**20).map(lambda n: f"zq-secret-{n}"),
    max_size=2,
)


@st.composite
def contents(draw: st.DrawFn) -> PersonaContent:
    allowlist = tuple(draw(st.lists(HEX64, max_size=2)))
    modes = ["owner-only", "anyone", *(["allowlist"] if allowlist else [])]
    return PersonaContent(
        display_name=draw(TEXT.filter(str.strip)),
        system_prompt=draw(TEXT),
        avatar_url=draw(st.none() | TEXT),
        runtime=draw(st.none() | TEXT),
        model=draw(st.none() | TEXT),
        provider=draw(st.none() | TEXT),
        name_pool=tuple(draw(NAMES)),
        acp_command=draw(st.none() | TEXT),
        respond_to=draw(st.none() | st.sampled_from(modes)),
        respond_to_allowlist=allowlist,
        parallelism=draw(st.none() | st.integers(1, 32)),
        description=draw(st.none() | TEXT),
        session_policy=draw(st.sampled_from(["channel", "thread"])),
    )


def _no_keyring() -> BuzzSecrets:
    raise BuzzKeyringError("no keyring in these tests: the buzz home has no agents")


def _fleet(home: Path) -> Fleet:
    return bootstrap(Settings.load(home=home, environ={"FLEETSYNC_ACTOR": "test"}))


def _new_home(path: Path) -> Path:
    init(Settings.load(home=path, environ={"FLEETSYNC_ACTOR": "test"}))
    return path


def _events(home: Path) -> list[Any]:
    with sqlite3.connect(home / "events.sqlite") as conn:
        return conn.execute("SELECT rowid, * FROM stored_events").fetchall()


def _buzz_home(root: Path, engram: PersonaEngram) -> Path:
    """A seed-era buzz home whose one persona record holds what ``engram`` carries,
    under buzz's keys (personas.json, reference §4.2, members by name)."""
    record: dict[str, Any] = {"id": SLUG, **engram.content.public_members()}
    record.update(is_builtin=False, is_active=True, env_vars=dict(sorted(engram.env_vars.items())))
    agents = root / "agents"
    agents.mkdir(parents=True)
    (agents / "personas.json").write_text(json.dumps([record], indent=2), encoding="utf-8")
    (agents / "managed-agents.json").write_text("[]", encoding="utf-8")
    return root


@settings(max_examples=examples(10), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contents(), SECRETS)
def test_every_member_survives_file_save_show_engram_and_import(
    content: PersonaContent, env: dict[str, str]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = _new_home(Path(tmp) / "home")
        file_text = json.dumps({**content.public_members(), "env_vars": env}, ensure_ascii=False)
        with _fleet(home) as fleet:
            saved = save_persona(fleet, SLUG, parse_definition(file_text), publish_now=False)
            shown = show_persona(fleet, SLUG)
            owner = fleet.owner
        assert shown.members == content.public_members()
        assert PersonaContent.from_members(shown.members, strict=True) == content
        assert shown.digest == saved.saved.digest == content.digest()
        assert shown.env_names == tuple(sorted(env))

        # The engram an agent of it is sealed, as the sealer builds it, opened by the owner.
        agent = SecretKey.generate()
        provenance = Provenance(owner.public_key.hex, SLUG, shown.digest, shown.secrets_digest)
        sent = PersonaEngram(PersonaContent.from_members(shown.members), provenance, env)
        event = seal_persona_engram(
            KeySigner(agent),
            Conversation.for_agent(agent, owner.public_key),
            prepare_persona_body(sent),
            1_700_000_000,
        )
        conv = Conversation.for_owner(owner, agent.public_key)
        carried = open_persona_head(select_head(conv, PERSONA_ENGRAM_SLUG, [event]))
        assert carried is not None
        assert carried.content == content
        assert dict(carried.env_vars) == env
        assert carried.content_matches_provenance

        # buzz holding what the engram carries: importing it here changes nothing,
        # and into a new home gives the same persona.
        data = read_app_data(_buzz_home(Path(tmp) / "buzz", carried))
        before = _events(home)
        with _fleet(home) as fleet:
            again = import_buzz(fleet, data, _no_keyring, dry_run=False)
        assert [step.action for step in again.personas] == ["unchanged"]
        assert _events(home) == before
        other = _new_home(Path(tmp) / "other")
        with _fleet(other) as fleet:
            import_buzz(fleet, data, _no_keyring, dry_run=False)
            imported = show_persona(fleet, SLUG)
        assert imported.members == content.public_members()
        assert imported.digest == content.digest()
        assert imported.env_names == tuple(sorted(env))

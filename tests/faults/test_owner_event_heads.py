"""The head an owner event must outrank is a valid event: a relay serving a forgery in
the owner's name, dated far ahead, cannot turn a persona save into a conflict."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from adapters.nostr.keys import SecretKey
from adapters.nostr.persona_event import build_persona_event
from adapters.nostr.signer import KeySigner
from adapters.owner_events import OwnerEventResult, publish_persona
from adapters.relay import RelayPool
from domain.clock import MAX_AHEAD
from domain.persona import PersonaContent
from tests.faults.fake_relay import Behaviour, FakeConnection, FakeRelay

OWNER = KeySigner(SecretKey.generate())
CONTENT = PersonaContent(display_name="Writer", system_prompt="Write.")
# What the relay's head says: another revision, so the save has something to write.
THEIRS = PersonaContent(display_name="Writer", system_prompt="Write, from the future.")


class ServesAForgery(Behaviour):
    """Serves, before what it stored, an event in the owner's name that does not verify."""

    def __init__(self, forged: dict[str, Any]) -> None:
        self.forged = forged

    async def on_req(
        self, conn: FakeConnection, sub_id: str, filters: list[dict[str, Any]]
    ) -> None:
        await conn.send(["EVENT", sub_id, self.forged])
        await conn.serve_stored(sub_id, filters)


def _save_beside(forged: dict[str, Any]) -> OwnerEventResult:
    async def scenario() -> OwnerEventResult:
        async with FakeRelay(ServesAForgery(forged)) as relay, RelayPool([relay.url]) as pool:
            return await publish_persona(pool, OWNER, "writer", CONTENT, timeout=5)

    async def bounded() -> OwnerEventResult:
        async with asyncio.timeout(30):
            return await scenario()

    return asyncio.run(bounded())


def _far_ahead() -> dict[str, Any]:
    at = int(time.time()) + 10 * MAX_AHEAD
    return build_persona_event(OWNER, "writer", THEIRS, at).to_dict()


def test_a_forged_head_far_ahead_is_no_head_and_the_save_is_published() -> None:
    genuine = _far_ahead()
    forged = dict(genuine, sig="00" * 64)
    result = _save_beside(forged)
    assert result.conflict is None
    assert result.published
    assert result.created_at is not None
    assert result.created_at <= int(time.time()) + 1 < genuine["created_at"]


def test_a_genuine_head_far_ahead_is_still_a_conflict() -> None:
    # The control: the same event, signed, is a head the save cannot outrank in time.
    result = _save_beside(_far_ahead())
    assert result.conflict is not None
    assert not result.published


def test_a_head_whose_id_does_not_match_its_content_is_no_head() -> None:
    genuine = _far_ahead()
    tampered = replace(build_persona_event(OWNER, "writer", THEIRS, 0), id="ab" * 32).to_dict()
    tampered["created_at"] = genuine["created_at"]
    result = _save_beside(tampered)
    assert result.conflict is None
    assert result.published

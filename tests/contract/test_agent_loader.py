"""The bulk agent loader rebuilds exactly what the repository rebuilds."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.store.loader import AgentLoader
from domain.application import NewAgent, UnknownAgent
from tests.fleet_support import definition, make_fleet, pubkey


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_agents_loaded_in_bulk_equal_agents_from_the_repository(kind: str, tmp_path: Path) -> None:
    app, _ = make_fleet(kind, tmp_path)
    app.save_persona("writer", definition("v1"), "t")
    app.save_persona("critic", definition("c"), "t")
    keys = [pubkey(i) for i in range(1, 8)]
    app.create_agents([NewAgent(k, "writer", k[-2:]) for k in keys], "t")
    app.move_agent(keys[0], "critic", "t")
    sealed = app.get_agent(keys[1])
    sealed.record_sealed({"id": "e" * 64, "pubkey": keys[1]}, "writer", "1" * 64, "2" * 64, [], [])
    app.save(sealed)
    app.retire_agent(keys[2], "t")

    loader = AgentLoader(app, tmp_path / "events.sqlite" if kind == "sqlite" else None)
    try:
        loaded = loader.load(keys)
        for key in keys:
            expected = app.get_agent(key)
            got = loaded[key]
            assert (got.id, got.version, got.persona_slug, got.retired, got.unsettled) == (
                expected.id,
                expected.version,
                expected.persona_slug,
                expected.retired,
                expected.unsettled,
            )
        with pytest.raises(UnknownAgent):
            loader.load([pubkey(99)])
    finally:
        loader.close()

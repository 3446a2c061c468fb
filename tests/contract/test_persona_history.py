"""A persona's version history is one projection of its stream, whoever asks for it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.application import UnknownPersona
from projections.audit import audit_persona, persona_history
from tests.fleet_support import definition, make_fleet
from tests.support.examples import examples

# A step: save (prompt, secret) or delete.
Step = tuple[str, str | None] | None
steps = st.lists(
    st.one_of(
        st.none(),
        st.tuples(st.sampled_from(["v1", "v2"]), st.sampled_from([None, "s1", "s2"])),
    ),
    min_size=1,
    max_size=8,
)


def test_the_history_names_what_each_save_changed() -> None:
    app, view = make_fleet("memory")
    app.save_persona("writer", definition("v1"), "alice")
    app.save_persona("writer", definition("v2"), "bob")
    app.save_persona("writer", definition("v2", "secret"), "carol")
    app.save_persona("writer", definition("v1", "other"), "dave")
    app.delete_persona("writer", "erin")
    app.save_persona("writer", definition("v1", "other"), "frank")
    history = persona_history(view.log, "writer")
    assert [(v.revision, v.actor, v.change, v.deleted) for v in history] == [
        (1, "alice", "created", False),
        (2, "bob", "content", False),
        (3, "carol", "secrets", False),
        (4, "dave", "content+secrets", False),
        (4, "erin", "deleted", True),
        (5, "frank", "restored", False),
    ]
    # A deletion keeps the digests of the version it ended.
    assert history[4].digest == history[3].digest
    assert history[4].secrets_digest == history[3].secrets_digest


def test_a_history_as_of_a_position_is_the_history_cut_there() -> None:
    app, view = make_fleet("memory")
    app.save_persona("writer", definition("v1"), "alice")
    cut = view.log.max_position()
    app.save_persona("writer", definition("v2"), "bob")
    assert persona_history(view.log, "writer", as_of=cut) == persona_history(view.log, "writer")[:1]


@settings(max_examples=examples(40), deadline=None)
@given(steps=steps)
def test_show_history_and_the_persona_audit_list_the_same_versions_the_persona_went_through(
    steps: list[Step],
) -> None:
    app, view = make_fleet("memory")
    saves = 0
    for step in steps:
        if step is None:
            try:
                app.delete_persona("writer", "tester")
            except UnknownPersona:
                continue
        else:
            prompt, secret = step
            if app.save_persona("writer", definition(prompt, secret), "tester").changed:
                saves += 1
    history = persona_history(view.log, "writer")
    assert history == audit_persona(view.log, "writer", []).versions
    assert [v.position for v in history] == sorted(v.position for v in history)
    if not history:
        return
    assert history[-1].revision == saves
    persona = app.get_persona("writer", include_deleted=True)
    assert (history[-1].revision, history[-1].deleted) == (persona.revision, persona.deleted)
    assert (history[-1].digest, history[-1].secrets_digest) == (
        persona.digest,
        persona.secrets_digest,
    )

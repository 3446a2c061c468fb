"""NIP-AE engrams: addressing, sealing, validity rules 1-5, head selection, timestamps."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Sequence

import pytest

from adapters.nostr import nip44
from adapters.nostr.engram import (
    ALT_TEXT,
    ENGRAM_KIND,
    Conversation,
    InvalidEngram,
    derive_d_tag,
    prepare_body,
    seal,
    select_head,
    validate,
)
from adapters.nostr.errors import NostrError
from adapters.nostr.event import Event, compute_id, sign_event, why_invalid
from adapters.nostr.keys import SecretKey
from adapters.nostr.signer import KeySigner
from domain.engram_body import CoreBody, MemoryBody, encode_memory_body
from domain.engram_size import MAX_PLAINTEXT_BYTES
from domain.errors import InvalidEngramBody, InvalidSlug, TooLarge

AGENT = SecretKey.from_hex("11" * 32)
OWNER = SecretKey.from_hex("22" * 32)
STRANGER = SecretKey.from_hex("33" * 32)
AS_AGENT = Conversation.for_agent(AGENT, OWNER.public_key)
AS_OWNER = Conversation.for_owner(OWNER, AGENT.public_key)
T0 = 1_700_000_000
NOTES = "mem/notes"


def _d(slug: str) -> str:
    return AS_AGENT.d_tag(slug)


def _forge(
    body: str,
    *,
    tags: Sequence[Sequence[str]] | None = None,
    kind: int = ENGRAM_KIND,
    signer: SecretKey = AGENT,
    created_at: int = T0,
    conv_key: bytes | None = None,
    content: str | None = None,
) -> Event:
    """An event built by hand, validly signed by ``signer``, breaking one rule at a time."""
    key = AS_AGENT.key.secret_bytes() if conv_key is None else conv_key
    return sign_event(
        signer,
        created_at=created_at,
        kind=kind,
        tags=[["d", _d(NOTES)], ["p", OWNER.public_key.hex]] if tags is None else tags,
        content=nip44.encrypt(body, key) if content is None else content,
    )


def _note(value: str | None = "remember", created_at: int = T0) -> Event:
    return seal(KeySigner(AGENT), AS_AGENT, encode_memory_body(NOTES, value), created_at)


# Addressing


def test_the_d_tag_is_the_hmac_of_the_domain_prefix_a_nul_and_the_slug() -> None:
    key = AS_AGENT.key.secret_bytes()
    expected = hmac.new(key, b"agent-memory/v1/d-tag\x00mem/persona", hashlib.sha256).hexdigest()
    assert derive_d_tag(key, "mem/persona") == expected
    assert derive_d_tag(AS_AGENT.key, "mem/persona") == expected
    assert AS_AGENT.d_tag("mem/persona") == expected
    assert len(expected) == 64
    assert expected == expected.lower()


def test_owner_and_agent_derive_the_same_key_and_d_tags() -> None:
    assert AS_OWNER.key == AS_AGENT.key
    assert AS_OWNER == AS_AGENT
    assert AS_OWNER.d_tag("core") == AS_AGENT.d_tag("core")


def test_another_pair_gets_other_d_tags_for_the_same_slug() -> None:
    other = Conversation.for_agent(STRANGER, OWNER.public_key)
    assert other.d_tag("mem/persona") != AS_AGENT.d_tag("mem/persona")


@pytest.mark.parametrize(
    "slug", ["", "mem", "mem/", "mem/Upper", "mem/a//b", "notes", "mem/-a", "core/x", "mem/a\n"]
)
def test_a_slug_outside_the_grammar_has_no_d_tag(slug: str) -> None:
    with pytest.raises(InvalidSlug):
        derive_d_tag(AS_AGENT.key, slug)


def test_slugs_at_the_grammar_limits_have_d_tags() -> None:
    segment = "a" * 64
    longest = "mem/" + "/".join([segment] * 3) + "/" + "b" * 56
    assert len(longest) == 255
    assert derive_d_tag(AS_AGENT.key, longest)
    with pytest.raises(InvalidSlug):
        derive_d_tag(AS_AGENT.key, longest + "c")
    with pytest.raises(InvalidSlug):
        derive_d_tag(AS_AGENT.key, "mem/" + "a" * 65)


def test_the_conversation_key_never_shows_in_repr() -> None:
    secret = AS_AGENT.key.secret_bytes().hex()
    assert secret not in repr(AS_AGENT)
    assert secret not in repr(AS_AGENT.key)


# Sealing


def test_a_sealed_engram_has_exactly_the_d_and_p_tags_and_is_signed_by_the_agent() -> None:
    event = _note()
    assert event.kind == ENGRAM_KIND
    assert event.pubkey == AGENT.public_key.hex
    assert event.tags == (("d", _d(NOTES)), ("p", OWNER.public_key.hex))
    assert event.created_at == T0
    assert why_invalid(event) is None
    assert "remember" not in event.content


def test_the_alt_tag_is_added_only_when_asked() -> None:
    event = seal(KeySigner(AGENT), AS_AGENT, encode_memory_body(NOTES, "x"), T0, alt=True)
    assert event.tags[2] == ("alt", ALT_TEXT)
    assert len(event.tags) == 3
    assert validate(AS_OWNER, event).body == MemoryBody(NOTES, "x")


def test_both_the_owner_and_the_agent_can_open_an_engram() -> None:
    event = _note("secret plan ✓\x00")
    for side in (AS_OWNER, AS_AGENT):
        opened = validate(side, event, NOTES)
        assert opened.body == MemoryBody(NOTES, "secret plan ✓\x00")
        assert opened.slug == NOTES
        assert opened.event is event


def test_sealing_is_reproducible_with_a_pinned_nonce_and_aux() -> None:
    body = encode_memory_body(NOTES, "x")
    first = seal(KeySigner(AGENT), AS_AGENT, body, T0, nonce=b"\x01" * 32, aux=bytes(32))
    second = seal(
        KeySigner(AGENT), AS_AGENT, prepare_body(body), T0, nonce=b"\x01" * 32, aux=bytes(32)
    )
    assert first == second
    assert first.content == nip44.encrypt(body, AS_AGENT.key.secret_bytes(), b"\x01" * 32)


def test_two_seals_of_one_body_differ_in_nonce_and_id() -> None:
    body = prepare_body(encode_memory_body(NOTES, "x"))
    assert (
        seal(KeySigner(AGENT), AS_AGENT, body, T0).id
        != seal(KeySigner(AGENT), AS_AGENT, body, T0).id
    )


def test_a_core_body_is_sealed_at_the_core_address() -> None:
    event = seal(KeySigner(AGENT), AS_AGENT, '{"slug":"core","profile":"I help."}', T0)
    assert event.tags[0] == ("d", _d("core"))
    assert validate(AS_OWNER, event, "core").body == CoreBody("I help.")


def test_sealing_with_a_key_that_is_not_the_agents_is_refused() -> None:
    with pytest.raises(ValueError, match="not the conversation's agent key"):
        seal(KeySigner(OWNER), AS_OWNER, encode_memory_body(NOTES, "x"), T0)


def test_an_invalid_body_is_refused_before_sealing() -> None:
    with pytest.raises(InvalidEngramBody, match="refusing to seal"):
        seal(KeySigner(AGENT), AS_AGENT, '{"slug":"mem/a","value":1}', T0)
    with pytest.raises(InvalidEngramBody, match="duplicate"):
        seal(KeySigner(AGENT), AS_AGENT, '{"slug":"mem/a","value":"x","value":"y"}', T0)
    with pytest.raises(InvalidEngramBody, match="grammar"):
        seal(KeySigner(AGENT), AS_AGENT, '{"slug":"Mem/a","value":"x"}', T0)
    with pytest.raises(InvalidEngramBody, match="lone surrogate"):
        seal(KeySigner(AGENT), AS_AGENT, '{"slug":"mem/a","value":"\ud800"}', T0)


def test_a_prepared_body_never_shows_its_text_in_repr() -> None:
    prepared = prepare_body(encode_memory_body(NOTES, "hunter2"))
    assert "hunter2" not in repr(prepared)
    assert prepared.slug == NOTES


_BIG_HEAD, _BIG_TAIL = '{"slug":"mem/big","value":"', '"}'


def _body_of_size(size: int, filler: str = "a") -> str:
    head, tail = _BIG_HEAD, _BIG_TAIL
    room = size - len(head) - len(tail)
    unit = len(filler.encode())
    text = head + filler * (room // unit) + "b" * (room % unit) + tail
    assert len(text.encode()) == size
    return text


@pytest.mark.parametrize("filler", ["a", "€", "\U0001f680"])
def test_a_body_of_exactly_65535_bytes_is_sealed_and_opened(filler: str) -> None:
    body = _body_of_size(MAX_PLAINTEXT_BYTES, filler)
    event = seal(KeySigner(AGENT), AS_AGENT, body, T0)
    opened = validate(AS_OWNER, event, "mem/big")
    assert isinstance(opened.body, MemoryBody)
    assert opened.body.value is not None
    assert len(opened.body.value.encode()) == MAX_PLAINTEXT_BYTES - len(_BIG_HEAD + _BIG_TAIL)


@pytest.mark.parametrize("filler", ["a", "€"])
def test_a_body_of_65536_bytes_is_refused_not_truncated(filler: str) -> None:
    with pytest.raises(TooLarge, match="65536 bytes"):
        seal(KeySigner(AGENT), AS_AGENT, _body_of_size(MAX_PLAINTEXT_BYTES + 1, filler), T0)


def test_a_negative_or_non_integer_created_at_is_refused() -> None:
    body = encode_memory_body(NOTES, "x")
    with pytest.raises(ValueError, match="created_at"):
        seal(KeySigner(AGENT), AS_AGENT, body, -1)
    with pytest.raises(ValueError, match="created_at"):
        seal(KeySigner(AGENT), AS_AGENT, body, True)


# Validity: each rule of Head selection violated once


def _rule(event: Event, slug: str | None = None, side: Conversation = AS_OWNER) -> int:
    with pytest.raises(InvalidEngram) as info:
        validate(side, event, slug)
    assert info.value.event_id == event.id
    assert str(info.value).startswith(f"NIP-AE rule {info.value.rule}: ")
    return info.value.rule


BODY = encode_memory_body(NOTES, "v")


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(lambda: _forge(BODY, kind=30078), id="wrong kind"),
        pytest.param(lambda: _forge(BODY, signer=STRANGER), id="another author"),
        pytest.param(lambda: _forge(BODY, tags=[["p", OWNER.public_key.hex]]), id="no d tag"),
        pytest.param(
            lambda: _forge(
                BODY, tags=[["d", _d(NOTES)], ["d", _d(NOTES)], ["p", OWNER.public_key.hex]]
            ),
            id="two d tags",
        ),
        pytest.param(lambda: _forge(BODY, tags=[["d", _d(NOTES)]]), id="no p tag"),
        pytest.param(
            lambda: _forge(
                BODY,
                tags=[["d", _d(NOTES)], ["p", OWNER.public_key.hex], ["p", OWNER.public_key.hex]],
            ),
            id="two p tags",
        ),
        pytest.param(
            lambda: _forge(BODY, tags=[["d", _d(NOTES)], ["p", STRANGER.public_key.hex]]),
            id="p names another owner",
        ),
        pytest.param(
            lambda: _forge(BODY, tags=[["d"], ["p", OWNER.public_key.hex]]), id="empty d tag"
        ),
    ],
)
def test_rule_1_the_envelope_must_name_the_agent_and_owner(event: object) -> None:
    assert callable(event)
    assert _rule(event()) == 1


def test_rule_1_ignores_extra_tags_beyond_d_p_and_alt() -> None:
    event = _forge(
        BODY, tags=[["d", _d(NOTES)], ["p", OWNER.public_key.hex], ["client", "x"], ["t"]]
    )
    assert validate(AS_OWNER, event).body == MemoryBody(NOTES, "v")


def test_rule_2_a_tampered_event_fails_on_its_id() -> None:
    event = _note()
    tampered = dataclasses.replace(event, created_at=event.created_at + 1)
    assert _rule(tampered) == 2


def test_an_event_signed_by_another_key_is_discarded_before_decryption(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The stranger's signature over an event that claims the agent as author.
    honest = _forge(BODY, signer=STRANGER)
    claimed_id = compute_id(
        AGENT.public_key.hex, honest.created_at, honest.kind, honest.tags, honest.content
    )
    forged = dataclasses.replace(honest, pubkey=AGENT.public_key.hex, id=claimed_id)
    decrypted: list[str] = []
    original = nip44.ConversationKey.decrypt

    def spy(self: nip44.ConversationKey, payload: str) -> str:
        decrypted.append(payload)
        return original(self, payload)

    monkeypatch.setattr(nip44.ConversationKey, "decrypt", spy)
    with pytest.raises(InvalidEngram, match="signature does not verify") as info:
        validate(AS_OWNER, forged)
    assert info.value.rule == 2
    assert decrypted == []


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(lambda: _forge(BODY, content="not a payload"), id="not nip44"),
        pytest.param(
            lambda: _forge(BODY, conv_key=nip44.conversation_key(STRANGER, OWNER.public_key)),
            id="another conversation key",
        ),
        pytest.param(lambda: _forge("not json"), id="not json"),
        pytest.param(lambda: _forge('["mem/notes","v"]'), id="an array"),
        pytest.param(
            lambda: _forge('{"slug":"mem/notes","value":"v","slug":"mem/notes"}'),
            id="duplicate at the top",
        ),
        pytest.param(
            lambda: _forge('{"slug":"mem/notes","value":"v","x":[{"a":{"b":1,"b":1}}]}'),
            id="duplicate nested deep",
        ),
        pytest.param(
            lambda: _forge('{"slug":"mem/notes","value":"\\udc00"}'), id="escaped lone surrogate"
        ),
        pytest.param(lambda: _forge('{"slug":"mem/notes","value":NaN}'), id="NaN"),
    ],
)
def test_rule_3_the_content_must_decrypt_to_a_strict_json_object(event: object) -> None:
    assert callable(event)
    assert _rule(event()) == 3


def test_rule_3_accepts_an_escaped_surrogate_pair() -> None:
    event = _forge('{"slug":"mem/notes","value":"\\ud83d\\ude80"}')
    assert validate(AS_OWNER, event).body == MemoryBody(NOTES, "\U0001f680")


@pytest.mark.parametrize(
    "body",
    [
        '{"slug":"mem/other","value":"v"}',
        '{"slug":"Mem/notes","value":"v"}',
        '{"slug":"notes","value":"v"}',
        '{"value":"v"}',
        '{"slug":7,"value":"v"}',
        '{"slug":"core","profile":"p"}',
    ],
)
def test_rule_4_the_body_slug_must_be_valid_and_derive_to_the_d_tag(body: str) -> None:
    assert _rule(_forge(body)) == 4


def test_rule_4_an_event_for_another_slug_is_not_that_slugs_record() -> None:
    event = seal(KeySigner(AGENT), AS_AGENT, encode_memory_body("mem/other", "v"), T0)
    assert validate(AS_OWNER, event).slug == "mem/other"
    assert _rule(event, slug=NOTES) == 4


@pytest.mark.parametrize(
    "body",
    [
        '{"slug":"mem/notes"}',
        '{"slug":"mem/notes","value":1}',
        '{"slug":"mem/notes","value":["v"]}',
        '{"slug":"mem/notes","profile":"p"}',
    ],
)
def test_rule_5_a_memory_body_needs_a_string_or_null_value(body: str) -> None:
    assert _rule(_forge(body)) == 5


@pytest.mark.parametrize(
    "body", ['{"slug":"core"}', '{"slug":"core","profile":null}', '{"slug":"core","value":"v"}']
)
def test_rule_5_a_core_body_needs_a_string_profile(body: str) -> None:
    event = _forge(body, tags=[["d", _d("core")], ["p", OWNER.public_key.hex]])
    assert _rule(event) == 5


def test_rules_are_checked_in_order_so_the_first_failure_is_reported() -> None:
    # Wrong p tag (rule 1) *and* undecryptable (rule 3): rule 1 is reported.
    event = _forge(
        BODY,
        tags=[["d", _d(NOTES)], ["p", STRANGER.public_key.hex]],
        content="garbage",
    )
    assert _rule(event) == 1


def test_unknown_body_members_do_not_affect_validity() -> None:
    event = _forge('{"trust":3,"slug":"mem/notes","links":[{"to":"core"}],"value":null}')
    opened = validate(AS_OWNER, event)
    assert opened.is_tombstone


def test_invalid_engram_is_a_nostr_error() -> None:
    assert issubclass(InvalidEngram, NostrError)


# Head selection


def test_no_candidates_means_no_head() -> None:
    selection = select_head(AS_OWNER, NOTES, [])
    assert selection.head is None
    assert selection.discarded == ()


def test_the_newest_valid_event_is_the_head() -> None:
    old, new = _note("old", T0), _note("new", T0 + 5)
    selection = select_head(AS_OWNER, NOTES, [new, old])
    assert selection.head is not None
    assert selection.head.event == new
    assert [e.event for e in selection.superseded] == [old]


def test_a_tie_on_created_at_goes_to_the_lowest_id() -> None:
    events = [_note(f"v{i}", T0) for i in range(6)]
    selection = select_head(AS_OWNER, NOTES, events)
    assert selection.head is not None
    assert selection.head.event.id == min(e.id for e in events)


def test_invalid_events_are_discarded_before_the_newest_is_picked() -> None:
    valid_old = _note("old", T0)
    valid_new = _note("new", T0 + 10)
    tied = _note("tied", T0 + 10)
    junk_bad_sig = dataclasses.replace(_note("forged", T0 + 100), sig=_note("other", T0 + 100).sig)
    junk_undecryptable = _forge(BODY, created_at=T0 + 200, content="A" * 200)
    junk_wrong_slug = seal(
        KeySigner(AGENT), AS_AGENT, encode_memory_body("mem/other", "x"), T0 + 300
    )
    junk_dup_keys = _forge('{"slug":"mem/notes","value":"a","value":"b"}', created_at=T0 + 400)
    junk_other_owner = _forge(
        BODY, tags=[["d", _d(NOTES)], ["p", STRANGER.public_key.hex]], created_at=T0 + 500
    )
    candidates = [
        junk_bad_sig,
        valid_old,
        junk_undecryptable,
        tied,
        junk_wrong_slug,
        valid_new,
        junk_dup_keys,
        junk_other_owner,
    ]
    selection = select_head(AS_OWNER, NOTES, candidates)
    assert selection.head is not None
    assert selection.head.event.id == min(valid_new.id, tied.id)
    assert {e.event.id for e in selection.superseded} == (
        {valid_new.id, tied.id, valid_old.id} - {selection.head.event.id}
    )
    reasons = {d.event.id: d.error.rule for d in selection.discarded}
    assert reasons == {
        junk_bad_sig.id: 2,
        junk_undecryptable.id: 3,
        junk_wrong_slug.id: 4,
        junk_dup_keys.id: 3,
        junk_other_owner.id: 1,
    }


def test_only_invalid_candidates_mean_no_head() -> None:
    junk = _forge("{}", created_at=T0 + 1)
    selection = select_head(AS_OWNER, NOTES, [junk])
    assert selection.head is None
    assert [d.error.rule for d in selection.discarded] == [4]


def test_the_same_event_from_several_relays_counts_once() -> None:
    event = _note("x")
    copy = Event.from_json(event.to_json())
    selection = select_head(AS_OWNER, NOTES, [event, copy, event])
    assert selection.head is not None
    assert selection.head.event == event
    assert selection.superseded == ()
    assert selection.discarded == ()


def test_a_copy_with_a_forged_signature_does_not_hide_the_valid_event() -> None:
    event = _note("x")
    forged = dataclasses.replace(event, sig="00" * 64)
    selection = select_head(AS_OWNER, NOTES, [forged, event])
    assert selection.head is not None
    assert selection.head.event == event
    assert [d.error.rule for d in selection.discarded] == [2]


def test_two_valid_signatures_of_one_id_are_one_candidate() -> None:
    first = _note("x")
    resigned = dataclasses.replace(first, sig=AGENT.sign_schnorr(bytes.fromhex(first.id)).hex())
    assert resigned.sig != first.sig
    assert why_invalid(resigned) is None
    selection = select_head(AS_OWNER, NOTES, [first, resigned])
    assert selection.head is not None
    assert selection.head.event.sig == min(first.sig, resigned.sig)
    assert selection.superseded == ()


def test_a_tombstone_can_be_the_head() -> None:
    selection = select_head(AS_OWNER, NOTES, [_note("x", T0), _note(None, T0 + 1)])
    assert selection.head is not None
    assert selection.head.is_tombstone

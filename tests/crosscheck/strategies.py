"""Hypothesis strategies shared by the cross-checks: keys, awkward text, bodies."""

from __future__ import annotations

from hypothesis import strategies as st

from adapters.nostr.keys import SecretKey
from domain.persona import PersonaContent

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

secret_keys = st.integers(min_value=1, max_value=SECP256K1_ORDER - 1).map(
    lambda n: SecretKey(n.to_bytes(32, "big"))
)
# Control characters get their own, heavier weight: they are where JSON
# escaping (and so event ids) diverge between implementations.
control_chars = st.characters(min_codepoint=0, max_codepoint=0x1F)
any_chars = st.characters(codec="utf-8")
awkward_chars = st.one_of(control_chars, any_chars, st.sampled_from('"\\/\x7f\u2028\u2029\ufeff'))


def awkward_text(min_size: int = 0, max_size: int = 200) -> st.SearchStrategy[str]:
    return st.text(alphabet=awkward_chars, min_size=min_size, max_size=max_size)


_segment = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,12}", fullmatch=True)
memory_slugs = st.lists(_segment, min_size=1, max_size=3).map(
    lambda parts: "mem/" + "/".join(parts)
)
persona_slugs = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,63}", fullmatch=True)

persona_contents = st.builds(
    PersonaContent,
    display_name=awkward_text(),
    system_prompt=awkward_text(max_size=400),
    avatar_url=st.none() | awkward_text(),
    runtime=st.none() | awkward_text(max_size=20),
    model=st.none() | awkward_text(max_size=20),
    provider=st.none() | awkward_text(max_size=20),
    name_pool=st.lists(awkward_text(max_size=20), max_size=4).map(tuple),
)
env_vars = st.dictionaries(
    st.from_regex(r"[A-Z_][A-Z0-9_]{0,15}", fullmatch=True),
    awkward_text(max_size=40).filter(lambda v: "\x00" not in v),
    max_size=4,
)

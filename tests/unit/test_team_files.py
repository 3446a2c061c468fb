"""Reading buzz's team files: persona-pack front matter, buzz's d-tag rule, snapshots,
and the Teams aggregate that records them."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.teams.frontmatter import (
    FrontMatterError,
    Nested,
    parse_front_matter,
    split_front_matter,
)
from adapters.teams.pack import InvalidPack
from adapters.teams.snapshot import read_snapshot
from domain.slugs import buzz_d_tag, is_persona_slug
from domain.teams import InvalidTeam, TeamDefinition, Teams, team_id, team_id_from_name


@pytest.mark.parametrize(
    ("given_id", "slug"),
    [
        ("builtin:fizz", "builtin-fizz"),
        ("Lep", "lep"),
        ("_ops", "a_ops"),
        ("CodeReviewer", "codereviewer"),
        ("Ünï", "a-n-"),
        ("0b9f3f0e-3c1a-4d1e-8f3a-2b1c0d9e8f7a", "0b9f3f0e-3c1a-4d1e-8f3a-2b1c0d9e8f7a"),
    ],
)
def test_buzz_d_tag_gives_the_references_worked_examples(given_id: str, slug: str) -> None:
    assert buzz_d_tag(given_id) == slug


@given(st.text(max_size=100))
def test_buzz_d_tag_always_gives_a_valid_persona_slug(text: str) -> None:
    assert is_persona_slug(buzz_d_tag(text))


@given(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,63}", fullmatch=True))
def test_buzz_d_tag_leaves_a_valid_slug_as_it_is(slug: str) -> None:
    assert buzz_d_tag(slug) == slug


def test_front_matter_and_body_are_split_at_the_first_line_of_three_dashes() -> None:
    front, body = split_front_matter("---\nname: a\n---junk\n---\nbody\n---\nmore\n")
    assert front == "name: a\n---junk\n"
    assert body == "body\n---\nmore\n"


@pytest.mark.parametrize("text", ["name: a\n---\n", "---\nname: a\n"])
def test_a_file_without_both_delimiters_is_refused(text: str) -> None:
    with pytest.raises(FrontMatterError):
        split_front_matter(text)


def test_the_yaml_subset_reads_what_persona_files_use() -> None:
    members = parse_front_matter(
        "# a comment\n"
        'name: "lep"\n'
        "display_name: 'Lep''s 🍀'\n"
        "description: Security reviewer # trailing comment\n"
        "temperature: 0.3\n"
        "max_context_tokens: 128000\n"
        "thread_replies: true\n"
        "avatar: ~\n"
        'skills: ["./a/", b]\n'
        "subscribe:\n"
        '  - "#security"\n'
        "  - reviews\n"
        "mcp_servers:\n"
        "  - name: semgrep\n"
        "    command: semgrep-mcp\n"
        "triggers:\n"
        "  mentions: true\n"
        "version: |\n"
        "  line one\n"
        "  line two\n"
    )
    assert members["name"] == "lep"
    assert members["display_name"] == "Lep's 🍀"
    assert members["description"] == "Security reviewer"
    assert members["temperature"] == 0.3
    assert members["max_context_tokens"] == 128000
    assert members["thread_replies"] is True
    assert members["avatar"] is None
    assert members["skills"] == ["./a/", "b"]
    assert members["subscribe"] == ["#security", "reviews"]
    assert isinstance(members["mcp_servers"], Nested)
    assert isinstance(members["triggers"], Nested)
    assert members["version"] == "line one\nline two\n"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("name: a\nname: b\n", "line 2: key 'name' is given twice"),
        ("  name: a\n", "line 1: unexpected indentation"),
        ("just text\n", "line 1: expected 'key: value'"),
        ("name: &anchor a\n", "line 1: YAML feature '&'"),
        ('name: "unterminated\n', "line 1: unterminated"),
        ("skills: [a, [b]]\n", "line 1: nested flow"),
        ("name:\n\tvalue\n", "line 2: tabs"),
    ],
)
def test_yaml_outside_the_subset_is_refused_naming_its_line(text: str, where: str) -> None:
    with pytest.raises(FrontMatterError, match=where):
        parse_front_matter(text)


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=40))
def test_any_double_quoted_string_reads_back_as_written(value: str) -> None:
    assert parse_front_matter(f"name: {json.dumps(value)}\n")["name"] == value


def test_team_ids_follow_buzzs_pack_id_rule_plus_its_builtin_colon() -> None:
    assert team_id("com.example.meadow") == "com.example.meadow"
    assert team_id("builtin-team:welcome") == "builtin-team:welcome"
    for bad in (".hidden", "a b", "", "x" * 129, "---"):
        with pytest.raises(InvalidTeam):
            team_id(bad)


def test_a_team_id_made_from_a_name_is_lowercase_and_dashed() -> None:
    assert team_id_from_name("Meadow Security Team!") == "meadow-security-team"
    with pytest.raises(InvalidTeam):
        team_id_from_name("!!!")


def _team(personas: tuple[str, ...] = ("a", "b"), source: str = "pack:/x") -> TeamDefinition:
    return TeamDefinition("meadow", "Meadow", None, "Be kind.", personas, source)


def test_saving_the_same_team_again_records_nothing_even_from_another_source() -> None:
    teams = Teams()
    assert teams.save(_team(), "me")
    assert not teams.save(_team(source="snapshot:/y"), "me")
    assert teams.save(_team(("a",)), "me")
    assert teams.teams_of("b") == []
    assert teams.get("meadow") == _team(("a",))


def test_a_team_naming_a_persona_twice_is_refused() -> None:
    with pytest.raises(InvalidTeam, match="twice"):
        _team(("a", "a"))


def _snapshot(**overrides: object) -> dict[str, object]:
    member = {
        "format": "buzz-agent-snapshot",
        "version": 1,
        "definition": {
            "name": "Reviewer",
            "sourceIsBuiltin": False,
            "systemPrompt": "Review.",
            "model": "claude-opus-4",
            "provider": "anthropic",
            "namePool": ["Ann"],
        },
        "profile": {"displayName": "Rev", "avatarDataUrl": "data:image/png;base64,AAAA"},
        "memory": {"level": "core", "entries": [{"slug": "mem/a", "body": "x"}]},
    }
    doc: dict[str, object] = {
        "format": "buzz-team-snapshot",
        "version": 1,
        "team": {"name": "Review Crew", "instructions": "Be brief."},
        "members": [member],
    }
    doc.update(overrides)
    return doc


def _png_with_text(keyword: bytes, text: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    idat = zlib.compress(b"\x00\x00\x00\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"tEXt", keyword + b"\x00" + text)
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


def test_a_team_json_snapshot_gives_one_persona_per_member(tmp_path: Path) -> None:
    path = tmp_path / "crew.team.json"
    path.write_text(json.dumps(_snapshot(), indent=2), encoding="utf-8")
    read = read_snapshot(path)
    assert read.team.team == "review-crew"
    assert read.team.instructions == "Be brief."
    [(slug, definition)] = read.personas
    assert slug == "reviewer"
    assert definition.content.display_name == "Rev"
    assert definition.content.provider == "anthropic"
    assert definition.content.name_pool == ("Ann",)
    assert definition.content.avatar_url is None
    assert dict(definition.env_vars) == {}
    assert read.notes == (
        "reviewer: left out its inline avatar (a persona carries an avatar URL) and 1 memory entry",
    )


def test_a_team_png_snapshot_reads_the_same_as_its_json(tmp_path: Path) -> None:
    raw = json.dumps(_snapshot()).encode()
    png = tmp_path / "crew.team.png"
    png.write_bytes(_png_with_text(b"buzz_team_snapshot", base64.b64encode(raw)))
    plain = tmp_path / "crew.team.json"
    plain.write_bytes(raw)
    assert read_snapshot(png).personas == read_snapshot(plain).personas


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"version": 1, "type": "team", "name": "old"}, "Legacy team files are no longer"),
        (_snapshot(format="other"), "unsupported team snapshot format"),
        (_snapshot(version=2), "version 2"),
        (_snapshot(team={"name": "  "}), "'name' must not be blank"),
        (_snapshot(members=[]), "'members' must be a non-empty array"),
        (_snapshot(members=[{"format": "x"}]), r"members\[0\]: must be a buzz-agent-snapshot"),
    ],
)
def test_a_bad_snapshot_is_refused_naming_the_file(
    tmp_path: Path, doc: dict[str, object], message: str
) -> None:
    path = tmp_path / "bad.team.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(InvalidPack, match=message) as caught:
        read_snapshot(path)
    assert str(path) in str(caught.value)


def test_memory_entries_under_level_none_are_refused_as_buzz_refuses_them(tmp_path: Path) -> None:
    doc = _snapshot()
    member = doc["members"][0]  # type: ignore[index]
    member["memory"] = {"level": "none", "entries": [{"slug": "s", "body": "b"}]}
    path = tmp_path / "bad.team.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(InvalidPack, match=r"memory\.level 'none' but non-empty entries"):
        read_snapshot(path)


def test_a_png_without_the_snapshot_chunk_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.team.png"
    path.write_bytes(_png_with_text(b"other", b"e30="))
    with pytest.raises(InvalidPack, match="does not contain a buzz_team_snapshot"):
        read_snapshot(path)


def test_a_png_with_a_damaged_chunk_is_refused(tmp_path: Path) -> None:
    raw = bytearray(_png_with_text(b"buzz_team_snapshot", b"e30="))
    raw[40] ^= 0xFF
    path = tmp_path / "x.team.png"
    path.write_bytes(bytes(raw))
    with pytest.raises(InvalidPack, match="Invalid PNG"):
        read_snapshot(path)


def test_persona_saves_stored_before_causes_existed_read_as_having_none() -> None:
    from domain.versioning import upcast

    for topic in ("domain.aggregates:Persona.Created", "domain.aggregates:Persona.Saved"):
        assert upcast(topic, {"slug": "a", "actor": "me"})["cause"] is None

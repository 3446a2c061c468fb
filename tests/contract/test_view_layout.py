"""The agent row is declared once: the planner's facts are read from the columns
of their names, and the stored view's schema version is derived from the
declared columns, their types and the view's tables, so editing any of them
moves it, and a view stored under another version is rebuilt from the log."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import adapters.store.viewstore as viewstore
from adapters.store.viewstore import SCHEMA_VERSION, SQLiteViewStore
from domain.application import NewAgent
from domain.planner import AgentFacts, HeadFacts
from projections.fold import RULES
from projections.rows import (
    AGENT_COLUMNS,
    AGENT_TYPES,
    NEW_TAIL,
    REASONS,
    ROW_LAYOUT,
    AgentRow,
    fact_columns,
    layout_version,
)
from tests.fleet_support import definition, make_fleet, pubkey, snapshot

DECLARED = dict(zip(AGENT_COLUMNS, AGENT_TYPES, strict=True))


def version_of(layout: dict[str, tuple[tuple[str, str], ...]]) -> str:
    return layout_version(layout, viewstore._TABLES, RULES)


def test_the_schema_version_is_derived_from_the_declared_rows_and_tables() -> None:
    assert ROW_LAYOUT["agents"] == tuple(AgentRow.__annotations__.items())
    assert version_of(ROW_LAYOUT) == SCHEMA_VERSION


@st.composite
def edited_layouts(draw: st.DrawFn) -> dict[str, tuple[tuple[str, str], ...]]:
    """The declared layout with one column renamed, retyped, added, dropped or moved."""
    table = draw(st.sampled_from(sorted(ROW_LAYOUT)))
    columns = list(ROW_LAYOUT[table])
    at = draw(st.integers(0, len(columns) - 1))
    name, column_type = columns[at]
    edit = draw(st.sampled_from(["rename", "retype", "add", "drop", "move"]))
    if edit == "rename":
        columns[at] = (name + draw(st.sampled_from(["_at", "s", "2"])), column_type)
    elif edit == "retype":
        other = draw(st.sampled_from(["str", "int", "bool", "str | None", "list[str] | None"]))
        columns[at] = (name, other if other != column_type else column_type + " | None")
    elif edit == "add":
        new = (draw(st.sampled_from(["attestation", "team", "extra"])), draw(st.just("str")))
        columns.insert(draw(st.integers(0, len(columns))), new)
    elif edit == "drop":
        del columns[at]
    else:
        to = draw(st.integers(0, len(columns) - 1).filter(lambda n: n != at))
        columns[at], columns[to] = columns[to], columns[at]
    return ROW_LAYOUT | {table: tuple(columns)}


@given(edited_layouts())
def test_editing_any_column_moves_the_schema_version(
    layout: dict[str, tuple[tuple[str, str], ...]],
) -> None:
    assert layout != ROW_LAYOUT
    assert version_of(layout) != SCHEMA_VERSION


def test_editing_a_table_or_the_fold_rules_moves_the_schema_version() -> None:
    tables = dict(viewstore._TABLES)
    tables["chunks"] = (tables["chunks"][0].replace("size INTEGER", "count INTEGER"),)
    assert layout_version(ROW_LAYOUT, tables, RULES) != SCHEMA_VERSION
    assert layout_version(ROW_LAYOUT, viewstore._TABLES, RULES + 1) != SCHEMA_VERSION


def test_the_schema_version_is_the_same_in_every_process() -> None:
    versions = {
        subprocess.run(
            [sys.executable, "-c", "import adapters.store.viewstore as v; print(v.SCHEMA_VERSION)"],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout.strip()
        for seed in ("1", "2", "random")
    }
    assert versions == {SCHEMA_VERSION}


@pytest.mark.parametrize(
    ("column", "column_type"),
    [("version", None), ("version", "str"), ("head_digest", None), ("pubkey", "str | None")],
)
def test_a_row_without_a_planner_fact_under_its_name_and_type_is_refused(
    column: str, column_type: str | None
) -> None:
    declared = dict(DECLARED)
    if column_type is None:
        del declared[column]
    else:
        declared[column] = column_type
    with pytest.raises(TypeError, match=f"fact {column}"):
        fact_columns(declared)


TEXT = st.none() | st.text("0123456789abcdef", max_size=8)


@st.composite
def rows(draw: st.DrawFn) -> AgentRow:
    """An agent row with a value of its declared type in every column."""
    values: list[Any] = []
    for name, column_type in DECLARED.items():
        if name == "head_state":
            values.append(draw(st.none() | st.sampled_from(["valid", "missing", "tombstone"])))
        elif column_type == "list[str] | None":
            values.append(draw(st.none() | st.lists(st.text(max_size=5), max_size=3)))
        elif column_type == "int":
            values.append(draw(st.integers(0, 10**6)))
        elif column_type == "bool":
            values.append(draw(st.booleans()))
        elif column_type == "str":
            values.append(draw(st.text(max_size=8)))
        else:
            assert column_type == "str | None", column_type
            values.append(draw(TEXT))
    return AgentRow(values)


@given(rows())
def test_the_facts_of_a_row_are_its_columns_of_the_same_names(row: AgentRow) -> None:
    facts = row.facts()
    assert type(facts) is AgentFacts
    for name in AgentFacts._fields:
        if name != "head":
            assert getattr(facts, name) == getattr(row, name), name
    if row.head_state is None:
        assert facts.head is None
        return
    assert type(facts.head) is HeadFacts
    for name in HeadFacts._fields:
        column = getattr(row, f"head_{name}")
        if name == "relays":
            assert facts.head.relays == tuple(column or ())
        else:
            assert getattr(facts.head, name) == column, name


def test_a_new_agents_row_gives_the_planner_a_new_agents_facts() -> None:
    start = ["id", "c" * 64, "Ada", "writer", "o" * 64, "created", "t", 3, 3, "", ""]
    row = AgentRow([*start, *NEW_TAIL])
    assert len(start) == REASONS + 1
    assert row.facts() == AgentFacts(
        agent_id="id",
        pubkey="c" * 64,
        persona_slug="writer",
        retired=False,
        assigned_position=3,
        head=None,
        published_digest=None,
        pending_event_id=None,
        pending_digest=None,
        pending_secrets_digest=None,
        pending_position=0,
        conflict_digest=None,
        conflict_position=0,
    )


def test_a_view_stored_under_another_schema_version_is_rebuilt_from_the_log(
    tmp_path: Path,
) -> None:
    app, view = make_fleet("sqlite", tmp_path)
    app.save_persona("writer", definition("v1"), "t")
    app.create_agents([NewAgent(pubkey(n), "writer", f"w{n}") for n in range(5)], "t")
    view.catch_up()
    expected = snapshot(view)
    path = tmp_path / "view.sqlite"
    assert isinstance(view.store, SQLiteViewStore)
    view.store.close()
    with sqlite3.connect(path) as conn:
        # What the view held when its version was bumped by hand.
        conn.execute("UPDATE meta SET value = '8' WHERE key = 'schema'")
    reopened = SQLiteViewStore(path, chunk_size=2)
    assert reopened.position() == 0
    assert reopened.list_agents() == []
    view.store = reopened
    view.catch_up()
    assert snapshot(view) == expected
    with sqlite3.connect(path) as conn:
        (schema,) = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    assert schema == SCHEMA_VERSION
    reopened.close()
    app.close()

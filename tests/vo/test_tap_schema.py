"""The tables TAP serves: the store's columns as the migrations make them, each described, and TAP_SCHEMA
with the columns TAP 1.1 lists, its rows describing every served table, itself included."""

from __future__ import annotations

import importlib
import re
import sqlite3
from pathlib import Path

import pytest
from astropy.io.votable.ucd import parse_ucd

from starling.store.migrate import upgrade
from starling.vo.tap_model import ADQL_RESERVED_NAMES
from starling.vo.tap_schema import (
    STARLING_TABLES,
    TAP_KEYS,
    TAP_SCHEMA_TABLES,
    TAP_TABLES,
    TapColumn,
    keys_of,
    table,
    tap_schema_rows,
)

_SPANS = importlib.import_module("starling.store.migrations.versions.0002_stored_history_and_cutouts").SPANS
HIDDEN = {("objects", span) for span in _SPANS} | {("alerts", "cutouts")}
DATATYPES = {"boolean", "short", "int", "long", "float", "double", "char", "unicodeChar"}


def _migrated_tables(tmp_path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Each store table's columns and primary key, as a SQLite store migrated to the newest revision has
    them."""
    location = tmp_path / "migrated.db"
    upgrade(location)
    tables: dict[str, tuple[list[str], list[str]]] = {}
    with sqlite3.connect(location) as db:
        names = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for name in names:
            if name == "alembic_version":
                continue
            info = db.execute(
                f"PRAGMA table_info({name})"
            ).fetchall()  # cid, name, type, notnull, default, pk
            key = [row[1] for row in sorted((row for row in info if row[5]), key=lambda row: row[5])]
            tables[name] = ([row[1] for row in info], key)
    return tables


def test_the_store_tables_expose_every_migrated_column_but_the_bookkeeping_ones(tmp_path: Path) -> None:
    migrated = _migrated_tables(tmp_path)
    assert set(migrated) == {t.name for t in STARLING_TABLES}
    assert len(migrated) == 7
    for t in STARLING_TABLES:
        columns, primary_key = migrated[t.name]
        assert [c.name for c in t.columns] == [c for c in columns if (t.name, c) not in HIDDEN], t.name
        assert list(t.primary_key) == primary_key
    assert "det_from" not in {c.name for c in table("objects").columns}
    assert "cutouts" not in {c.name for c in table("alerts").columns}


def test_every_store_column_has_a_description_a_ucd_and_the_unit_of_its_kind() -> None:
    for t in STARLING_TABLES:
        for c in t.columns:
            where = f"{t.name}.{c.name}"
            assert c.description.strip(), where
            parse_ucd(c.ucd, check_controlled_vocabulary=True)  # UCD1+ words, each in its place
            if c.name in ("ra", "dec"):
                assert (c.unit, c.datatype) == ("deg", "double"), where
                assert c.ucd.startswith(f"pos.eq.{c.name}"), where
            elif c.name.endswith("mjd"):
                assert (c.unit, c.datatype) == ("d", "double"), where
                assert c.ucd.startswith("time."), where
            elif c.name.endswith(("mag", "mag_err")):
                assert c.unit == "mag", where
            elif "flux" in c.name:
                assert c.unit == "nJy", where
                assert "phot.flux.density" in c.ucd, where
            else:
                assert c.unit == "", where  # identifiers, bands, counts, scores, text
    assert table("alerts").column("ra").ucd == "pos.eq.ra;meta.main"
    assert table("objects").column("object_id").ucd == "meta.id;meta.main"
    assert table("alerts").column("mag_err").ucd == "stat.error;phot.mag"
    with pytest.raises(ValueError, match="not valid as a primary word"):  # the check has teeth
        parse_ucd("instr.filter", check_controlled_vocabulary=True)


def test_datatypes_are_votables_and_text_has_an_arraysize() -> None:
    for t in TAP_TABLES:
        for c in t.columns:
            assert c.datatype in DATATYPES, (t.name, c.name)
            assert (c.arraysize == "*") == (c.datatype == "char"), (t.name, c.name)
    assert table("alerts").column("alert_id").datatype == "long"
    assert table("objects").column("n_detections").datatype == "int"
    assert table("detections").column("flux").datatype == "double"


def test_the_tap_schema_tables_have_the_columns_tap_1_1_lists() -> None:
    assert {t.name: [c.name for c in t.columns] for t in TAP_SCHEMA_TABLES} == {
        "schemas": ["schema_name", "utype", "description", "schema_index"],
        "tables": ["schema_name", "table_name", "table_type", "utype", "description", "table_index"],
        "columns": [
            "table_name", "column_name", "datatype", "arraysize", "xtype", "size", "description", "utype",
            "unit", "ucd", "indexed", "principal", "std", "column_index",
        ],
        "keys": ["key_id", "from_table", "target_table", "description", "utype"],
        "key_columns": ["key_id", "from_column", "target_column"],
    }  # fmt: skip
    size = table("TAP_SCHEMA.columns").column('"size"')
    assert size.name == "size"
    assert size.adql_name == '"size"'
    assert size.datatype == "int"


def test_each_key_joins_existing_columns_to_its_targets_primary_key() -> None:
    assert len(TAP_KEYS) == 13
    for key in TAP_KEYS:
        source, target = table(key.from_table), table(key.target_table)
        for from_column, target_column in key.columns:
            source.column(from_column)
            target.column(target_column)
        assert {t for _, t in key.columns} == set(target.primary_key), key
    assert {(k.from_table, k.target_table) for k in keys_of("alerts")} == {
        ("starling.alerts", "starling.objects")
    }
    detections = keys_of("starling.detections")[0]
    assert detections.columns == (("survey", "survey"), ("object_id", "object_id"))


def test_a_table_is_found_by_its_bare_or_qualified_name_in_any_case() -> None:
    assert table("alerts") is table("starling.alerts") is table(" STARLING.Alerts ")
    assert table("TAP_SCHEMA.columns") is table("tap_schema.COLUMNS")
    assert table("TAP_SCHEMA.columns").qualified_name == "TAP_SCHEMA.columns"
    assert table("objects").qualified_name == "starling.objects"
    for missing in ("columns", "starling.columns", "nothing", "TAP_SCHEMA.alerts"):
        with pytest.raises(KeyError):
            table(missing)
    with pytest.raises(KeyError):
        table("alerts").column("cutouts")


def _by_name(rows: list[tuple[object, ...]], t: str) -> list[dict[str, object]]:
    names = [c.name for c in table(t).columns]
    assert all(len(row) == len(names) for row in rows)
    return [dict(zip(names, row, strict=True)) for row in rows]


def test_tap_schema_rows_describe_every_served_table_and_column_themselves_included() -> None:
    rows = tap_schema_rows()
    assert set(rows) == {t.qualified_name for t in TAP_SCHEMA_TABLES}
    schemas = _by_name(rows["TAP_SCHEMA.schemas"], "TAP_SCHEMA.schemas")
    assert [s["schema_name"] for s in schemas] == ["starling", "TAP_SCHEMA"]
    tables = _by_name(rows["TAP_SCHEMA.tables"], "TAP_SCHEMA.tables")
    assert [(t["schema_name"], t["table_name"]) for t in tables] == [
        (t.schema, t.qualified_name) for t in TAP_TABLES
    ]
    assert {t["table_type"] for t in tables} == {"table"}
    columns = _by_name(rows["TAP_SCHEMA.columns"], "TAP_SCHEMA.columns")
    described = {(c["table_name"], c["column_name"]): c for c in columns}
    assert len(described) == len(columns) == sum(len(t.columns) for t in TAP_TABLES)
    for t in TAP_TABLES:
        for index, c in enumerate(t.columns):
            row = described[(t.qualified_name, c.adql_name)]
            assert (row["datatype"], row["arraysize"], row["description"]) == (
                c.datatype,
                c.arraysize,
                c.description,
            )
            assert (row["unit"], row["ucd"]) == (c.unit or None, c.ucd or None)
            assert (row["indexed"], row["principal"]) == (int(c.indexed), int(c.principal))
            assert row["std"] == (1 if t.schema == "TAP_SCHEMA" else 0)
            assert row["column_index"] == index
            assert row["size"] is None  # text of any length, and scalars
    assert ("TAP_SCHEMA.columns", '"size"') in described
    assert described[("starling.alerts", "ra")]["unit"] == "deg"
    assert {c["indexed"] for c in columns} | {c["principal"] for c in columns} == {0, 1}


def test_the_key_rows_join_columns_the_column_rows_describe() -> None:
    rows = tap_schema_rows()
    tables = {row[1] for row in rows["TAP_SCHEMA.tables"]}
    columns = {(row[0], row[1]) for row in rows["TAP_SCHEMA.columns"]}
    keys = {row[0]: (row[1], row[2]) for row in rows["TAP_SCHEMA.keys"]}
    assert len(keys) == len(rows["TAP_SCHEMA.keys"]) == len(TAP_KEYS)  # key_id unique
    assert {row[0] for row in rows["TAP_SCHEMA.key_columns"]} == set(keys)
    for key_id, from_column, target_column in rows["TAP_SCHEMA.key_columns"]:
        from_table, target_table = keys[key_id]
        assert {from_table, target_table} <= tables
        assert (from_table, from_column) in columns
        assert (target_table, target_column) in columns
    composite = [
        r for r in rows["TAP_SCHEMA.key_columns"] if keys[r[0]] == ("starling.alerts", "starling.objects")
    ]
    assert sorted(r[1:] for r in composite) == [("object_id", "object_id"), ("survey", "survey")]


def test_size_is_the_bounded_length_of_a_one_dimensional_arraysize() -> None:
    def size(arraysize: str | None) -> int | None:
        return TapColumn("c", "char", "", arraysize=arraysize).size

    assert [size(None), size("*"), size("64*"), size("8"), size("2x3")] == [None, None, 64, 8, None]


def _reserved_words(bnf: Path) -> set[str]:
    text = bnf.read_text()
    words: set[str] = set()
    for production in ("ADQL_reserved_word", "SQL_reserved_word"):
        body = re.search(rf"<{production}> ::=(.*?)(?:\n\s*\n|\n\s*<\w+> ::=)", text, re.S)
        assert body is not None, production
        words |= set(re.findall(r"\b[A-Z][A-Z0-9_]*\b", body.group(1)))
    return words


def test_only_the_names_adql_reserves_are_delimited(samples: Path) -> None:
    reserved = _reserved_words(samples / "tap" / "ADQL-2.1-REC.bnf")
    assert {"SIZE", "SELECT", "CONTAINS", "POINT"} <= reserved
    served = {c.name.upper() for t in TAP_TABLES for c in t.columns}
    assert served & reserved == ADQL_RESERVED_NAMES

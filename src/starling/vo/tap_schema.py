"""The tables Starling's TAP service serves, described as TAP 1.1 (section 4) and VODataService 1.1 do.

Two schemas: ``starling``, the store's tables (:mod:`starling.vo.store_tables`) and the view of every
alert as a filter sees it (:mod:`starling.vo.alert_fields`), and ``TAP_SCHEMA``, the five tables that
describe every served table, themselves included (:func:`tap_schema_rows` gives their rows). Tables are
named as TAP clients write them, qualified by their schema (``starling.alerts``, ``TAP_SCHEMA.columns``);
:func:`table` finds one by either form of its name, in any case.
"""

from __future__ import annotations

from typing import Any

from starling.vo.alert_fields import ALERT_FIELDS
from starling.vo.store_tables import STARLING_KEYS, STARLING_TABLES
from starling.vo.tap_model import STARLING_SCHEMA, TAP_SCHEMA, TapColumn, TapKey, TapTable

__all__ = [
    "SCHEMA_DESCRIPTIONS",
    "STARLING_KEYS",
    "STARLING_SCHEMA",
    "STARLING_TABLES",
    "STARLING_VIEWS",
    "TAP_KEYS",
    "TAP_SCHEMA",
    "TAP_SCHEMA_KEYS",
    "TAP_SCHEMA_TABLES",
    "TAP_TABLES",
    "TapColumn",
    "TapKey",
    "TapTable",
    "keys_of",
    "table",
    "tap_schema_rows",
]

_TEXT = "*"

# ---- TAP_SCHEMA (TAP 1.1 section 4) -------------------------------------------------------------------


def _meta(
    name: str, description: str, datatype: str = "char", *, principal: bool = True, indexed: bool = False
) -> TapColumn:
    return TapColumn(
        name,
        datatype,
        description,
        principal=principal,
        indexed=indexed,
        arraysize=_TEXT if datatype == "char" else None,
    )


def _flag(name: str, description: str) -> TapColumn:
    return _meta(name, f"{description} (1 or 0).", "int")


_UTYPE = _meta("utype", "A utype: the item's role in a data model.", principal=False)

_TAP_SCHEMA_SCHEMAS = TapTable(
    TAP_SCHEMA,
    "schemas",
    "The schemas of the tables this service serves.",
    (
        _meta("schema_name", "Name of the schema.", indexed=True),
        _UTYPE,
        _meta("description", "What the schema holds."),
        _meta("schema_index", "Suggested position of the schema in a listing (ascending).", "int"),
    ),
    ("schema_name",),
)

_TAP_SCHEMA_TABLES = TapTable(
    TAP_SCHEMA,
    "tables",
    "The tables this service serves.",
    (
        _meta("schema_name", "Name of the table's schema.", indexed=True),
        _meta(
            "table_name", "Name of the table as written in queries (qualified by its schema).", indexed=True
        ),
        _meta("table_type", "Kind of table: table or view."),
        _UTYPE,
        _meta("description", "What the table holds."),
        _meta("table_index", "Suggested position of the table in a listing (ascending).", "int"),
    ),
    ("table_name",),
)

_TAP_SCHEMA_COLUMNS = TapTable(
    TAP_SCHEMA,
    "columns",
    "The columns of the tables this service serves.",
    (
        _meta("table_name", "Name of the column's table (as in TAP_SCHEMA.tables).", indexed=True),
        _meta("column_name", "Name of the column as written in queries.", indexed=True),
        _meta("datatype", "VOTable datatype of the column."),
        _meta("arraysize", "VOTable arraysize of the column; null for a scalar."),
        _meta("xtype", "VOTable (DALI) xtype of the column.", principal=False),
        _meta(
            "size",
            "Length of the column's values, from arraysize (TAP 1.0, deprecated); null if unbounded.",
            "int",
            principal=False,
        ),
        _meta("description", "What the column holds."),
        _UTYPE,
        _meta("unit", "Unit of the column's values (VOUnit)."),
        _meta("ucd", "UCD (UCD1+) of the column."),
        _flag("indexed", "Whether the column is indexed"),
        _flag("principal", "Whether the column is a principal one of its table"),
        _flag("std", "Whether the column is defined by a standard"),
        _meta("column_index", "Suggested position of the column in a listing (ascending).", "int"),
    ),
    ("table_name", "column_name"),
)

_TAP_SCHEMA_KEYS = TapTable(
    TAP_SCHEMA,
    "keys",
    "The foreign keys between the tables this service serves.",
    (
        _meta("key_id", "Identifier of the key (joins TAP_SCHEMA.key_columns).", indexed=True),
        _meta("from_table", "Table holding the key."),
        _meta("target_table", "Table the key refers to."),
        _meta("description", "What the key means."),
        _UTYPE,
    ),
    ("key_id",),
)

_TAP_SCHEMA_KEY_COLUMNS = TapTable(
    TAP_SCHEMA,
    "key_columns",
    "The columns of the foreign keys in TAP_SCHEMA.keys.",
    (
        _meta("key_id", "Identifier of the key (as in TAP_SCHEMA.keys).", indexed=True),
        _meta("from_column", "Column of the key's from_table."),
        _meta("target_column", "Column of the key's target_table it refers to."),
    ),
    ("key_id", "from_column"),
)

TAP_SCHEMA_TABLES: tuple[TapTable, ...] = (
    _TAP_SCHEMA_SCHEMAS,
    _TAP_SCHEMA_TABLES,
    _TAP_SCHEMA_COLUMNS,
    _TAP_SCHEMA_KEYS,
    _TAP_SCHEMA_KEY_COLUMNS,
)


def _t(name: str) -> str:
    return f"{TAP_SCHEMA}.{name}"


TAP_SCHEMA_KEYS: tuple[TapKey, ...] = (  # the keys TAP 1.1 section 4.4 asks services to describe
    TapKey(_t("tables"), _t("schemas"), (("schema_name", "schema_name"),), "The schema of the table."),
    TapKey(_t("columns"), _t("tables"), (("table_name", "table_name"),), "The table of the column."),
    TapKey(_t("keys"), _t("tables"), (("from_table", "table_name"),), "The table holding the key."),
    TapKey(_t("keys"), _t("tables"), (("target_table", "table_name"),), "The table the key refers to."),
    TapKey(_t("key_columns"), _t("keys"), (("key_id", "key_id"),), "The key the column belongs to."),
)

# Views of the store's tables, served beside them in ``starling``.
STARLING_VIEWS: tuple[TapTable, ...] = (ALERT_FIELDS,)

TAP_TABLES: tuple[TapTable, ...] = STARLING_TABLES + STARLING_VIEWS + TAP_SCHEMA_TABLES
TAP_KEYS: tuple[TapKey, ...] = STARLING_KEYS + TAP_SCHEMA_KEYS

SCHEMA_DESCRIPTIONS: dict[str, str] = {
    STARLING_SCHEMA: "The alerts Starling received, their objects' light curves, annotations and filter "
    "matches.",
    TAP_SCHEMA: "Description of the tables and columns this TAP service serves (TAP 1.1).",
}

# every table by its qualified name, and the store's tables (and views) by their bare names too
_BY_NAME: dict[str, TapTable] = {t.qualified_name.lower(): t for t in TAP_TABLES} | {
    t.name.lower(): t for t in STARLING_TABLES + STARLING_VIEWS
}


def table(name: str) -> TapTable:
    """The served table of this name, in any case: ``alerts``, ``starling.alerts``,
    ``TAP_SCHEMA.columns``. A bare name is a table of ``starling``, the default schema (``columns``
    is no table; ``TAP_SCHEMA.columns`` is). Raises KeyError."""
    try:
        return _BY_NAME[name.strip().lower()]
    except KeyError:
        raise KeyError(f"no table {name!r}") from None


def keys_of(table_name: str) -> tuple[TapKey, ...]:
    """The foreign keys held by a table (by its qualified name, in any case)."""
    wanted = table(table_name).qualified_name
    return tuple(key for key in TAP_KEYS if key.from_table == wanted)


def _key_id(index: int, key: TapKey) -> str:
    return f"{key.from_table}-{key.target_table}-{index}"


def tap_schema_rows() -> dict[str, list[tuple[Any, ...]]]:
    """The rows of the five TAP_SCHEMA tables, by qualified table name (``TAP_SCHEMA.columns`` ...),
    each row a tuple in the order of its table's columns in :data:`TAP_SCHEMA_TABLES`.

    They describe every table of :data:`TAP_TABLES`, the TAP_SCHEMA tables included; booleans are the
    integers 0 and 1, absent values None (TAP 1.1 section 4)."""
    schemas: list[str] = []
    for t in TAP_TABLES:
        if t.schema not in schemas:
            schemas.append(t.schema)
    rows: dict[str, list[tuple[Any, ...]]] = {
        _t("schemas"): [(s, None, SCHEMA_DESCRIPTIONS.get(s), i) for i, s in enumerate(schemas)],
        _t("tables"): [
            (t.schema, t.qualified_name, "table", None, t.description, i) for i, t in enumerate(TAP_TABLES)
        ],
        _t("columns"): [
            (
                t.qualified_name,
                c.adql_name,
                c.datatype,
                c.arraysize,
                c.xtype,
                c.size,
                c.description,
                None,
                c.unit or None,
                c.ucd or None,
                int(c.indexed),
                int(c.principal),
                int(t.schema == TAP_SCHEMA),
                i,
            )
            for t in TAP_TABLES
            for i, c in enumerate(t.columns)
        ],
        _t("keys"): [],
        _t("key_columns"): [],
    }
    for i, key in enumerate(TAP_KEYS):
        key_id = _key_id(i, key)
        rows[_t("keys")].append((key_id, key.from_table, key.target_table, key.description, None))
        rows[_t("key_columns")].extend((key_id, source, target) for source, target in key.columns)
    return rows

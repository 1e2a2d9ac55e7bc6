"""``starling.alert_fields``: every stored alert as a stream filter sees it, one row per alert, one column
per field of the filter language (``starling.adql.filter_query`` names them and turns a filter into a
query on them).

The columns: the alert's own values; the history counts up to the alert, the alert's own epoch included
(a Rubin alert carries a forced-photometry point of its own visit), from the store's history tables;
and each annotator's declared outputs, read from the ``annotations`` table's JSON payload as a filter
reads them from the alert: a number in a numeric field (a whole one in an ``int`` field, cut toward
zero, true and false as 1 and 0), text in a text field (a number or a truth value as Python writes it),
anything else NULL (a filter would read a list or an object written where text is declared as its
Python text: no annotator writes one).

It is a view on both backends, computed as it is read, so it never lags the store and costs no space:
on SQLite a temporary view each reading connection makes (:func:`create_sqlite_view`: the store file is
opened read-only); on PostgreSQL a view in the schema ``starling_tap``, beside the translated ADQL's
functions (``starling.adql.postgres_functions``), made when the TAP service starts
(:func:`install_postgres`) and readable by the reader role. An unused column costs nothing: both
databases leave out of a query what it does not read, annotation joins included.
"""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

from starling.adql import postgres_functions
from starling.adql.fields import FieldDef
from starling.adql.filter_query import view_fields
from starling.store.access import READER_ROLE
from starling.vo.store_tables import STARLING_TABLES
from starling.vo.tap_model import STARLING_SCHEMA, TapColumn, TapTable

__all__ = [
    "ALERT_FIELDS",
    "FIELDS",
    "NAME",
    "POSTGRES_NAME",
    "SCHEMA",
    "SQLITE_VIEW",
    "create_sqlite_view",
    "install_postgres",
    "postgres_ddl",
    "view_select",
]

NAME = "alert_fields"
SCHEMA = postgres_functions.SCHEMA
POSTGRES_NAME = f"{SCHEMA}.{NAME}"
_INSTALL_LOCK = 0x53545657  # "STVW": one service makes the schema at a time
_HISTORY_TABLES = ("alerts", "annotations", "detections", "non_detections", "forced_photometry")


# ---- the columns, described ---------------------------------------------------------------------------


def _ucd(field: FieldDef) -> str:
    """A UCD for a field ``starling.alerts`` does not describe, from its kind, unit and name."""
    key = field.name.rsplit(".", 1)[-1]
    if field.type == "string":
        return "meta.id"
    if field.type == "int":
        return "meta.code" if key in ("known", "inside") else "meta.number"
    if field.unit == "d":
        return "time.epoch" if key.endswith("mjd") else "time.duration"
    found = {"mag/d": "arith.rate;phot.mag", "arcsec": "pos.angDistance"}.get(field.unit)
    if found is None:
        found = {
            "snr": "stat.snr",
            "amplitude": "src.var.amplitude",
            "standard_deviation": "stat.stdev;phot.mag",
        }.get(key)
    if found is not None:
        return found
    if ".colors." in field.name:
        return "phot.color"
    return "phot.mag" if field.unit == "mag" or key.endswith("mag") else "src.var.index"


def _column(field: FieldDef, stored: dict[str, TapColumn]) -> TapColumn:
    datatype = {"float": "double", "int": "long", "string": "char"}[field.type]
    same = stored.get(field.name)
    if field.source == "history":
        description = f"{field.description} (the store's history of the object up to the alert's time)."
    elif field.source == "alert":
        description = f"{field.description}."
    else:
        description = f"{field.description} (written by the {field.source} annotator)."
    return TapColumn(
        field.name,
        datatype,
        description[0].upper() + description[1:],
        field.unit,
        same.ucd if same is not None else _ucd(field),
        principal=same.principal if same is not None else field.source == "history",
        indexed=same.indexed if same is not None else False,
        arraysize="*" if datatype == "char" else None,
    )


FIELDS: tuple[FieldDef, ...] = tuple(view_fields())
_ALERTS = {c.name: c for t in STARLING_TABLES if t.name == "alerts" for c in t.columns}

ALERT_FIELDS = TapTable(
    STARLING_SCHEMA,
    NAME,
    "Every stored alert as a stream filter sees it: one row per alert, one column per field of the filter "
    'language, annotations as <annotator>.<key> (delimited: "xmatch.gaia.dist_arcsec"). A filter\'s '
    "condition, its fields written as these columns, selects the alerts it matches.",
    tuple(_column(field, _ALERTS) for field in FIELDS),
    ("survey", "alert_id"),
)


# ---- the view's SQL -------------------------------------------------------------------------------------


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _history(main: str) -> dict[str, str]:
    """The history fields, as the alert's own counts: its object's rows up to its time, included."""

    def rows(table: str, what: str) -> str:
        return (
            f"(SELECT {what} FROM {main}{table} h WHERE h.survey = a.survey AND h.object_id = a.object_id "
            "AND h.mjd <= a.mjd)"
        )

    first = f"COALESCE({rows('detections', 'min(h.mjd)')}, a.mjd)"
    return {
        "snr": "CASE WHEN a.flux_err > 0 THEN abs(a.flux) / a.flux_err END",
        "ndethist": rows("detections", "count(*)"),
        "nnondethist": rows("non_detections", "count(*)"),
        "nforcedhist": rows("forced_photometry", "count(*)"),
        "first_mjd": first,
        "age_days": f"a.mjd - {first}",
    }


def _sqlite_value(note: str, field: FieldDef) -> str:
    path = _literal("$" + "".join(f".{_quoted(key)}" for key in field.path))
    kind, value = f"json_type({note}.payload, {path})", f"json_extract({note}.payload, {path})"
    if field.type == "float":
        cases = f"WHEN 'integer' THEN CAST({value} AS REAL) WHEN 'real' THEN {value} WHEN 'true' THEN 1.0 "
        cases += "WHEN 'false' THEN 0.0"
    elif field.type == "int":
        cases = f"WHEN 'integer' THEN {value} WHEN 'real' THEN CAST({value} AS INTEGER) WHEN 'true' THEN 1 "
        cases += "WHEN 'false' THEN 0"
    else:  # a number as Python writes it, true and false as Python's True and False
        cases = f"WHEN 'text' THEN {value} WHEN 'integer' THEN CAST({value} AS TEXT) "
        cases += f"WHEN 'real' THEN CAST({value} AS TEXT) WHEN 'true' THEN 'True' WHEN 'false' THEN 'False'"
    return f"CASE {kind} {cases} END"


def _postgres_value(note: str, field: FieldDef) -> str:
    path = "ARRAY[" + ", ".join(_literal(key) for key in field.path) + "]::text[]"
    function = {"float": "json_real", "int": "json_int", "string": "json_text"}[field.type]
    return f"{SCHEMA}.{function}({note}.payload::jsonb #> {path})"


def view_select(backend: str) -> str:
    """The SELECT the view is (``backend``: sqlite or postgres)."""
    main = "main." if backend == "sqlite" else ""
    value = _sqlite_value if backend == "sqlite" else _postgres_value
    history = _history(main)
    notes: dict[str, str] = {}
    columns = []
    for field in FIELDS:
        if field.source == "alert" and field.name not in history:
            expression = f"a.{field.name}"
        elif field.name in history:
            expression = history[field.name]
        else:
            note = notes.setdefault(field.source, f"n{len(notes)}")
            expression = value(note, field)
        columns.append(f"{expression} AS {_quoted(field.name)}")
    joins = [
        f"LEFT JOIN {main}annotations {note} ON {note}.survey = a.survey AND {note}.alert_id = a.alert_id "
        f"AND {note}.annotator = {_literal(annotator)}"
        for annotator, note in notes.items()
    ]
    return "SELECT " + ",\n  ".join(columns) + f"\nFROM {main}alerts a\n" + "\n".join(joins)


SQLITE_VIEW = f"CREATE TEMP VIEW IF NOT EXISTS {NAME} AS {view_select('sqlite')}"


def create_sqlite_view(db: sqlite3.Connection) -> None:
    """The view on a connection to a SQLite store (a temporary one: the connection's own); none while
    the store lacks its tables (a query of it then fails as one of a missing table does)."""
    placeholders = ", ".join("?" * len(_HISTORY_TABLES))
    found = db.execute(
        f"SELECT count(*) FROM main.sqlite_master WHERE type = 'table' AND name IN ({placeholders})",
        _HISTORY_TABLES,
    ).fetchone()[0]
    if found == len(_HISTORY_TABLES):
        db.execute(SQLITE_VIEW)


# ---- PostgreSQL -----------------------------------------------------------------------------------------

_JSON = "jsonb"
_NUMBER = "(v #>> '{}')"
_TRUTH = "CASE WHEN v::boolean THEN 1 ELSE 0 END"


def _json_function(name: str, returns: str, cases: str) -> str:
    return (
        f"CREATE FUNCTION {SCHEMA}.{name}(v {_JSON}) RETURNS {returns} LANGUAGE sql IMMUTABLE PARALLEL SAFE "
        f"AS $$ SELECT CASE jsonb_typeof(v) {cases} END $$"
    )


_JSON_FUNCTIONS = (
    _json_function(
        "json_real",
        "double precision",
        f"WHEN 'number' THEN {_NUMBER}::double precision WHEN 'boolean' THEN {_TRUTH}",
    ),
    _json_function(
        "json_int",
        "bigint",
        f"WHEN 'number' THEN CASE WHEN abs({_NUMBER}::numeric) < 9223372036854775808 "
        f"THEN trunc({_NUMBER}::numeric)::bigint END WHEN 'boolean' THEN {_TRUTH}",
    ),
    _json_function(
        "json_text",
        "text",
        f"WHEN 'string' THEN {_NUMBER} WHEN 'number' THEN {_NUMBER} "
        "WHEN 'boolean' THEN CASE WHEN v::boolean THEN 'True' ELSE 'False' END",
    ),
)


def postgres_ddl() -> list[str]:
    """The statements that fill the schema: the translated ADQL's functions, the view's, the view."""
    return [
        *postgres_functions.DDL,
        *_JSON_FUNCTIONS,
        f"CREATE VIEW {POSTGRES_NAME} AS {view_select('postgres')}",
    ]


def install_postgres(conn: Any) -> bool:
    """Make the schema ``starling_tap`` in the transaction of ``conn`` (a connection of the service's
    own user): afresh when what it holds is not what this code makes (the schema's comment is a
    fingerprint of its statements), else left as it is, so that services starting side by side (and
    the controller's trials) do not drop it under running queries. False when the store lacks its
    tables or the reader role (not migrated yet): nothing is made then."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_INSTALL_LOCK,))
    missing = conn.execute(
        "SELECT bool_or(to_regclass(t) IS NULL) OR to_regrole(%s) IS NULL FROM unnest(%s::text[]) AS t",
        (READER_ROLE, list(_HISTORY_TABLES)),
    ).fetchone()[0]
    if missing:
        return False
    statements = postgres_ddl()
    fingerprint = hashlib.sha256("\n".join(statements).encode()).hexdigest()[:32]
    current = conn.execute(
        "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s", (SCHEMA,)
    ).fetchone()
    if current is not None and current[0] == fingerprint:
        return True
    conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    conn.execute(f"CREATE SCHEMA {SCHEMA}")
    for statement in statements:
        conn.execute(statement)
    conn.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {READER_ROLE}")
    conn.execute(f"GRANT SELECT ON {POSTGRES_NAME} TO {READER_ROLE}")
    conn.execute(f"COMMENT ON SCHEMA {SCHEMA} IS {_literal(fingerprint)}")
    return True

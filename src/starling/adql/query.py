"""ADQL queries, as TAP takes them: a whole SELECT read by the front end, checked against the tables a
service serves, and translated into the SQL of the store's backend (SQLite or PostgreSQL), where it runs.

The front end is the filters' (``parse.py``: sqlglot, the same limits on size and nesting, errors with
line and column), with ADQL's ``TOP``. The checks are strict: one query (SELECT, set operations,
WITH), nothing that writes; every table one the service serves; every column one of its tables has
(sqlglot's qualifier resolves aliases, joins, subqueries and common table expressions); every function
one of the language's (``catalogue.py``) or an aggregate, with its number of arguments.

Translated by ``sql_backend.py``, with one meaning of the geometry on both backends (``CONTAINS`` and
``INTERSECTS`` of a point in a circle or a polygon, ``DISTANCE``, ``COORD1``/``COORD2``): q3c's indexed
predicates and pgSphere on PostgreSQL; on SQLite, functions the reading connection registers
(``sqlite_functions.py``) behind a declination band.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import sqlglot
from sqlglot import exp, tokens
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

from starling.adql.catalogue import (
    FUNCTIONS,
    GEOMETRY_FUNCTIONS,
    catalogue_name,
    function_arguments,
    function_name,
    signature_for,
    suggestions,
)
from starling.adql.parse import (
    FilterSyntaxError,
    Sql,
    fault,
    signed_numbers,
    syntax_error,
    unclosed_string,
    within_limits,
)
from starling.adql.strict import ADQL_RESERVED, check_shape, check_tokens

Backend = Literal["sqlite", "postgres"]
_REGULAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
AGGREGATES = (exp.Count, exp.Sum, exp.Avg, exp.Max, exp.Min)
_WRITES = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.Command,
    exp.Into,
    exp.Merge,
)


_NOT_CALLS = (
    exp.Connector,
    exp.Binary,
    exp.Unary,
    exp.Case,
    exp.If,
    exp.Cast,
    exp.Distinct,
    exp.Column,
    exp.Star,
    exp.Exists,  # ADQL's exists predicate (sqlglot counts it among functions)
)


class AdqlDialect(Dialect):
    """sqlglot's default reading of SQL, with ADQL's ``SELECT TOP n`` (and ``LOG`` the natural one)."""

    LOG_DEFAULTS_TO_LN = True

    class Tokenizer(tokens.Tokenizer):
        KEYWORDS = {**tokens.Tokenizer.KEYWORDS, "TOP": sqlglot.TokenType.TOP}


@dataclass(frozen=True)
class ServedTable:
    """A table as ADQL names it (``starling.alerts``, ``TAP_SCHEMA.columns``), where it is in each
    backend, and its columns (lower case)."""

    adql_name: str
    columns: tuple[str, ...]
    sqlite_name: str
    postgres_name: str


@dataclass(frozen=True)
class CheckedQuery:
    text: str
    tree: Sql  # qualified: every column names its table (or alias)
    tables: tuple[ServedTable, ...]


def parse_query(text: str) -> Sql:
    """The sqlglot tree of one ADQL query; FilterSyntaxError (with line and column) if it is not one."""
    if not text.strip():
        raise FilterSyntaxError("the query is empty", text)
    dialect = AdqlDialect()
    try:
        found = dialect.tokenize(text)
        within_limits(found, text)
        check_tokens(found, text)
        statements = [s for s in dialect.parser().parse(found, text) if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise syntax_error(exc, text) from None
    except sqlglot.errors.TokenError:
        raise unclosed_string(text) from None
    except RecursionError:
        raise FilterSyntaxError("the query is nested too deeply", text) from None
    if len(statements) != 1:
        raise FilterSyntaxError("give one query (a single SELECT)", text)
    tree = signed_numbers(statements[0])
    if not isinstance(tree, exp.Query):
        raise fault(text, tree, "only queries (SELECT) are served")
    for node in tree.walk():
        if isinstance(node, _WRITES):
            raise fault(text, node, "only queries (SELECT) are served; nothing can be written")
    check_shape(tree, text)
    return tree


def check_query(tree: Sql, text: str, served: Mapping[str, ServedTable]) -> CheckedQuery:
    """Checks a parsed query against the ``served`` tables (keyed by lower-case ADQL name, and by the
    bare name when it is unambiguous)."""
    for node in tree.walk():
        if isinstance(node, _WRITES):
            raise fault(text, node, "only queries (SELECT) are served; nothing can be written")
    used = _check_tables(tree, text, served)
    check_functions(tree, text)
    nested: dict[str, dict[str, dict[str, str]]] = {}
    for table in used:
        schema_name, table_name = table.adql_name.lower().split(".", 1)
        nested.setdefault(schema_name, {})[table_name] = {column: "DOUBLE" for column in table.columns}
    schema = MappingSchema(dict(nested), dialect=AdqlDialect, normalize=True)
    qualified = tree.copy()
    _fully_name_tables(qualified, served)
    try:
        qualified = qualify(
            qualified,
            schema=schema,
            dialect=AdqlDialect,
            validate_qualify_columns=True,
            quote_identifiers=False,
            identify=False,
            expand_stars=True,
        )
    except OptimizeError as exc:
        raise _column_fault(text, tree, str(exc)) from None
    for identifier in qualified.find_all(exp.Identifier):
        # A column a star stands for is named as it is (``xmatch.gaia.dist_arcsec`` of
        # starling.alert_fields): one that is no regular identifier must be delimited to be one name.
        if not identifier.quoted and not _REGULAR_NAME.fullmatch(identifier.name):
            identifier.set("quoted", True)
    return CheckedQuery(text, qualified, tuple(used))


def _check_tables(tree: Sql, text: str, served: Mapping[str, ServedTable]) -> list[ServedTable]:
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    used: list[ServedTable] = []
    for table in tree.find_all(exp.Table):
        name = ".".join(p for p in (table.db, table.name) if p).lower()
        if not table.db and name in ctes:
            continue
        found = served.get(name)
        if found is None:
            near = [n for n in served if "." in n and n.split(".")[1].startswith(name.split(".")[-1][:3])]
            hint = f"; did you mean {', '.join(sorted(near)[:4])}?" if near else ""
            raise fault(text, table, f"unknown table {name!r}{hint} (see /tap/tables)")
        if found not in used:
            used.append(found)
    return used


def _fully_name_tables(tree: Sql, served: Mapping[str, ServedTable]) -> None:
    """``alerts`` as ``starling.alerts`` (an alias keeps what the query called it)."""
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        name = ".".join(p for p in (table.db, table.name) if p).lower()
        if not table.db and name in ctes:
            continue
        found = served[name]
        schema_name, table_name = found.adql_name.lower().split(".", 1)
        if not table.alias:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(table.name.lower())))
        table.set("db", exp.to_identifier(schema_name))
        table.set("this", exp.to_identifier(table_name))


def check_functions(tree: Sql, text: str) -> None:
    for node in tree.find_all(exp.Func):
        # sqlglot counts operators (AND, OR, ||, ...) and CASE or CAST among its functions: not calls.
        if isinstance(node, (*AGGREGATES, *_NOT_CALLS)):
            continue
        name = catalogue_name(node)
        function = FUNCTIONS.get(name)
        if function is None:
            if name == "BOX":
                raise fault(text, node, "BOX is deprecated in ADQL 2.1 and not served; use POLYGON")
            if name in ADQL_RESERVED or name.lower().startswith("ivo_"):
                raise fault(text, node, f"{name} is an ADQL function this service does not offer")
            near = suggestions(name)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise fault(text, node, f"unknown function {name}{hint}")
        args = function_arguments(node)
        if function.frame and args and isinstance(args[0], exp.Literal) and args[0].is_string:
            frame = args[0].this.strip().upper()
            if frame not in ("", "ICRS") and not frame.startswith("ICRS "):
                raise fault(
                    text, args[0], f"coordinate system {args[0].this!r} is not served; alerts are ICRS"
                )
            args = args[1:]
        if name in GEOMETRY_FUNCTIONS:
            _check_geometry(node, name, args, text)
        if function.special:
            if name == "POLYGON" and (len(args) < 6 or len(args) % 2 or not all(map(_is_number, args))):
                raise fault(
                    text, node, "POLYGON takes three or more vertices as constant ra, dec pairs (degrees)"
                )
            if name in ("CONTAINS", "INTERSECTS") and len(args) != 2:
                raise fault(text, node, f"{name} takes 2 arguments, not {len(args)}")
            continue
        if signature_for(function, len(args)) is None:
            count = len(function.signatures[-1].arguments)
            raise fault(
                text,
                node,
                f"{function_name(node)} takes {count} argument{'s' if count != 1 else ''}, not {len(args)}",
            )


# Where each geometric value may stand: a POINT or a region is no column type of the served tables, so it
# is only ever an argument (selected, it would be a value neither backend can return).
_GEOMETRY_PLACES = {
    "POINT": ("CONTAINS", "INTERSECTS", "DISTANCE", "CIRCLE", "COORD1", "COORD2"),
    "CIRCLE": ("CONTAINS", "INTERSECTS"),
    "POLYGON": ("CONTAINS", "INTERSECTS"),
}


def _called(node: Sql | None, *names: str) -> bool:
    """A call of one of ``names`` written right there (in brackets, no argument the translation reads)."""
    return isinstance(node, exp.Func) and catalogue_name(node) in names


def _check_geometry(node: Sql, name: str, args: list[Sql], text: str) -> None:
    """The geometry is written as the translation reads it: a POINT and a CIRCLE or POLYGON in a CONTAINS,
    points in DISTANCE and COORD1/2, each where a value of its kind can stand."""
    places = _GEOMETRY_PLACES.get(name)
    if places and not _called(node.parent, *places):
        raise fault(text, node, f"a {name} is only an argument (of {', '.join(places)}), not a value")
    located = any(_called(a, "POINT") for a in args) and any(_called(a, "CIRCLE", "POLYGON") for a in args)
    if name in ("CONTAINS", "INTERSECTS") and len(args) == 2 and not located:
        raise fault(text, node, f"{name} takes a POINT and a CIRCLE or POLYGON, written in the query")
    needs_points = {"DISTANCE": 2, "COORD1": 1, "COORD2": 1, "CIRCLE": 2}
    if len(args) == needs_points.get(name) and not _called(args[0], "POINT"):
        raise fault(text, args[0], f"{name} takes a POINT here")
    if name == "DISTANCE" and len(args) == 2 and not _called(args[1], "POINT"):
        raise fault(text, args[1], "DISTANCE takes two POINTs, or four numbers")


def _is_number(node: Sql) -> bool:
    """A numeric constant, as a polygon's vertices must be."""
    if isinstance(node, exp.Neg):  # - -5
        node = node.this
    return isinstance(node, exp.Literal) and not node.is_string


def _column_fault(text: str, tree: Sql, message: str) -> FilterSyntaxError:
    """sqlglot's qualifier names the column it could not resolve; find it in the query to say where."""
    match = re.search(r"Column '?\"?([\w.]+)\"?'? could not be resolved", message) or re.search(
        r"Unknown column: ([\w.]+)", message
    )
    name = match.group(1).split(".")[-1].lower() if match else ""
    for column in tree.find_all(exp.Column):
        if column.name.lower() == name:
            return fault(text, column, f"unknown column {column.sql()!r} (see /tap/tables)")
    if "ambiguous" in message.lower():
        return FilterSyntaxError(f"a column is ambiguous: name its table ({message})", text)
    return FilterSyntaxError(f"cannot resolve the query's columns: {message}", text)

"""ADQL queries, as TAP takes them: a whole SELECT read by the front end, checked against the tables a
service serves, and translated into the SQL of the store's backend (SQLite or PostgreSQL), where it runs.

The front end is the filters' (``parse.py``: sqlglot, the same limits on size and nesting, errors with
line and column), with ADQL's ``TOP``. The checks are strict: one query (SELECT, set operations,
WITH), nothing that writes; every table one the service serves; every column one of its tables has
(sqlglot's qualifier resolves aliases, joins, subqueries and common table expressions); every function
one of the language's (``catalogue.py``) or an aggregate, with its number of arguments.

The geometry has one meaning on both backends: ``CONTAINS``/``INTERSECTS`` of a point in a circle or a
polygon, ``DISTANCE``, ``COORD1``/``COORD2``. On PostgreSQL they become q3c's indexed predicates
(``q3c_radial_query``, ``q3c_poly_query``, ``q3c_dist``); on SQLite, functions the reading connection
registers (``starling_circle``, ``starling_polygon``, ``starling_distance``: ``store_functions``),
behind a declination band an index can serve.
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
    syntax_error,
    unclosed_string,
    within_limits,
)

Backend = Literal["sqlite", "postgres"]
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
        statements = [s for s in dialect.parser().parse(found, text) if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise syntax_error(exc, text) from None
    except sqlglot.errors.TokenError:
        raise unclosed_string(text) from None
    except RecursionError:
        raise FilterSyntaxError("the query is nested too deeply", text) from None
    if len(statements) != 1:
        raise FilterSyntaxError("give one query (a single SELECT)", text)
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise fault(text, tree, "only queries (SELECT) are served")
    return tree


def check_query(tree: Sql, text: str, served: Mapping[str, ServedTable]) -> CheckedQuery:
    """Checks a parsed query against the ``served`` tables (keyed by lower-case ADQL name, and by the
    bare name when it is unambiguous)."""
    for node in tree.walk():
        if isinstance(node, _WRITES):
            raise fault(text, node, "only queries (SELECT) are served; nothing can be written")
    used = _check_tables(tree, text, served)
    _check_functions(tree, text)
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


def _check_functions(tree: Sql, text: str) -> None:
    for node in tree.find_all(exp.Func):
        # sqlglot counts operators (AND, OR, ||, ...) and CASE or CAST among its functions: not calls.
        if isinstance(node, (*AGGREGATES, *_NOT_CALLS)):
            continue
        name = catalogue_name(node)
        function = FUNCTIONS.get(name)
        if function is None:
            if name == "BOX":
                raise fault(text, node, "BOX is deprecated in ADQL 2.1 and not served; use POLYGON")
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


def _is_number(node: Sql) -> bool:
    """A numeric constant, as a polygon's vertices must be."""
    if isinstance(node, exp.Neg):
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


# -- translation -----------------------------------------------------------------------------------


def to_sql(checked: CheckedQuery, backend: Backend) -> str:
    """The query in the backend's SQL: tables where the backend keeps them, geometry as it computes it."""
    tree = checked.tree.copy()
    by_name = {t.adql_name.lower(): t for t in checked.tables}
    for table in tree.find_all(exp.Table):
        key = f"{table.db}.{table.name}".lower()
        if key in by_name:
            target = by_name[key].sqlite_name if backend == "sqlite" else by_name[key].postgres_name
            schema_name, _, table_name = target.rpartition(".")
            table.set("db", exp.to_identifier(schema_name) if schema_name else None)
            table.set("this", exp.to_identifier(table_name))
    tree = tree.transform(lambda node: _geometry(node, backend), copy=False)
    tree = tree.transform(lambda node: _maths(node, backend), copy=False)
    return str(tree.sql(dialect="sqlite" if backend == "sqlite" else "postgres"))


def _double(node: Sql) -> Sql:
    return exp.Cast(this=node, to=exp.DataType.build("double"))


def _maths(node: Sql, backend: Backend) -> Sql:
    """ADQL's functions where the backends name or type them otherwise (LOG is the natural logarithm;
    PostgreSQL rounds and truncates numerics only; SQLite has no COT and no TRUNCATE to decimals)."""
    if isinstance(node, exp.Log):
        base, value = (node.this, node.expression) if node.expression is not None else (None, node.this)
        if base is None:
            return exp.Ln(this=value)
        if isinstance(base, exp.Literal) and base.this == "10":
            return exp.Anonymous(this="log10" if backend == "sqlite" else "log", expressions=[value])
        return exp.Div(this=exp.Ln(this=value), expression=exp.Ln(this=base))
    if isinstance(node, (exp.Round, exp.Trunc)) and node.args.get("decimals") is not None:
        decimals = node.args["decimals"]
        if backend == "postgres":
            numeric = exp.Cast(this=node.this, to=exp.DataType.build("decimal"))
            name = "round" if isinstance(node, exp.Round) else "trunc"
            return _double(exp.Anonymous(this=name, expressions=[numeric, decimals]))
        if isinstance(node, exp.Trunc):
            return exp.Anonymous(this="starling_truncate", expressions=[node.this, decimals])
    if isinstance(node, exp.Rand):
        return exp.Anonymous(this="random" if backend == "postgres" else "starling_rand", expressions=[])
    if isinstance(node, exp.Cot) and backend == "sqlite":
        return exp.Anonymous(this="starling_cot", expressions=[node.this])
    return node


def _call_args(node: Sql) -> list[Sql]:
    args = function_arguments(node)
    if args and isinstance(args[0], exp.Literal) and args[0].is_string:
        return args[1:]  # the coordinate system (ICRS)
    return args


def _is_call(node: Sql, *names: str) -> bool:
    return isinstance(node, exp.Func) and catalogue_name(node) in names


def _point(node: Sql) -> tuple[Sql, Sql]:
    if not _is_call(node, "POINT"):
        raise ValueError("a POINT is needed here")
    ra, dec = _call_args(node)
    return ra, dec


def _region_predicate(node: Sql, backend: Backend) -> Sql:
    """CONTAINS(point, region) / INTERSECTS as a true/false condition of the backend."""
    first, second = _call_args(node)
    if _is_call(first, "CIRCLE", "POLYGON") and _is_call(second, "POINT"):
        first, second = second, first
    ra, dec = _point(first)
    region = _call_args(second)
    if _is_call(second, "CIRCLE"):
        if len(region) == 2:  # CIRCLE(POINT(...), r)
            centre_ra, centre_dec = _point(region[0])
            radius = region[1]
        else:
            centre_ra, centre_dec, radius = region
        if backend == "postgres":
            return exp.Anonymous(
                this="q3c_radial_query", expressions=[ra, dec, centre_ra, centre_dec, radius]
            )
        # A declination band first: cheap, and what an index on dec can serve.
        band = exp.Between(
            this=dec.copy(),
            low=exp.Sub(this=centre_dec.copy(), expression=radius.copy()),
            high=exp.Add(this=centre_dec.copy(), expression=radius.copy()),
        )
        exact = exp.EQ(
            this=exp.Anonymous(this="starling_circle", expressions=[ra, dec, centre_ra, centre_dec, radius]),
            expression=exp.Literal.number(1),
        )
        return exp.Paren(this=exp.And(this=band, expression=exact))
    if _is_call(second, "POLYGON"):
        if backend == "postgres":
            return _postgres_polygon(ra, dec, region)
        return exp.EQ(
            this=exp.Anonymous(this="starling_polygon", expressions=[ra, dec, *region]),
            expression=exp.Literal.number(1),
        )
    raise ValueError("CONTAINS takes a POINT and a CIRCLE or POLYGON")


Q3C_POLYGON_MAX_DEG = 20.0  # q3c's polygon search refuses polygons wider than about 23 degrees


def _postgres_polygon(ra: Sql, dec: Sql, region: list[Sql]) -> Sql:
    """A point in a polygon on PostgreSQL: pgSphere's exact test, behind q3c's indexed one when the
    polygon is small enough for q3c. (The vertices are constants: the checks saw to it.)"""
    values = [float(v.this) if isinstance(v, exp.Literal) else -float(v.this.this) for v in region]
    polygon = "{" + ",".join(f"({values[i]!r}d,{values[i + 1]!r}d)" for i in range(0, len(values), 2)) + "}"
    point = exp.Anonymous(
        this="spoint",
        expressions=[
            exp.Anonymous(this="radians", expressions=[ra]),
            exp.Anonymous(this="radians", expressions=[dec]),
        ],
    )
    exact = exp.Paren(
        this=sqlglot.parse_one(f"CAST('{polygon}' AS spoly) @> x", read="postgres").transform(
            lambda node: point.copy() if isinstance(node, exp.Column) and node.name == "x" else node
        )
    )
    ras, decs = values[0::2], values[1::2]
    span = max(max(decs) - min(decs), min(max(ras) - min(ras), 360 - (max(ras) - min(ras))))
    if span > Q3C_POLYGON_MAX_DEG:
        return exact
    vertices = exp.Array(
        expressions=[exp.Cast(this=v.copy(), to=exp.DataType.build("double")) for v in region]
    )
    indexed = exp.Anonymous(this="q3c_poly_query", expressions=[ra.copy(), dec.copy(), vertices])
    return exp.Paren(this=exp.And(this=indexed, expression=exact))


def _geometry(node: Sql, backend: Backend) -> Sql:
    if isinstance(node, (exp.EQ, exp.NEQ)):
        for call, other in ((node.this, node.expression), (node.expression, node.this)):
            if (
                _is_call(call, "CONTAINS", "INTERSECTS")
                and isinstance(other, exp.Literal)
                and not other.is_string
            ):
                holds = (other.this == "1") == isinstance(node, exp.EQ)
                predicate = _region_predicate(call, backend)
                return predicate if holds else exp.Not(this=exp.Paren(this=predicate))
        return node
    if _is_call(node, "CONTAINS", "INTERSECTS"):
        return exp.Case(
            ifs=[exp.If(this=_region_predicate(node, backend), true=exp.Literal.number(1))],
            default=exp.Literal.number(0),
        )
    if _is_call(node, "DISTANCE"):
        args = _call_args(node)
        if len(args) == 2:
            (ra1, dec1), (ra2, dec2) = _point(args[0]), _point(args[1])
        else:
            ra1, dec1, ra2, dec2 = args
        name = "q3c_dist" if backend == "postgres" else "starling_distance"
        return exp.Anonymous(this=name, expressions=[ra1, dec1, ra2, dec2])
    if _is_call(node, "COORD1", "COORD2"):
        ra, dec = _point(_call_args(node)[0])
        return ra if catalogue_name(node) == "COORD1" else dec
    return node
